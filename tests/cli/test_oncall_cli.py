"""`tocsin oncall`, `tocsin oncall shifts|gaps`, `tocsin page` and `tocsin incidents
escalate|reassign|mobilise` against a real server on loopback."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import tocsin.oncall.escalation  # noqa: F401  (registers the escalation's lifecycle hook)
from tests.api.conftest import add_user, token_for, trigger
from tests.cli.conftest import Invoke, LiveServer
from tests.conftest import ADMIN_TOKEN, Org


@pytest.fixture
def responder(live_server: LiveServer, org: Org) -> dict[str, str]:
    """The org has alice (a responder) in payments; add bob and adam, and a schedule in Berlin
    time that pages alice and bob in turns, behind the checkout policy."""
    rt = live_server.runtime
    now = rt.clock.now()
    add_user(rt, "bob", "responder", now)
    add_user(rt, "adam", "admin", now)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    layer = {
        "name": "Weekly",
        "members": ["alice", "bob"],
        "start": "2026-01-05T09:00",
        "rotation": {"length": 1, "unit": "weeks"},
    }
    day = {
        "name": "Office",
        "members": ["alice"],
        "start": "2026-01-05T00:00",
        "rotation": {"length": 1, "unit": "weeks"},
        "restrictions": [{"kind": "daily", "start": "09:00", "end": "17:00"}],
    }
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/v1/schedules", {"slug": "primary", "name": "Primary",
                                        "time_zone": "Europe/Berlin", "layers": [layer]}),
        ("POST", "/api/v1/schedules", {"slug": "office", "name": "Office",
                                        "time_zone": "Europe/Berlin", "layers": [day]}),
        ("POST", "/api/v1/escalation-policies", {
            "slug": "checkout", "name": "Checkout", "team": "payments",
            "levels": [
                {"delay_minutes": 5, "targets": [{"type": "schedule", "slug": "primary"}]},
                {"delay_minutes": 10, "targets": [{"type": "user", "username": "adam"}]},
            ],
        }),
        ("POST", "/api/v1/escalation-policies", {
            "slug": "office-hours", "name": "Office hours",
            "levels": [{"targets": [{"type": "schedule", "slug": "office"}]}],
        }),
        ("PATCH", "/api/v1/services/checkout", {"escalation_policy": "checkout"}),
    ]  # fmt: skip
    with httpx.Client(base_url=live_server.url, headers=admin) as client:
        for method, path, body in calls:
            r = client.request(method, path, json=body)
            assert r.is_success, r.text
    return {"TOCSIN_TOKEN": token_for(rt, org.user_id, "responder", now)}


def run(tocsin: Invoke, server: LiveServer, env: dict[str, str], *args: str) -> str:
    result = tocsin(*args, "--url", server.url, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_who_is_on_call(tocsin: Invoke, live_server: LiveServer, responder: dict[str, str]) -> None:
    # The server's clock reads Monday 2026-01-05 09:00 UTC (10:00 in Berlin).
    table = run(tocsin, live_server, responder, "oncall").splitlines()
    assert table[0].split() == ["SCHEDULE", "ON", "CALL", "TIME", "ZONE"]
    assert table[1].split() == ["primary", "alice", "(Alice)", "Europe/Berlin"]
    assert table[2].split() == ["office", "alice", "(Alice)", "Europe/Berlin"]

    later = run(tocsin, live_server, responder, "oncall", "--schedule", "primary",
                "--at", "2026-01-12T09:00:00Z")  # fmt: skip
    assert later == "primary: bob (Bob)\n"
    night = run(tocsin, live_server, responder, "oncall", "--schedule", "office",
                "--at", "2026-01-05T20:00")  # fmt: skip
    assert night == "office: nobody\n"

    service = run(tocsin, live_server, responder, "oncall", "--service", "checkout").splitlines()
    assert service[0] == "service checkout (policy checkout) at 2026-01-05 09:00 UTC"
    assert [line.split() for line in service[1:]] == [
        ["LEVEL", "AFTER", "WHO"],
        ["1", "5", "min", "alice", "(Alice)"],
        ["2", "10", "min", "adam", "(Adam)"],
    ]
    as_json = json.loads(
        run(tocsin, live_server, responder, "oncall", "--policy", "checkout", "--json")
    )
    assert [[u["username"] for u in level["users"]] for level in as_json["levels"]] == [
        ["alice"],
        ["adam"],
    ]
    team = run(tocsin, live_server, responder, "oncall", "--team", "payments").splitlines()
    assert team[0] == "policy checkout"


def test_shifts_in_the_schedules_time_zone(
    tocsin: Invoke, live_server: LiveServer, responder: dict[str, str]
) -> None:
    out = run(tocsin, live_server, responder, "oncall", "shifts", "--schedule", "primary",
              "--days", "14", "--start", "2026-01-05T08:00:00Z").splitlines()  # fmt: skip
    assert out[0] == "primary (Europe/Berlin), 2026-01-05 09:00 CET to 2026-01-19 09:00 CET"
    assert [line.split() for line in out[1:]] == [
        ["START", "END", "WHO", "SOURCE"],
        ["2026-01-05", "09:00", "CET", "2026-01-12", "09:00", "CET", "alice", "(Alice)", "Weekly"],
        ["2026-01-12", "09:00", "CET", "2026-01-19", "09:00", "CET", "bob", "(Bob)", "Weekly"],
    ]
    as_json = json.loads(
        run(
            tocsin,
            live_server,
            responder,
            "oncall",
            "shifts",
            "--schedule",
            "primary",
            "--start",
            "2026-01-05T08:00:00Z",
            "--days",
            "1",
            "--json",
        )
    )
    assert [s["user"]["username"] for s in as_json["shifts"]] == ["alice"]


def test_gaps(tocsin: Invoke, live_server: LiveServer, responder: dict[str, str]) -> None:
    assert run(tocsin, live_server, responder, "oncall", "gaps", "--days", "2") == (
        "ok   checkout (checkout)\n"
    )
    # Pointing checkout at the office-hours policy leaves its nights uncovered.
    with httpx.Client(base_url=live_server.url) as client:
        r = client.patch(
            "/api/v1/services/checkout",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            json={"escalation_policy": "office-hours"},
        )
        assert r.status_code == 200
    result = tocsin("oncall", "gaps", "--days", "2", "--check", "--url", live_server.url,
                    env=responder)  # fmt: skip
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "gaps checkout (office-hours): 2 periods reaching nobody",
        "       2026-01-05 16:00 UTC to 2026-01-06 08:00 UTC",
        "       2026-01-06 16:00 UTC to 2026-01-07 08:00 UTC",
    ]
    as_json = json.loads(run(tocsin, live_server, responder, "oncall", "gaps", "--json"))
    assert len(as_json["services"][0]["gaps"]) == 14


def test_page_escalate_reassign_and_mobilise(
    tocsin: Invoke, live_server: LiveServer, responder: dict[str, str], org: Org
) -> None:
    paged = run(tocsin, live_server, responder, "page", "--team", "payments",
                "--message", "Checkout is returning 500s")  # fmt: skip
    assert paged.startswith("incident ") and paged.endswith(
        "opened; paging team payments through policy checkout\n"
    )

    incident = trigger(live_server.runtime, org, "db-1")
    ident = str(incident.id)
    escalated = run(tocsin, live_server, responder, "incidents", "escalate", ident)
    assert escalated == f"incident {ident} escalated to level 1 of checkout\n"
    escalated = run(tocsin, live_server, responder, "incidents", "escalate", ident)
    assert escalated == f"incident {ident} escalated to level 2 of checkout\n"
    first = run(tocsin, live_server, responder, "incidents", "escalate", ident, "--level", "1")
    assert first == f"incident {ident} escalated to level 1 of checkout\n"

    reassigned = run(
        tocsin, live_server, responder, "incidents", "reassign", ident, "--user", "bob"
    )
    assert reassigned == f"incident {ident} reassigned to bob\n"
    mobilised = run(tocsin, live_server, responder, "incidents", "mobilise", ident,
                    "--team", "payments", "--user", "adam", "-m", "need eyes")  # fmt: skip
    assert mobilised == f"incident {ident}: paged adam, alice\n"
    as_json = json.loads(
        run(
            tocsin,
            live_server,
            responder,
            "incidents",
            "mobilise",
            ident,
            "--schedule",
            "primary",
            "--json",
        )
    )
    assert as_json == {"incident": incident.id, "paged": ["alice"]}


def test_mistakes_are_one_line(
    tocsin: Invoke, live_server: LiveServer, responder: dict[str, str], org: Org
) -> None:
    both = tocsin("oncall", "--schedule", "a", "--team", "b", "--url", live_server.url,
                  env=responder)  # fmt: skip
    assert (both.exit_code, both.stderr) == (2, "error: give at most one of --schedule, --team\n")
    unknown = tocsin("oncall", "--schedule", "nights", "--url", live_server.url, env=responder)
    assert unknown.exit_code == 1
    assert unknown.stderr == "error: 404: no schedule with slug 'nights'\n"
    window = tocsin("oncall", "shifts", "--schedule", "primary", "--days", "91",
                    "--url", live_server.url, env=responder)  # fmt: skip
    assert window.exit_code == 2
    no_token = tocsin("oncall", "--url", live_server.url)
    assert (no_token.exit_code, no_token.stderr) == (
        2,
        "error: no API token: pass --token or set TOCSIN_TOKEN\n",
    )
    nobody = tocsin("incidents", "mobilise", "1", "--url", live_server.url, env=responder)
    assert (nobody.exit_code, nobody.stderr) == (
        2,
        "error: name at least one --user, --schedule or --team\n",
    )
    observer = add_user(live_server.runtime, "olga", "observer", live_server.runtime.clock.now())
    olga = {"TOCSIN_TOKEN": token_for(live_server.runtime, observer, "observer",
                                      live_server.runtime.clock.now())}  # fmt: skip
    refused = tocsin("page", "--team", "payments", "-m", "x", "--url", live_server.url, env=olga)
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: 403: this action needs the responder role")
