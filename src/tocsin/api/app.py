"""Application factory: one FastAPI app per node runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from tocsin import __version__
from tocsin.alerts import routes as alert_routes
from tocsin.api import health, metrics
from tocsin.api.docs import install_docs
from tocsin.auth import routes as auth_routes
from tocsin.errors import install_error_handlers
from tocsin.incidents import routes as incident_routes
from tocsin.ingest import routes as ingest_routes
from tocsin.notify import action_routes
from tocsin.notify import routes as notify_routes
from tocsin.oncall import feeds as oncall_feeds
from tocsin.oncall import paging_routes as oncall_paging
from tocsin.oncall import routes as oncall_routes
from tocsin.orgs import routes as org_routes
from tocsin.runtime import Runtime


def create_app(runtime: Runtime, *, manage_runtime: bool = True) -> FastAPI:
    """``manage_runtime``: start the node's threads with the app and stop them with it."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            runtime.start()
        try:
            yield
        finally:
            if manage_runtime:
                runtime.stop()

    app = FastAPI(
        title="Tocsin",
        version=__version__,
        description="Self-hosted incident-response automation.",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs from vendored assets
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    install_docs(app)
    app.include_router(health.router)
    for router in _routers():
        app.include_router(router)
    return app


def _routers() -> list[APIRouter]:
    """Every domain's routers; kept in one place so the app's surface is easy to audit."""
    return [
        metrics.router,
        ingest_routes.router,
        auth_routes.public,
        auth_routes.router,
        incident_routes.router,
        alert_routes.router,
        org_routes.router,
        oncall_routes.router,
        oncall_paging.router,
        notify_routes.router,
        oncall_feeds.router,
        oncall_feeds.public,
        action_routes.router,
    ]
