"""Calendar feeds: a per-user token issued (and rotated) over the API, stored only as a hash,
and the public .ics routes it unlocks; anything wrong is a 404 that reveals nothing."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from icalendar import Calendar

from tests.api.conftest import Tokens, add_user
from tests.conftest import Org
from tocsin.clock import FakeClock
from tocsin.orgs.models import User
from tocsin.runtime import Runtime

LAYER = {
    "name": "Weekly",
    "members": ["alice", "bob"],
    "start": "2026-01-05T09:00",
    "rotation": {"length": 1, "unit": "weeks"},
}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def schedules(client: TestClient, tokens: Tokens, runtime: Runtime, clock: FakeClock) -> None:
    add_user(runtime, "bob", "responder", clock.now())
    for body in [
        {
            "slug": "primary",
            "name": "Payments primary",
            "time_zone": "Europe/Berlin",
            "layers": [LAYER],
        },
        {
            "slug": "other",
            "name": "Other",
            "time_zone": "UTC",
            "layers": [{**LAYER, "members": ["bob"]}],
        },
    ]:
        r = client.post("/api/v1/schedules", headers=tokens.admin, json=body)
        assert r.status_code == 201, r.text


def issue(client: TestClient, headers: dict[str, str], username: str = "alice") -> dict[str, Any]:
    r = client.post(f"/api/v1/users/{username}/calendar-token", headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def feed(client: TestClient, path: str, **params: str) -> Calendar:
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/calendar; charset=utf-8"
    return Calendar.from_ical(r.content)


def events(calendar: Calendar) -> list[tuple[datetime, datetime, str]]:
    return [
        (e.decoded("DTSTART"), e.decoded("DTEND"), str(e["SUMMARY"]))
        for e in calendar.walk("VEVENT")
    ]


def uids(calendar: Calendar) -> list[str]:
    return [str(e["UID"]) for e in calendar.walk("VEVENT")]


def test_the_user_feed_has_the_users_shifts(
    client: TestClient, tokens: Tokens, schedules: None, runtime: Runtime, clock: FakeClock
) -> None:
    issued = issue(client, tokens.responder)
    token = issued["token"]
    assert token.startswith("tcal_") and len(token) > 40
    assert issued["user_feed_url"] == f"http://127.0.0.1:8080/calendar/users/{token}.ics"
    assert issued["schedule_feed_urls"] == {
        "other": f"http://127.0.0.1:8080/calendar/schedules/other.ics?token={token}",
        "primary": f"http://127.0.0.1:8080/calendar/schedules/primary.ics?token={token}",
    }
    with runtime.factory() as s:
        stored = s.scalars(sa.select(User.calendar_token_hash).where(User.username == "alice"))
        assert stored.one() == hashlib.sha256(token.encode()).hexdigest()

    # No Authorization header: the token in the URL is the credential.
    calendar = feed(client, f"/calendar/users/{token}.ics")
    assert str(calendar["X-WR-CALNAME"]) == "On call: Alice"
    # A week back to 60 days ahead of the start of today (2026-01-05): alice's weeks.
    summary = "On call: Payments primary (Alice)"
    assert events(calendar) == [
        (utc(2026, 1, 5, 8), utc(2026, 1, 12, 8), summary),
        (utc(2026, 1, 19, 8), utc(2026, 1, 26, 8), summary),
        (utc(2026, 2, 2, 8), utc(2026, 2, 9, 8), summary),
        (utc(2026, 2, 16, 8), utc(2026, 2, 23, 8), summary),
        (utc(2026, 3, 2, 8), utc(2026, 3, 6), summary),
    ]
    # Fetched again later the same events keep their UIDs, so calendar apps update them.
    first = uids(calendar)
    clock.advance(timedelta(hours=20))
    assert uids(feed(client, f"/calendar/users/{token}.ics")) == first
    clock.advance(timedelta(days=1))
    assert uids(feed(client, f"/calendar/users/{token}.ics"))[:4] == first[:4]


def test_a_schedule_feed_is_readable_with_any_users_token(
    client: TestClient, tokens: Tokens, schedules: None
) -> None:
    token = issue(client, tokens.observer, "olga")["token"]
    calendar = feed(client, "/calendar/schedules/primary.ics", token=token)
    assert str(calendar["X-WR-CALNAME"]) == "On call: Payments primary"
    names = [summary for _, _, summary in events(calendar)]
    assert names[:2] == ["On call: Payments primary (Alice)", "On call: Payments primary (Bob)"]
    assert len(names) == 9  # weekly hand-offs from 2026-01-05 to 2026-03-06


def test_wrong_tokens_get_the_same_404(
    client: TestClient, tokens: Tokens, schedules: None, runtime: Runtime
) -> None:
    old = issue(client, tokens.responder)["token"]
    new = issue(client, tokens.responder)["token"]  # rotating revokes the old one
    assert new != old
    feed(client, f"/calendar/users/{new}.ics")
    answers = [
        client.get(f"/calendar/users/{old}.ics"),
        client.get(f"/calendar/users/{new[:-1]}.ics"),
        client.get("/calendar/users/tcal_nothing.ics"),
        client.get(f"/calendar/users/{'x' * 5000}.ics"),
        client.get("/calendar/schedules/primary.ics"),
        client.get("/calendar/schedules/primary.ics", params={"token": old}),
        client.get("/calendar/schedules/nowhere.ics", params={"token": new}),
    ]
    for r in answers:
        assert r.status_code == 404, r.text
        assert r.json() == answers[0].json()
    # A deactivated user's feeds stop working; so does a revoked token.
    client.patch("/api/v1/users/alice", headers=tokens.admin, json={"active": False})
    assert client.get(f"/calendar/users/{new}.ics").status_code == 404
    client.patch("/api/v1/users/alice", headers=tokens.admin, json={"active": True})
    assert client.get(f"/calendar/users/{new}.ics").status_code == 200
    r = client.delete("/api/v1/users/alice/calendar-token", headers=tokens.responder)
    assert r.status_code == 204
    assert client.get(f"/calendar/users/{new}.ics").status_code == 404


def test_only_the_user_or_an_admin_issues_a_token(
    client: TestClient, tokens: Tokens, org: Org
) -> None:
    r = client.post("/api/v1/users/alice/calendar-token", headers=tokens.observer)
    assert r.status_code == 403
    assert (
        client.delete("/api/v1/users/alice/calendar-token", headers=tokens.observer).status_code
        == 403
    )
    token = issue(client, tokens.admin)["token"]
    assert client.get(f"/calendar/users/{token}.ics").status_code == 200
    assert client.post("/api/v1/users/zed/calendar-token", headers=tokens.admin).status_code == 404
    assert client.post("/api/v1/users/alice/calendar-token").status_code == 401
