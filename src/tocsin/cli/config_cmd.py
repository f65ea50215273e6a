"""`tocsin config validate|apply|export|schema`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tocsin.cli.common import (
    CliError,
    DatabaseUrlOption,
    DataDirOption,
    JsonOption,
    configure_secrets,
    database,
    err,
    load_settings,
    out,
    print_json,
)
from tocsin.clock import SystemClock
from tocsin.config.apply import apply_config, plan_config
from tocsin.config.export import export_directory, export_text
from tocsin.config.loader import config_files, load_config, unset_secret_variables
from tocsin.config.plan import Plan
from tocsin.config.problems import ConfigError, Problem
from tocsin.config.schema import config_schema_text
from tocsin.db.engine import make_session_factory

app = typer.Typer(help="Configuration as code: a directory of YAML files.", no_args_is_help=True)

ConfigDir = Annotated[
    Path, typer.Argument(help="Directory of .yaml files (or one file).", show_default=False)
]

_MARKS = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}


def _warn(warnings: list[Problem]) -> None:
    for warning in warnings:
        err.print(f"warning: {warning}", markup=False)


def print_plan(plan: Plan) -> None:
    for change in plan.changes:
        mark, colour = _MARKS[change.action]
        out.print(f"[{colour}]{mark} {escape(change.describe())}[/{colour}]")
        for field in change.fields:
            out.print(f"    {escape(field.describe())}")
    out.print(f"[bold]Plan:[/bold] {plan.summary()}")


@app.command()
def validate(directory: ConfigDir, json: JsonOption = False) -> None:
    """Check the files: schema, cross-references, duplicates. Needs no database."""
    try:
        loaded = load_config(directory)
    except ConfigError as exc:
        if not json:
            raise
        print_json({"valid": False, "problems": [str(p) for p in exc.problems]})
        raise typer.Exit(1) from None
    warnings = unset_secret_variables(loaded, os.environ)
    files = len(config_files(directory))
    counts = {key: len(getattr(loaded.config, key)) for key in type(loaded.config).model_fields}
    if json:
        print_json(
            {
                "valid": True,
                "files": files,
                "counts": counts,
                "warnings": [str(w) for w in warnings],
            }
        )
        return
    _warn(warnings)
    summary = ", ".join(f"{n} {key.replace('_', ' ')}" for key, n in counts.items())
    out.print(f"[green]valid[/green]: {files} file{'s' if files != 1 else ''}, {summary}")


@app.command()
def apply(
    directory: ConfigDir,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Also delete what the files leave out.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan only.")] = False,
    json: JsonOption = False,
    database_url: DatabaseUrlOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show the plan of changes, then bring the database to the state the files describe."""
    loaded = load_config(directory)
    settings = load_settings(database_url=database_url, data_dir=data_dir)
    configure_secrets(settings)
    clock = SystemClock()
    with database(settings) as engine:
        factory = make_session_factory(engine)
        with factory() as session:
            plan = plan_config(session, loaded, now=clock.now(), prune=prune)
        if json and (plan.empty or dry_run):
            print_json({**plan.to_json(), "applied": False})
            return
        if not json:
            _warn(plan.warnings)
            print_plan(plan)
        if plan.empty or dry_run:
            return
        if not yes:
            if not sys.stdin.isatty():
                raise CliError("not applied: pass --yes to apply without a prompt", 1)
            if not typer.confirm("Apply these changes?", default=False):
                raise CliError("not applied", 1)
        with factory() as session, session.begin():
            applied = apply_config(session, loaded, now=clock.now(), prune=prune, expected=plan)
    if json:
        print_json({**applied.to_json(), "applied": True})
    else:
        out.print(f"[green]applied[/green]: {applied.summary()}")


@app.command()
def export(
    destination: Annotated[
        str, typer.Argument(help="Directory to write one file per key into, or - for stdout.")
    ] = "-",
    database_url: DatabaseUrlOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write the database's organisation as YAML that validates and re-applies as a no-op."""
    settings = load_settings(database_url=database_url, data_dir=data_dir)
    configure_secrets(settings)
    with database(settings) as engine, make_session_factory(engine)() as session:
        if destination == "-":
            sys.stdout.write(export_text(session))
            return
        target = Path(destination)
        if target.exists() and not target.is_dir():
            raise CliError(f"{target} exists and is not a directory", 2)
        written = export_directory(session, target)
    for path in written:
        err.print(f"wrote {path}", markup=False)


@app.command()
def schema() -> None:
    """Print the JSON Schema of a configuration file (for editors and CI)."""
    sys.stdout.write(config_schema_text())
