"""What every command shares: one-line errors with exit codes, consoles, the database."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import IntegrityError, OperationalError
from typer import _click
from typer.core import TyperGroup

from tocsin import crypto
from tocsin.config.apply import PlanChanged
from tocsin.config.problems import ConfigError
from tocsin.db import migrate
from tocsin.db.engine import create_db_engine, is_sqlite
from tocsin.settings import Settings

# Piped output is not cut to 80 columns: tables stay one row per line for grep and less.
_PIPE_WIDTH = None if sys.stdout.isatty() else 200
out = Console(highlight=False, soft_wrap=True, width=_PIPE_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class CliError(Exception):
    """A mistake or a condition the user can act on: shown as one line, never a traceback.
    Exit code 1 for failures, 2 for wrong usage."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _report(exc: Exception) -> int:
    """Prints what went wrong; returns the exit code."""
    if isinstance(exc, CliError):
        err.print(f"error: {exc.message}", markup=False)
        return exc.code
    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            err.print(f"{problem.level}: {problem}", markup=False)
        count = len(exc.problems)
        err.print(f"error: {count} problem{'s' if count != 1 else ''} found", markup=False)
        return 1
    if isinstance(exc, PlanChanged):
        err.print(f"error: {exc}", markup=False)
        return 1
    if isinstance(exc, httpx.TransportError):
        where = exc.request.url if _has_request(exc) else "the server"
        err.print(
            f"error: cannot reach {where}: {_first_line(exc)} (is `tocsin serve` running? "
            "set --url or TOCSIN_URL)",
            markup=False,
        )
        return 1
    if isinstance(exc, IntegrityError):
        err.print(f"error: the database refused the change: {_first_line(exc)}", markup=False)
        return 1
    if isinstance(exc, OperationalError):
        err.print(f"error: database error: {_first_line(exc)}", markup=False)
        return 1
    raise exc


def _has_request(exc: httpx.TransportError) -> bool:
    try:
        exc.request  # noqa: B018 - raises when the error carries no request
    except RuntimeError:
        return False
    return True


class TocsinGroup(TyperGroup):
    """Turns the errors users cause into one line on stderr and an exit code."""

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (CliError, ConfigError, PlanChanged, httpx.TransportError) as exc:
            raise typer.Exit(_report(exc)) from None
        except (IntegrityError, OperationalError) as exc:
            raise typer.Exit(_report(exc)) from None


JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def plain_table(*columns: str) -> Table:
    """A borderless table for terminals; its columns never wrap (add a wrapping one after)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, no_wrap=True)
    return table


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def print_answer(answer: Any, *, json: bool, line: str) -> None:
    """The server's answer as JSON with --json, else one plain line saying what happened."""
    if json:
        print_json(answer)
    else:
        out.print(line, markup=False)


# --- the database -----------------------------------------------------------------------

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL; default TOCSIN_DATABASE_URL, else SQLite in the data directory.",
        show_default=False,
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory; default TOCSIN_DATA_DIR or ./tocsin-data."),
]


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except ValueError as exc:
        raise CliError(f"invalid TOCSIN_* environment variable: {exc}", 2) from exc


def open_engine(settings: Settings) -> sa.Engine:
    url = settings.resolved_database_url
    if is_sqlite(url) and not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        return create_db_engine(url, pool_size=2)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise CliError(f"invalid database URL: {_first_line(exc)}", 2) from exc


def configure_secrets(settings: Settings) -> None:
    """The key contact-method secrets are encrypted with: TOCSIN_SECRET_KEY, else the key file
    in the data directory, exactly as the server finds it, so both read the same secrets."""
    try:
        crypto.configure(crypto.load_or_create_key(settings.data_dir, settings.secret_key))
    except crypto.SecretsUnavailable as exc:
        raise CliError(f"invalid TOCSIN_SECRET_KEY: {exc}", 2) from exc


@contextmanager
def database(settings: Settings, *, require_current: bool = True) -> Iterator[sa.Engine]:
    """An engine for the configured database, checked to be migrated to the code's schema."""
    engine = open_engine(settings)
    try:
        if require_current and not migrate.is_at_head(engine):
            current = migrate.current_revision(engine) or "empty"
            raise CliError(
                f"the database schema is not current (at {current}, this version needs "
                f"{migrate.head_revision(engine)}): run `tocsin migrate`"
            )
        yield engine
    finally:
        engine.dispose()
