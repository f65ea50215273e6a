"""Liveness and readiness: deliberately public, and they reveal nothing but status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from tocsin.api.deps import get_runtime
from tocsin.db.migrate import current_revision, head_revision
from tocsin.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(runtime: Runtime = Depends(get_runtime)) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:
        # Reading the schema version is also the reachability check: one connection a probe.
        current = current_revision(runtime.engine)
        checks["database"] = "ok"
        checks["schema"] = "ok" if current == head_revision() else "behind: run 'tocsin migrate'"
    except Exception:
        checks["database"] = "unreachable"
        checks["schema"] = "unknown"
    checks["ingest_writer"] = "ok" if runtime.writer.running else "stopped"
    for name, loop in (("engine", runtime.worker), ("dispatcher", runtime.dispatcher)):
        checks[name] = "ok" if (loop.running or not runtime.settings.run_engine) else "stopped"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
