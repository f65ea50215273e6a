"""`tocsin serve` and `tocsin migrate`, and the start-up both `serve` and `demo` share."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Annotated

import typer
from alembic.util.exc import CommandError

from tocsin.cli.common import (
    CliError,
    DatabaseUrlOption,
    DataDirOption,
    configure_secrets,
    database,
    load_settings,
    open_engine,
    out,
)
from tocsin.clock import SystemClock
from tocsin.config.apply import apply_config
from tocsin.config.loader import load_config
from tocsin.db import migrate as migrations
from tocsin.db.engine import make_session_factory
from tocsin.observability.logging import configure_logging
from tocsin.settings import Settings

log = logging.getLogger("tocsin.cli")

HostOption = Annotated[
    str | None, typer.Option("--host", help="Interface to listen on; default TOCSIN_HOST.")
]
PortOption = Annotated[
    int | None,
    typer.Option("--port", min=1, max=65535, help="Port to listen on; default TOCSIN_PORT."),
]


def prepare(settings: Settings) -> None:
    """Migrate the schema to head, then apply the configuration directory, if any (never
    pruning: a server start must not delete anything)."""
    engine = open_engine(settings)
    try:
        migrations.upgrade(engine)
        if settings.config_dir is None:
            return
        loaded = load_config(settings.config_dir)
        configure_secrets(settings)
        with make_session_factory(engine)() as session, session.begin():
            plan = apply_config(session, loaded, now=SystemClock().now())
        for warning in plan.warnings:
            log.warning("config: %s", warning)
        log.info("config %s applied: %s", settings.config_dir, plan.summary())
    finally:
        engine.dispose()


def check_port_free(host: str, port: int) -> None:
    """A clear message instead of a server that logs an error and exits."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}; pass --port") from exc


def run_server(settings: Settings) -> None:
    import uvicorn

    from tocsin.api.app import create_app
    from tocsin.runtime import Runtime

    check_port_free(settings.host, settings.port)
    app = create_app(Runtime(settings))
    # log_config=None: uvicorn's loggers go through our handlers (JSON, redaction).
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, proxy_headers=True)


def serve(
    host: HostOption = None,
    port: PortOption = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Apply this configuration directory at start-up."),
    ] = None,
    database_url: DatabaseUrlOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run the server: migrate, apply --config (if given), serve HTTP."""
    settings = load_settings(
        host=host, port=port, config_dir=config, database_url=database_url, data_dir=data_dir
    )
    configure_logging(settings.log_level, json=settings.log_json)
    prepare(settings)
    run_server(settings)


def migrate(
    revision: Annotated[str, typer.Option("--revision", help="Upgrade to this revision.")] = "head",
    downgrade: Annotated[
        str | None,
        typer.Option("--downgrade", help="Downgrade to this revision instead (e.g. base)."),
    ] = None,
    database_url: DatabaseUrlOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Bring the database schema to a revision (default: the newest)."""
    settings = load_settings(database_url=database_url, data_dir=data_dir)
    with database(settings, require_current=False) as engine:
        try:
            if downgrade is not None:
                migrations.downgrade(engine, downgrade)
            else:
                migrations.upgrade(engine, revision)
        except CommandError as exc:
            raise CliError(f"migration failed: {exc}") from exc
        current = migrations.current_revision(engine) or "base (empty)"
        head = migrations.head_revision(engine)
    suffix = " (newest)" if current == head else f" (newest is {head})"
    out.print(f"database at revision {current}{suffix}", markup=False)
