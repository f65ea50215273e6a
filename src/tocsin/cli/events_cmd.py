"""`tocsin event send`: a PagerDuty Events API v2 event, as any monitoring tool would send."""

from __future__ import annotations

import socket
from enum import StrEnum
from typing import Annotated, Any

import orjson
import typer

from tocsin.cli.client import DEFAULT_URL, ApiClient, UrlOption
from tocsin.cli.common import CliError, print_answer

app = typer.Typer(help="Send events to a Tocsin server.", no_args_is_help=True)


class Action(StrEnum):
    trigger = "trigger"
    acknowledge = "acknowledge"
    resolve = "resolve"


class Severity(StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"


def event_body(
    action: Action,
    routing_key: str,
    *,
    summary: str | None,
    severity: Severity,
    source: str | None,
    dedup_key: str | None,
    details: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": action.value}
    if dedup_key:
        body["dedup_key"] = dedup_key
    if action is not Action.trigger:
        if not dedup_key:
            raise CliError(f"{action.value} needs --dedup-key (the key of the alert)", 2)
        return body
    if not summary:
        raise CliError("trigger needs --summary", 2)
    payload: dict[str, Any] = {
        "summary": summary,
        "source": source or socket.gethostname(),
        "severity": severity.value,
    }
    if details:
        try:
            parsed = orjson.loads(details)
        except orjson.JSONDecodeError as exc:
            raise CliError(f"--details is not valid JSON: {exc}", 2) from exc
        if not isinstance(parsed, dict):
            raise CliError("--details must be a JSON object", 2)
        payload["custom_details"] = parsed
    body["payload"] = payload
    return body


@app.command()
def send(
    action: Annotated[Action, typer.Argument(help="trigger, acknowledge or resolve.")],
    routing_key: Annotated[
        str,
        typer.Option("--routing-key", "-k", envvar="TOCSIN_ROUTING_KEY", help="Integration key."),
    ],
    summary: Annotated[str | None, typer.Option("--summary", "-s")] = None,
    severity: Annotated[Severity, typer.Option("--severity")] = Severity.error,
    source: Annotated[
        str | None, typer.Option("--source", help="Affected host or system; default: hostname.")
    ] = None,
    dedup_key: Annotated[str | None, typer.Option("--dedup-key", "-d")] = None,
    details: Annotated[
        str | None, typer.Option("--details", help="Custom details: a JSON object.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Send one event to /v2/enqueue (the PagerDuty Events API v2)."""
    body = event_body(
        action,
        routing_key,
        summary=summary,
        severity=severity,
        source=source,
        dedup_key=dedup_key,
        details=details,
    )
    with ApiClient(url) as client:
        answer = client.call("POST", "/v2/enqueue", json=body)
    key = answer.get("dedup_key") if isinstance(answer, dict) else None
    line = f"accepted {action.value}" + (f"; dedup key {key}" if key else "")
    print_answer(answer, json=json, line=line)
