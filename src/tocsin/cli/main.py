"""The `tocsin` command."""

from __future__ import annotations

import typer

from tocsin import __version__
from tocsin.cli import (
    access_cmd,
    config_cmd,
    demo,
    events_cmd,
    incidents_cmd,
    oncall_cmd,
    server_cmd,
)
from tocsin.cli.common import TocsinGroup

app = typer.Typer(
    cls=TocsinGroup,
    name="tocsin",
    help="Tocsin: self-hosted incident response.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tocsin {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Tocsin: self-hosted incident response."""


app.command()(server_cmd.serve)
app.command()(server_cmd.migrate)
app.command()(demo.demo)
app.add_typer(config_cmd.app, name="config")
app.add_typer(events_cmd.app, name="event")
app.add_typer(incidents_cmd.app, name="incidents")
app.add_typer(oncall_cmd.app, name="oncall")
app.command()(oncall_cmd.page)
app.add_typer(access_cmd.user_app, name="user")
app.add_typer(access_cmd.token_app, name="token")


if __name__ == "__main__":
    app()
