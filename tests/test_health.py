"""Health checks: public, and readiness says which part is not ready."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tocsin.api.app import create_app
from tocsin.runtime import Runtime


def test_healthz_is_public(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_not_ready_while_the_background_loops_are_stopped(client: TestClient) -> None:
    # The fixture's runtime runs only the ingest writer; tests drive the rest by hand.
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == checks["schema"] == checks["ingest_writer"] == "ok"
    assert checks["engine"] == checks["dispatcher"] == "stopped"


def test_ready_when_the_node_runs(runtime: Runtime) -> None:
    runtime.stop()
    with TestClient(create_app(runtime)) as client:  # the app starts every loop
        response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert set(response.json()["checks"].values()) == {"ok"}
