"""`tocsin oncall [shifts|gaps]` and `tocsin page`, against the REST API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table

from tocsin.cli.client import DEFAULT_URL, ApiClient, TokenOption, UrlOption
from tocsin.cli.common import CliError, JsonOption, out, plain_table, print_answer, print_json

app = typer.Typer(
    help="Who is on call: now or at any time, the shifts ahead, and coverage gaps.",
    invoke_without_command=True,
)

AtOption = Annotated[
    str | None,
    typer.Option("--at", help="An instant (ISO 8601; UTC without an offset). Default: now."),
]


class Urgency(StrEnum):
    high = "high"
    low = "low"


def _path(value: str) -> str:
    return quote(value, safe="")


def _user(user: dict[str, Any] | None) -> str:
    if not user:
        return "nobody"
    return f"{user['username']} ({user['name']})"


def _local(instant: str, zone: str | None = None) -> str:
    """An API time as '2026-01-05 10:00 CET' in `zone`, or in UTC."""
    parsed = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    local = parsed.astimezone(ZoneInfo(zone) if zone else UTC)
    return local.strftime("%Y-%m-%d %H:%M %Z")


def _levels(levels: list[dict[str, Any]]) -> Table:
    table = plain_table("LEVEL", "AFTER", "WHO")
    for level in levels:
        who = ", ".join(_user(u) for u in level["users"]) or "nobody"
        table.add_row(str(level["level"]), f"{level['delay_minutes']} min", escape(who))
    return table


@app.callback(invoke_without_command=True)
def oncall(
    ctx: typer.Context,
    schedule: Annotated[str | None, typer.Option("--schedule", help="A schedule's slug.")] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", help="An escalation policy's slug.")
    ] = None,
    service: Annotated[str | None, typer.Option("--service", help="A service's slug.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="A team's slug.")] = None,
    at: AtOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Who is on call: in every schedule, or for one schedule, policy, service or team (each
    level of its escalation policy)."""
    if ctx.invoked_subcommand is not None:
        return
    chosen = [n for n, v in (("--schedule", schedule), ("--policy", policy),
                             ("--service", service), ("--team", team)) if v]  # fmt: skip
    if len(chosen) > 1:
        raise CliError(f"give at most one of {', '.join(chosen)}", 2)
    params = {"at": at} if at else None
    with ApiClient(url, token) as client:
        client.require_token()
        if schedule:
            answer = client.call(
                "GET", f"/api/v1/schedules/{_path(schedule)}/oncall", params=params
            )
        elif policy:
            path = f"/api/v1/escalation-policies/{_path(policy)}/oncall"
            answer = client.call("GET", path, params=params)
        elif service:
            answer = client.call("GET", f"/api/v1/services/{_path(service)}/oncall", params=params)
        elif team:
            answer = client.call("GET", f"/api/v1/teams/{_path(team)}/oncall", params=params)
        else:
            answer = list(client.pages("/api/v1/oncall", params, limit=10_000))
    if json:
        print_json(answer)
        return
    if schedule:
        out.print(f"{answer['schedule']}: {_user(answer['user'])}", markup=False)
    elif policy or service:
        what = f"service {answer['service']}" if service else f"policy {answer['policy']}"
        if service and answer["policy"]:
            what += f" (policy {answer['policy']})"
        if not answer["levels"]:
            out.print(f"{what} has no escalation policy: it pages nobody", markup=False)
            return
        out.print(f"[bold]{escape(what)}[/bold] at {_local(answer['at'])}")
        out.print(_levels(answer["levels"]))
    elif team:
        if not answer["policies"]:
            out.print(f"team {answer['team']} has no escalation policy", markup=False)
            return
        for entry in answer["policies"]:
            out.print(f"[bold]policy {escape(entry['policy'])}[/bold]")
            out.print(_levels(entry["levels"]))
    else:
        if not answer:
            out.print("no schedules", markup=False)
            return
        table = plain_table("SCHEDULE", "ON CALL", "TIME ZONE")
        for item in answer:
            table.add_row(escape(item["schedule"]), escape(_user(item["user"])), item["time_zone"])
        out.print(table)


def _start(start: str | None) -> datetime:
    if start is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CliError(f"--start must be an ISO 8601 time, got {start!r}", 2) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def shifts(
    schedule: Annotated[str, typer.Option("--schedule", help="A schedule's slug.")],
    days: Annotated[int, typer.Option("--days", min=1, max=90, help="How far ahead.")] = 7,
    start: Annotated[
        str | None, typer.Option("--start", help="ISO 8601; default now. UTC without offset.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """The final shifts of a schedule (overrides over layers), in its time zone."""
    lo = _start(start)
    params = {"start": lo.isoformat(), "end": (lo + timedelta(days=days)).isoformat()}
    with ApiClient(url, token) as client:
        client.require_token()
        answer = client.call("GET", f"/api/v1/schedules/{_path(schedule)}/shifts", params=params)
    if json:
        print_json(answer)
        return
    zone = answer["time_zone"]
    out.print(
        f"{answer['schedule']} ({zone}), {_local(answer['start'], zone)} to "
        f"{_local(answer['end'], zone)}",
        markup=False,
    )
    if not answer["shifts"]:
        out.print("nobody is on call in this window", markup=False)
        return
    table = plain_table("START", "END", "WHO", "SOURCE")
    for shift in answer["shifts"]:
        table.add_row(
            _local(shift["start"], zone),
            _local(shift["end"], zone),
            escape(_user(shift["user"])),
            escape(shift["source"]),
        )
    out.print(table)


@app.command()
def gaps(
    days: Annotated[int, typer.Option("--days", min=1, max=90, help="How far ahead.")] = 14,
    check: Annotated[
        bool, typer.Option("--check", help="Exit with 1 when any service has a gap (for cron).")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Every high-urgency service with the periods in which it would page nobody."""
    with ApiClient(url, token) as client:
        client.require_token()
        answer = client.call("GET", "/api/v1/oncall/gaps", params={"days": days})
    found = [s for s in answer["services"] if s["gaps"]]
    if json:
        print_json(answer)
    elif not answer["services"]:
        out.print("no high-urgency services", markup=False)
    else:
        for entry in answer["services"]:
            policy = entry["policy"] or "no escalation policy"
            if not entry["gaps"]:
                out.print(f"[green]ok[/green]   {escape(entry['service'])} ({escape(policy)})")
                continue
            count = len(entry["gaps"])
            out.print(
                f"[red]gaps[/red] {escape(entry['service'])} ({escape(policy)}): "
                f"{count} period{'s' if count != 1 else ''} reaching nobody"
            )
            for gap in entry["gaps"]:
                out.print(f"       {_local(gap['start'])} to {_local(gap['end'])}", markup=False)
    if check and found:
        raise typer.Exit(1)


def page(
    team: Annotated[str, typer.Option("--team", help="The team's slug.")],
    message: Annotated[str, typer.Option("--message", "-m", help="What is wrong.")],
    urgency: Annotated[Urgency, typer.Option("--urgency")] = Urgency.high,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Open an incident for a team and page it through the team's escalation policy."""
    with ApiClient(url, token) as client:
        client.require_token()
        incident = client.call(
            "POST",
            "/api/v1/page",
            json={"team": team, "message": message, "urgency": urgency.value},
        )
    how = (
        f"through policy {incident['escalation_policy']}"
        if incident.get("escalation_policy")
        else "every member"
    )
    line = f"incident {incident['id']} opened; paging team {team} {how}"
    print_answer(incident, json=json, line=line)
