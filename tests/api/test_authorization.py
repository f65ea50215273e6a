"""Who may call what: every /api/v1 route needs a token (login aside), observers only read,
responders act on incidents, admins administer, and a refused request changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.api.conftest import Tokens, assert_error, bearer, trigger
from tests.conftest import Org
from tocsin.db.base import Base
from tocsin.notify.models import ContactMethod, NotificationRule
from tocsin.oncall.models import (
    EscalationLevel,
    EscalationPolicy,
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
)
from tocsin.orgs.models import Service, User
from tocsin.runtime import Runtime

Call = tuple[str, str, dict[str, Any] | None]
OVERRIDE = {"start": "2026-01-06T00:00:00Z", "end": "2026-01-06T12:00:00Z"}
POLICY = {
    "slug": "other",
    "name": "Other",
    "levels": [{"targets": [{"type": "user", "username": "alice"}]}],
}
CONTACT = {"name": "mail", "kind": "email", "address": "olga@example.com"}
SUPPORT_HOURS = {"time_zone": "UTC", "days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}

RESPONDER_WRITES: list[Call] = [
    ("POST", "/api/v1/incidents/{incident}/acknowledge", None),
    ("POST", "/api/v1/incidents/{incident}/reassign", {"user": "alice"}),
    ("POST", "/api/v1/incidents/{incident}/notes", {"text": "hello"}),
    ("POST", "/api/v1/incidents/{incident}/escalate", None),
    ("POST", "/api/v1/incidents/{incident}/mobilise", {"users": ["alice"]}),
    ("POST", "/api/v1/page", {"team": "payments", "message": "checkout is down"}),
    ("POST", "/api/v1/schedules/primary/overrides", OVERRIDE),
    ("DELETE", "/api/v1/schedules/primary/overrides/{override}", None),
    ("POST", "/api/v1/incidents/{incident}/resolve", {"reason": "done"}),
]
ADMIN_WRITES: list[Call] = [  # in an order where each succeeds for an admin
    ("POST", "/api/v1/teams", {"slug": "sre", "name": "SRE"}),
    ("PATCH", "/api/v1/teams/payments", {"name": "Pay"}),
    ("POST", "/api/v1/teams/payments/members", {"user": "olga"}),
    ("DELETE", "/api/v1/teams/payments/members/alice", None),
    ("POST", "/api/v1/users", {"username": "bob", "name": "Bob", "email": "bob@example.com"}),
    ("PATCH", "/api/v1/users/adam", {"name": "Adam B"}),
    ("POST", "/api/v1/services", {"slug": "search", "name": "Search"}),
    ("PATCH", "/api/v1/services/checkout", {"urgency": "low", "support_hours": SUPPORT_HOURS}),
    ("POST", "/api/v1/services/checkout/integrations", {"name": "x", "type": "webhook"}),
    ("DELETE", "/api/v1/integrations/{integration}", None),
    ("POST", "/api/v1/schedules", {"slug": "spare", "name": "Spare", "time_zone": "UTC"}),
    ("PATCH", "/api/v1/schedules/primary", {"name": "Primary on call"}),
    ("POST", "/api/v1/escalation-policies", POLICY),
    ("PATCH", "/api/v1/escalation-policies/escalation", {"repeat": 2}),
    ("DELETE", "/api/v1/services/checkout", None),
    ("DELETE", "/api/v1/escalation-policies/escalation", None),
    ("DELETE", "/api/v1/schedules/primary", None),
    ("DELETE", "/api/v1/teams/payments", None),
    ("DELETE", "/api/v1/users/alice", None),
]
READS: list[Call] = [
    ("GET", "/api/v1/incidents", None),
    ("GET", "/api/v1/incidents/{incident}", None),
    ("GET", "/api/v1/incidents/{incident}/timeline", None),
    ("GET", "/api/v1/alerts", None),
    ("GET", "/api/v1/alerts/{alert}", None),
    ("GET", "/api/v1/teams", None),
    ("GET", "/api/v1/teams/payments", None),
    ("GET", "/api/v1/users", None),
    ("GET", "/api/v1/users/alice", None),
    ("GET", "/api/v1/me", None),
    ("GET", "/api/v1/services", None),
    ("GET", "/api/v1/services/checkout", None),
    ("GET", "/api/v1/services/checkout/integrations", None),
    ("GET", "/api/v1/tokens", None),
    ("GET", "/api/v1/schedules", None),
    ("GET", "/api/v1/schedules/primary", None),
    ("GET", "/api/v1/schedules/primary/overrides", None),
    ("GET", "/api/v1/schedules/primary/oncall", None),
    ("GET", "/api/v1/schedules/primary/shifts", None),
    ("GET", "/api/v1/oncall", None),
    ("GET", "/api/v1/oncall/gaps", None),
    ("GET", "/api/v1/escalation-policies", None),
    ("GET", "/api/v1/escalation-policies/escalation", None),
    ("GET", "/api/v1/escalation-policies/escalation/oncall", None),
    ("GET", "/api/v1/services/checkout/oncall", None),
    ("GET", "/api/v1/teams/payments/oncall", None),
]
# Open to every role, on the caller's own things only (tested in test_tokens/test_teams_users).
SELF_SERVICE: list[Call] = [
    ("POST", "/api/v1/tokens", {"name": "mine", "role": "observer"}),
    ("DELETE", "/api/v1/tokens/{token}", None),
    ("PATCH", "/api/v1/users/olga", {"name": "Olga"}),
    # Contact methods, notification rules and calendar feeds (tested in test_contact_methods
    # and test_oncall_feeds).
    ("GET", "/api/v1/users/olga/contact-methods", None),
    ("POST", "/api/v1/users/olga/contact-methods", CONTACT),
    ("GET", "/api/v1/users/olga/contact-methods/{method}", None),
    ("PATCH", "/api/v1/users/olga/contact-methods/{method}", {"enabled": False}),
    ("POST", "/api/v1/users/olga/contact-methods/{method}/test", None),
    ("DELETE", "/api/v1/users/olga/contact-methods/{method}", None),
    ("GET", "/api/v1/users/olga/notification-rules", None),
    ("POST", "/api/v1/users/olga/notification-rules", {"urgency": "high", "contact_method": "x"}),
    ("DELETE", "/api/v1/users/olga/notification-rules/{rule}", None),
    ("GET", "/api/v1/users/olga/notification-settings", None),
    ("PATCH", "/api/v1/users/olga/notification-settings", {"handoff_notice_minutes": 30}),
    ("POST", "/api/v1/users/olga/calendar-token", None),
    ("DELETE", "/api/v1/users/olga/calendar-token", None),
]
PUBLIC: list[Call] = [("POST", "/api/v1/auth/login", {"username": "alice", "password": "x"})]
ALL_CALLS = RESPONDER_WRITES + ADMIN_WRITES + READS + SELF_SERVICE + PUBLIC


def snapshot(rt: Runtime) -> dict[str, list[Any]]:
    """Every row of every table: a refused request must leave all of it as it was."""
    with rt.factory() as s:
        return {
            t.name: sorted(map(repr, s.execute(sa.select(t)).all()))
            for t in Base.metadata.sorted_tables
        }


@pytest.fixture
def ids(runtime: Runtime, org: Org, tokens: Tokens) -> dict[str, int]:
    incident = trigger(runtime, org, "db-1")
    with runtime.factory() as s:
        alert = s.execute(sa.text("SELECT id FROM alerts")).scalar_one()
        integration = s.execute(sa.text("SELECT min(id) FROM integrations")).scalar_one()
        token = s.execute(
            sa.text(
                "SELECT t.id FROM api_tokens t JOIN users u ON u.id = t.user_id "
                "WHERE u.username = 'olga'"
            )
        ).scalar_one()
    return {
        "incident": incident.id,
        "alert": alert,
        "integration": integration,
        "token": token,
        **on_call_rows(runtime, org),
    }


def on_call_rows(rt: Runtime, org: Org) -> dict[str, int]:
    """A schedule with an override of alice's, a policy paging it for checkout, olga's contact
    method and rule: the objects the on-call and contact routes act on."""
    now = datetime(2026, 1, 5, 9, tzinfo=UTC)
    with rt.factory() as s, s.begin():
        schedule = Schedule(slug="primary", name="Primary", time_zone="UTC", created_at=now)
        s.add(schedule)
        s.flush()
        s.add(
            ScheduleLayer(
                schedule_id=schedule.id,
                position=0,
                name="Weekly",
                start_local="2026-01-05T09:00",
                rotation_length=1,
                rotation_unit="weeks",
                members=[org.user_id],
                restrictions=[],
            )
        )
        override = ScheduleOverride(
            schedule_id=schedule.id,
            user_id=org.user_id,
            start_at=now + timedelta(days=2),
            end_at=now + timedelta(days=3),
            created_at=now,
        )
        policy = EscalationPolicy(slug="escalation", name="Escalation", created_at=now)
        s.add_all([override, policy])
        s.execute(
            sa.update(Service)
            .where(Service.id == org.service_id)
            .values(escalation_policy="escalation")
        )
        s.flush()
        s.add(
            EscalationLevel(
                policy_id=policy.id, position=0, targets=[{"type": "schedule", "id": schedule.id}]
            )
        )
        olga = s.scalars(sa.select(User).where(User.username == "olga")).one()
        method = ContactMethod(
            user_id=olga.id,
            name="mail",
            kind="email",
            secret={"address": "olga@example.com", "options": {}},
            display="olga@example.com",
            created_at=now,
        )
        s.add(method)
        s.flush()
        rule = NotificationRule(user_id=olga.id, urgency="high", contact_method_id=method.id)
        s.add(rule)
        s.flush()
        return {"override": override.id, "method": method.id, "rule": rule.id}


def call(client: TestClient, c: Call, ids: dict[str, int], headers: dict[str, str]) -> Any:
    method, path, body = c
    return client.request(method, path.format(**ids), headers=headers, json=body)


def test_every_api_route_is_in_this_matrix(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    routes = {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        if path.startswith("/api/v1/")
        for method in ops
    }

    def template(path: str) -> str:
        return (
            path.replace("{incident}", "{incident_id}")
            .replace("{alert}", "{alert_id}")
            .replace("{integration}", "{integration_id}")
            .replace("{token}", "{token_id}")
            .replace("{override}", "{override_id}")
            .replace("{method}", "{method_id}")
            .replace("{rule}", "{rule_id}")
            .replace("/schedules/primary", "/schedules/{slug}")
            .replace("/escalation-policies/escalation", "/escalation-policies/{slug}")
            .replace("/teams/payments/members/alice", "/teams/{slug}/members/{username}")
            .replace("/payments", "/{slug}")
            .replace("/checkout", "/{slug}")
            .replace("/users/adam", "/users/{username}")
            .replace("/users/alice", "/users/{username}")
            .replace("/users/olga", "/users/{username}")
        )

    covered = {(m, template(p)) for m, p, _ in ALL_CALLS}
    assert routes == covered


def test_no_token_no_access(client: TestClient, ids: dict[str, int], runtime: Runtime) -> None:
    before = snapshot(runtime)
    for c in ALL_CALLS:
        if c in PUBLIC:
            continue
        for headers in ({}, bearer("tcs_wrong"), {"Authorization": "Basic YWxpY2U6eA=="}):
            r = call(client, c, ids, headers)
            err = assert_error(r, 401)
            assert r.headers["www-authenticate"] == "Bearer", c
            assert err["code"] == "unauthorized"
    assert snapshot(runtime) == before


def test_observers_read_but_never_write(
    client: TestClient, ids: dict[str, int], tokens: Tokens, runtime: Runtime
) -> None:
    for c in READS:
        r = call(client, c, ids, tokens.observer)
        assert r.status_code == 200, (c, r.text)
    before = snapshot(runtime)
    for c in RESPONDER_WRITES + ADMIN_WRITES:
        err = assert_error(call(client, c, ids, tokens.observer), 403)
        assert err["code"] == "forbidden"
    assert snapshot(runtime) == before


def test_responders_act_on_incidents_but_do_not_administer(
    client: TestClient, ids: dict[str, int], tokens: Tokens, runtime: Runtime
) -> None:
    before = snapshot(runtime)
    for c in ADMIN_WRITES:
        assert_error(call(client, c, ids, tokens.responder), 403, "admin")
    assert snapshot(runtime) == before
    for c in RESPONDER_WRITES:
        r = call(client, c, ids, tokens.responder)
        assert r.is_success, (c, r.text)


def test_admins_may_do_everything(client: TestClient, ids: dict[str, int], tokens: Tokens) -> None:
    for c in READS + RESPONDER_WRITES + ADMIN_WRITES:
        r = call(client, c, ids, tokens.admin)
        assert r.is_success, (c, r.text)


def test_openapi_lists_the_routes_with_typed_models(client: TestClient) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    paths = spec["paths"]
    for path in [
        "/api/v1/incidents",
        "/api/v1/incidents/{incident_id}/acknowledge",
        "/api/v1/incidents/{incident_id}/timeline",
        "/api/v1/alerts",
        "/api/v1/services/{slug}/integrations",
        "/api/v1/teams/{slug}/members",
        "/api/v1/users/{username}",
        "/api/v1/tokens",
        "/api/v1/auth/login",
        "/api/v1/me",
    ]:
        assert path in paths, path
    ok = paths["/api/v1/incidents"]["get"]["responses"]["200"]
    ref = ok["content"]["application/json"]["schema"]["$ref"]
    page = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(page["properties"]) == {"items", "next_cursor"}
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert paths["/api/v1/incidents"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in paths["/api/v1/auth/login"]["post"]
    assert "ErrorOut" in spec["components"]["schemas"]
