"""Paging people over the API: escalate an incident now, mobilise responders into it, and page
a team with a new incident. The pages are real outbox rows, made by each user's rules."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import tocsin.oncall.escalation  # noqa: F401  (registers the escalation's lifecycle hook)
from tests.api.conftest import Tokens, add_user, assert_error, trigger, walk
from tests.api.test_authorization import snapshot
from tests.conftest import Org
from tocsin.clock import FakeClock
from tocsin.incidents.models import Incident
from tocsin.notify.models import Notification
from tocsin.orgs.models import User
from tocsin.runtime import Runtime


def post(client: TestClient, headers: dict[str, str], url: str, body: Any) -> dict[str, Any]:
    r = client.post(url, headers=headers, json=body)
    assert r.is_success, r.text
    answer: dict[str, Any] = r.json()
    return answer


@pytest.fixture
def paged_org(client: TestClient, tokens: Tokens, runtime: Runtime, clock: FakeClock) -> None:
    """alice and bob take weekly turns; the checkout policy pages the schedule, then bob.
    Everyone has an email contact method and a rule to use it at once."""
    add_user(runtime, "bob", "responder", clock.now())
    h = tokens.admin
    for user in ("alice", "bob", "adam"):
        method = {"name": "mail", "kind": "email", "address": f"{user}@example.com"}
        post(client, h, f"/api/v1/users/{user}/contact-methods", method)
        for urgency in ("high", "low"):
            rule = {"urgency": urgency, "contact_method": "mail"}
            post(client, h, f"/api/v1/users/{user}/notification-rules", rule)
    layer = {
        "name": "Weekly",
        "members": ["alice", "bob"],
        "start": "2026-01-05T00:00",
        "rotation": {"length": 1, "unit": "weeks"},
    }
    schedule = {"slug": "primary", "name": "Primary", "time_zone": "UTC", "layers": [layer]}
    post(client, h, "/api/v1/schedules", schedule)
    policy = {
        "slug": "checkout-escalation",
        "name": "Checkout",
        "team": "payments",
        "levels": [
            {"delay_minutes": 5, "targets": [{"type": "schedule", "slug": "primary"}]},
            {"delay_minutes": 10, "targets": [{"type": "user", "username": "bob"}]},
        ],
    }
    post(client, h, "/api/v1/escalation-policies", policy)
    r = client.patch(
        "/api/v1/services/checkout", headers=h, json={"escalation_policy": "checkout-escalation"}
    )
    assert r.status_code == 200, r.text


def pages(runtime: Runtime, incident_id: int) -> list[tuple[str, int | None, int | None]]:
    """(username, level, loop) of every page of the incident, oldest first."""
    with runtime.factory() as s:
        rows = s.execute(
            sa.select(User.username, Notification.level, Notification.loop)
            .join(User, User.id == Notification.user_id)
            .where(Notification.incident_id == incident_id)
            .order_by(Notification.id)
        )
        return [(r.username, r.level, r.loop) for r in rows]


def test_escalate_pages_the_next_level_now(
    client: TestClient, tokens: Tokens, org: Org, paged_org: None, runtime: Runtime
) -> None:
    incident = trigger(runtime, org, "db-1")
    runtime.worker.run_once()  # the first level is paged by the engine
    assert pages(runtime, incident.id) == [("alice", 0, 0)]

    url = f"/api/v1/incidents/{incident.id}/escalate"
    escalated = post(client, tokens.responder, url, None)
    assert (escalated["escalation_policy"], escalated["escalation_level"]) == (
        "checkout-escalation",
        2,
    )
    assert escalated["status"] == "triggered"
    assert pages(runtime, incident.id)[-1][:2] == ("bob", 1)
    # Back to the first level, by number.
    again = post(client, tokens.admin, url, {"level": 1})
    assert again["escalation_level"] == 1
    assert again["escalation_loop"] > escalated["escalation_loop"]
    assert pages(runtime, incident.id)[-1][:2] == ("alice", 0)
    timeline = walk(client, f"/api/v1/incidents/{incident.id}/timeline", tokens.observer)
    assert any(e["actor"] == "user:alice" and "escalation" in e["kind"] for e in timeline)

    before = snapshot(runtime)
    assert_error(client.post(url, headers=tokens.responder, json={"level": 3}), 422, "level 3")
    assert_error(client.post(url, headers=tokens.responder, json={"level": 0}), 422, "level")
    assert_error(client.post(url, headers=tokens.observer, json=None), 403, "responder")
    assert_error(client.post("/api/v1/incidents/999/escalate", headers=tokens.admin), 404)
    assert snapshot(runtime) == before
    client.post(f"/api/v1/incidents/{incident.id}/resolve", headers=tokens.responder)
    assert_error(client.post(url, headers=tokens.responder, json=None), 409, "resolved")


def test_escalating_without_a_policy_is_a_conflict(
    client: TestClient, tokens: Tokens, org: Org, runtime: Runtime
) -> None:
    incident = trigger(runtime, org, "db-1")
    r = client.post(f"/api/v1/incidents/{incident.id}/escalate", headers=tokens.responder)
    assert_error(r, 409, "nobody to escalate to")


def test_mobilise_pages_more_responders(
    client: TestClient, tokens: Tokens, org: Org, paged_org: None, runtime: Runtime
) -> None:
    incident = trigger(runtime, org, "db-1")
    url = f"/api/v1/incidents/{incident.id}/mobilise"
    body = {"users": ["adam"], "schedules": ["primary"], "message": "need a second pair of eyes"}
    answer = post(client, tokens.responder, url, body)
    assert answer == {"incident": incident.id, "paged": ["adam", "alice"]}
    assert sorted(p[0] for p in pages(runtime, incident.id) if p[1] == -1) == ["adam", "alice"]
    # A team pages every active member (payments: alice).
    assert post(client, tokens.responder, url, {"teams": ["payments"]})["paged"] == ["alice"]
    timeline = walk(client, f"/api/v1/incidents/{incident.id}/timeline", tokens.observer)
    requests = [e for e in timeline if e["kind"] == "responders.requested"]
    assert len(requests) == 2 and "need a second pair of eyes" in requests[0]["message"]

    before = snapshot(runtime)
    for bad, status, fragment in [
        ({}, 422, "at least one"),
        ({"users": ["zed"]}, 404, "zed"),
        ({"schedules": ["nights"]}, 404, "nights"),
        ({"teams": ["ghosts"]}, 404, "ghosts"),
        ({"users": ["alice"], "message": ""}, 422, "message"),
    ]:
        assert_error(client.post(url, headers=tokens.responder, json=bad), status, fragment)
    assert_error(client.post(url, headers=tokens.observer, json={"users": ["alice"]}), 403)
    assert snapshot(runtime) == before
    client.patch("/api/v1/users/adam", headers=tokens.admin, json={"name": "Adam"})
    with runtime.factory() as s, s.begin():
        s.execute(sa.update(User).where(User.username == "olga").values(active=False))
    r = client.post(url, headers=tokens.responder, json={"users": ["olga"]})
    assert_error(r, 409, "deactivated")


def test_page_a_team_opens_an_incident(
    client: TestClient, tokens: Tokens, org: Org, paged_org: None, runtime: Runtime
) -> None:
    body = {"team": "payments", "message": "Checkout is returning 500s", "urgency": "high"}
    r = client.post("/api/v1/page", headers=tokens.responder, json=body)
    assert r.status_code == 201, r.text
    opened = r.json()
    assert (opened["title"], opened["urgency"], opened["status"]) == (
        "Checkout is returning 500s",
        "high",
        "triggered",
    )
    # The team's policy pages: its first level has alice on call.
    assert opened["escalation_policy"] == "checkout-escalation"
    runtime.worker.run_once()
    assert [p[0] for p in pages(runtime, opened["id"])] == ["alice"]
    with runtime.factory() as s:
        incident = s.get(Incident, opened["id"])
        assert incident is not None
    timeline = walk(client, f"/api/v1/incidents/{opened['id']}/timeline", tokens.observer)
    assert timeline[0]["actor"] == "user:alice"

    for bad, status in [
        ({"team": "ghosts", "message": "x"}, 404),
        ({"team": "payments", "message": ""}, 422),
        ({"team": "payments", "message": "x", "urgency": "medium"}, 422),
        ({"team": "payments"}, 422),
    ]:
        assert_error(client.post("/api/v1/page", headers=tokens.responder, json=bad), status)
    assert_error(client.post("/api/v1/page", headers=tokens.observer, json=body), 403)
