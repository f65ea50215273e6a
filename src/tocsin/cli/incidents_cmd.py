"""`tocsin incidents list|show|ack|resolve|escalate|reassign|mobilise` against the REST API."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape

from tocsin.cli.client import DEFAULT_URL, ApiClient, TokenOption, UrlOption
from tocsin.cli.common import CliError, JsonOption, out, plain_table, print_answer, print_json

app = typer.Typer(help="Incidents on a Tocsin server.", no_args_is_help=True)

IncidentId = Annotated[int, typer.Argument(min=1, help="Incident id.")]
TIMELINE_MAX = 5000
_STATUS_STYLE = {"triggered": "bold red", "acknowledged": "yellow", "resolved": "green"}


class Status(StrEnum):
    triggered = "triggered"
    acknowledged = "acknowledged"
    resolved = "resolved"


def _when(value: Any) -> str:
    """ISO 8601 shortened to the minute, in UTC, for tables."""
    text = str(value or "")
    return text[:16].replace("T", " ") if text else ""


def _status(value: str) -> str:
    style = _STATUS_STYLE.get(value, "")
    return f"[{style}]{escape(value)}[/{style}]" if style else escape(value)


@app.command("list")
def list_incidents(
    status: Annotated[
        list[Status] | None, typer.Option("--status", help="Repeat for several statuses.")
    ] = None,
    service: Annotated[str | None, typer.Option("--service", help="A service slug.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Newest first."""
    params: dict[str, Any] = {}
    if status:
        params["status"] = [s.value for s in status]
    if service:
        params["service"] = service
    with ApiClient(url, token) as client:
        client.require_token()
        items = list(client.pages("/api/v1/incidents", params, limit=limit))
    if json:
        print_json(items)
        return
    if not items:
        out.print("no incidents", markup=False)
        return
    table = plain_table("ID", "STATUS", "URGENCY", "SEVERITY", "SERVICE", "ALERTS", "CREATED")
    table.add_column("TITLE", min_width=20, no_wrap=True, overflow="ellipsis")
    for item in items:
        table.add_row(
            str(item.get("id")),
            _status(str(item.get("status", ""))),
            escape(str(item.get("urgency", ""))),
            escape(str(item.get("severity", ""))),
            escape(str(item.get("service", ""))),
            str(item.get("alert_count", "")),
            _when(item.get("created_at")),
            escape(str(item.get("title", ""))),
        )
    out.print(table)


@app.command()
def show(
    incident_id: IncidentId,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """One incident with its timeline."""
    with ApiClient(url, token) as client:
        client.require_token()
        incident = client.call("GET", f"/api/v1/incidents/{incident_id}")
        timeline = list(
            client.pages(f"/api/v1/incidents/{incident_id}/timeline", limit=TIMELINE_MAX)
        )
    if json:
        print_json({"incident": incident, "timeline": timeline})
        return
    out.print(f"[bold]#{incident['id']} {escape(str(incident.get('title', '')))}[/bold]")
    rows = [
        ("status", _status(str(incident.get("status", "")))),
        ("service", escape(str(incident.get("service", "")))),
        ("urgency", escape(str(incident.get("urgency", "")))),
        ("severity", escape(str(incident.get("severity", "")))),
        ("assignee", escape(str(incident.get("assignee") or "-"))),
        ("alerts", str(incident.get("alert_count", ""))),
        ("created", _when(incident.get("created_at"))),
    ]
    if incident.get("acknowledged_by"):
        rows.append(
            (
                "acknowledged",
                f"{_when(incident.get('acknowledged_at'))} by "
                f"{escape(str(incident['acknowledged_by']))}",
            )
        )
    if incident.get("resolved_by"):
        rows.append(
            (
                "resolved",
                f"{_when(incident.get('resolved_at'))} by {escape(str(incident['resolved_by']))}",
            )
        )
    for label, value in rows:
        out.print(f"  {label:<13}{value}")
    out.print("\n[bold]Timeline[/bold]")
    table = plain_table("AT", "KIND", "ACTOR")
    table.add_column("MESSAGE", min_width=30, overflow="fold")
    for entry in timeline:
        table.add_row(
            _when(entry.get("at")),
            escape(str(entry.get("kind", ""))),
            escape(str(entry.get("actor", ""))),
            escape(str(entry.get("message", ""))),
        )
    out.print(table)


def _act(url: str, token: str | None, incident_id: int, verb: str, body: Any) -> dict[str, Any]:
    with ApiClient(url, token) as client:
        client.require_token()
        answer: dict[str, Any] = client.call(
            "POST", f"/api/v1/incidents/{incident_id}/{verb}", json=body
        )
    return answer


@app.command("ack")
def acknowledge(
    incident_id: IncidentId,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Acknowledge: someone is on it; escalation stops."""
    incident = _act(url, token, incident_id, "acknowledge", None)
    line = f"incident {incident_id} acknowledged by {incident.get('acknowledged_by')}"
    print_answer(incident, json=json, line=line)


@app.command()
def resolve(
    incident_id: IncidentId,
    reason: Annotated[str, typer.Option("--reason", help="Why; goes on the timeline.")] = "",
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Resolve the incident and its alerts."""
    incident = _act(url, token, incident_id, "resolve", {"reason": reason} if reason else None)
    line = f"incident {incident_id} resolved by {incident.get('resolved_by')}"
    print_answer(incident, json=json, line=line)


@app.command()
def escalate(
    incident_id: IncidentId,
    level: Annotated[
        int | None,
        typer.Option("--level", min=1, help="The level to page (1 is the first); default: next."),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Page the next level of the incident's escalation policy now (or --level N)."""
    incident = _act(url, token, incident_id, "escalate", {"level": level} if level else None)
    policy = incident.get("escalation_policy")
    where = f" of {policy}" if policy else ""
    line = f"incident {incident_id} escalated to level {incident.get('escalation_level')}{where}"
    print_answer(incident, json=json, line=line)


@app.command()
def reassign(
    incident_id: IncidentId,
    user: Annotated[str, typer.Option("--user", help="Username of the new assignee.")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Hand the incident to someone else; they are paged and must acknowledge it again."""
    incident = _act(url, token, incident_id, "reassign", {"user": user})
    line = f"incident {incident_id} reassigned to {incident.get('assignee')}"
    print_answer(incident, json=json, line=line)


@app.command()
def mobilise(
    incident_id: IncidentId,
    users: Annotated[
        list[str] | None, typer.Option("--user", help="A username; repeat for several.")
    ] = None,
    schedules: Annotated[
        list[str] | None,
        typer.Option("--schedule", help="Whoever is on call in this schedule; repeatable."),
    ] = None,
    teams: Annotated[
        list[str] | None, typer.Option("--team", help="Every member of this team; repeatable.")
    ] = None,
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Why they are needed.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Page more responders into the incident: users, schedules' on-call, whole teams."""
    if not (users or schedules or teams):
        raise CliError("name at least one --user, --schedule or --team", 2)
    body: dict[str, Any] = {
        "users": users or [],
        "schedules": schedules or [],
        "teams": teams or [],
    }
    if message:
        body["message"] = message
    answer = _act(url, token, incident_id, "mobilise", body)
    paged = ", ".join(answer.get("paged") or []) or "nobody could be reached"
    print_answer(answer, json=json, line=f"incident {incident_id}: paged {paged}")
