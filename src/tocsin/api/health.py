"""Liveness and readiness: deliberately public, and they reveal nothing but status."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from tocsin.api.deps import get_runtime
from tocsin.db.migrate import is_at_head
from tocsin.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(runtime: Runtime = Depends(get_runtime)) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:
        with runtime.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
        checks["schema"] = "ok" if is_at_head(runtime.engine) else "behind: run 'tocsin migrate'"
    except Exception:
        checks["database"] = "unreachable"
        checks["schema"] = "unknown"
    checks["ingest_writer"] = "ok" if runtime.writer.running else "stopped"
    checks["engine"] = (
        "ok" if (runtime.worker.running or not runtime.settings.run_engine) else "stopped"
    )
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
