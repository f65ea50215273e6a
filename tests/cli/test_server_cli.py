"""`tocsin event send` and `tocsin incidents ...` against a real server on loopback."""

from __future__ import annotations

import json
import socket

import sqlalchemy as sa

from tests.cli.conftest import Invoke, LiveServer
from tests.conftest import ADMIN_TOKEN, Org
from tocsin.alerts.models import Alert


def send(tocsin: Invoke, server: LiveServer, *args: str) -> None:
    result = tocsin("event", "send", *args, "--url", server.url)
    assert result.exit_code == 0, result.output
    server.runtime.processor.drain()


def incidents(tocsin: Invoke, server: LiveServer, *args: str) -> list[dict[str, object]]:
    result = tocsin("incidents", "list", "--json", *args, "--url", server.url,
                    env={"TOCSIN_TOKEN": ADMIN_TOKEN})  # fmt: skip
    assert result.exit_code == 0, result.output
    items: list[dict[str, object]] = json.loads(result.stdout)
    return items


def test_event_send_triggers_and_resolves(
    tocsin: Invoke, live_server: LiveServer, org: Org
) -> None:
    result = tocsin(
        "event", "send", "trigger", "--routing-key", org.pd_key, "--summary", "Disk full on db-1",
        "--severity", "warning", "--source", "db-1", "--dedup-key", "disk-db-1",
        "--details", '{"free_bytes": 0}', "--url", live_server.url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "accepted trigger; dedup key disk-db-1\n"
    live_server.runtime.processor.drain()
    with live_server.runtime.factory() as s:
        alert = s.scalars(sa.select(Alert)).one()
    assert (alert.summary, alert.severity, alert.source) == ("Disk full on db-1", "warning", "db-1")
    assert alert.details["custom_details"] == {"free_bytes": 0}

    [incident] = incidents(tocsin, live_server)
    assert (incident["title"], incident["status"], incident["service"]) == (
        "Disk full on db-1",
        "triggered",
        "checkout",
    )
    send(tocsin, live_server, "resolve", "-k", org.pd_key, "-d", "disk-db-1")
    [incident] = incidents(tocsin, live_server)
    assert incident["status"] == "resolved"


def test_event_send_mistakes(tocsin: Invoke, live_server: LiveServer, org: Org) -> None:
    no_key = tocsin("event", "send", "resolve", "-k", org.pd_key, "--url", live_server.url)
    assert no_key.exit_code == 2
    assert no_key.stderr == "error: resolve needs --dedup-key (the key of the alert)\n"

    no_summary = tocsin("event", "send", "trigger", "-k", org.pd_key, "--url", live_server.url)
    assert no_summary.exit_code == 2

    bad_details = tocsin("event", "send", "trigger", "-k", org.pd_key, "-s", "x",
                         "--details", "[1, 2]", "--url", live_server.url)  # fmt: skip
    assert bad_details.stderr == "error: --details must be a JSON object\n"

    unknown = tocsin(
        "event", "send", "trigger", "-k", "z" * 32, "-s", "x", "--url", live_server.url
    )
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("error: 4")
    assert len(unknown.stderr.strip().splitlines()) == 1


def test_incidents_list_show_ack_resolve(tocsin: Invoke, live_server: LiveServer, org: Org) -> None:
    send(tocsin, live_server, "trigger", "-k", org.pd_key, "-s", "API down", "-d", "api")
    send(tocsin, live_server, "trigger", "-k", org.pd_key, "-s", "Queue backlog", "-d", "queue")
    env = {"TOCSIN_TOKEN": ADMIN_TOKEN, "TOCSIN_URL": live_server.url}

    table = tocsin("incidents", "list", env=env)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "ID", "STATUS", "URGENCY", "SEVERITY", "SERVICE", "ALERTS", "CREATED", "TITLE",
    ]  # fmt: skip
    assert "Queue backlog" in lines[1] and "API down" in lines[2]  # newest first
    first_id = int(lines[2].split()[0])

    ack = tocsin("incidents", "ack", str(first_id), env=env)
    assert ack.exit_code == 0, ack.output
    assert ack.stdout == f"incident {first_id} acknowledged by token:bootstrap\n"
    again = tocsin("incidents", "ack", str(first_id), env=env)
    assert again.exit_code == 1
    assert again.stderr.startswith(f"error: 409: incident {first_id} is already acknowledged")

    acknowledged = incidents(tocsin, live_server, "--status", "acknowledged")
    assert [i["id"] for i in acknowledged] == [first_id]
    both = incidents(tocsin, live_server, "--status", "acknowledged", "--status", "triggered")
    assert len(both) == 2
    assert incidents(tocsin, live_server, "--limit", "1")[0]["title"] == "Queue backlog"

    shown = tocsin("incidents", "show", str(first_id), env=env)
    assert shown.exit_code == 0, shown.output
    assert f"#{first_id} API down" in shown.stdout
    assert "acknowledged" in shown.stdout and "incident.triggered" in shown.stdout

    resolved = tocsin("incidents", "resolve", str(first_id), "--reason", "restarted", env=env)
    assert resolved.exit_code == 0, resolved.output
    detail = tocsin("incidents", "show", str(first_id), "--json", env=env)
    body = json.loads(detail.stdout)
    assert body["incident"]["status"] == "resolved"
    kinds = [entry["kind"] for entry in body["timeline"]]
    assert kinds[0] == "incident.triggered" or "incident.triggered" in kinds
    assert any("resolve" in kind for kind in kinds)


def test_incident_commands_need_a_token_and_a_server(
    tocsin: Invoke, live_server: LiveServer, org: Org
) -> None:
    no_token = tocsin("incidents", "list", "--url", live_server.url)
    assert no_token.exit_code == 2
    assert no_token.stderr == "error: no API token: pass --token or set TOCSIN_TOKEN\n"

    wrong = tocsin("incidents", "list", "--url", live_server.url, "--token", "tcs_wrong")
    assert wrong.exit_code == 1
    assert wrong.stderr == "error: 401: invalid, expired or revoked token\n"

    missing = tocsin("incidents", "show", "999", "--url", live_server.url, "--token", ADMIN_TOKEN)
    assert missing.stderr == "error: 404: no incident with id 999\n"

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    down = tocsin("incidents", "list", "--url", closed, "--token", ADMIN_TOKEN)
    assert down.exit_code == 1
    assert down.stderr.startswith(f"error: cannot reach {closed}")
    assert "Traceback" not in down.output
