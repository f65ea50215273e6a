"""Schedules over the API: definition and validation, overrides and who may add them, who is on
call at an instant, and the final shifts over a window."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Tokens, add_user, assert_error, bearer, token_for, walk
from tests.api.test_authorization import snapshot
from tests.conftest import Org
from tocsin.clock import FakeClock
from tocsin.runtime import Runtime

URL = "/api/v1/schedules"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def z(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


WEEKLY = {
    "name": "Weekly",
    "members": ["alice", "bob"],
    "start": "2026-01-05T09:00",
    "rotation": {"length": 1, "unit": "weeks"},
}
WEEKENDS = {
    "name": "Weekends",
    "members": ["adam"],
    "start": "2026-01-05T00:00",
    "rotation": {"length": 1, "unit": "days"},
    "restrictions": [
        {
            "kind": "weekly",
            "start_weekday": "sat",
            "start": "00:00",
            "end_weekday": 0,
            "end": "00:00",
        }
    ],
}


def schedule(**fields: Any) -> dict[str, Any]:
    return {
        "slug": "payments-primary",
        "name": "Payments primary",
        "time_zone": "Europe/Berlin",
        "team": "payments",
        "layers": [WEEKLY, WEEKENDS],
        **fields,
    }


@pytest.fixture
def bob(runtime: Runtime, org: Org, clock: FakeClock) -> dict[str, str]:
    user_id = add_user(runtime, "bob", "responder", clock.now())
    return bearer(token_for(runtime, user_id, "responder", clock.now()))


@pytest.fixture
def primary(client: TestClient, tokens: Tokens, bob: dict[str, str]) -> dict[str, Any]:
    r = client.post(URL, headers=tokens.admin, json=schedule())
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def on_call(client: TestClient, headers: dict[str, str], at: datetime) -> str | None:
    r = client.get(f"{URL}/payments-primary/oncall", headers=headers, params={"at": z(at)})
    assert r.status_code == 200, r.text
    user = r.json()["user"]
    return None if user is None else str(user["username"])


def test_create_read_update_delete(
    client: TestClient, tokens: Tokens, primary: dict[str, Any]
) -> None:
    assert primary["slug"] == "payments-primary"
    assert primary["team"] == "payments"
    assert [layer["name"] for layer in primary["layers"]] == ["Weekly", "Weekends"]
    weekends = primary["layers"][1]
    assert weekends["position"] == 1
    # Weekday names are stored and shown as numbers, times as HH:MM.
    assert weekends["restrictions"] == [
        {"kind": "weekly", "start_weekday": 5, "start": "00:00", "end_weekday": 0, "end": "00:00"}
    ]
    assert weekends["rotation"] == {"length": 1, "unit": "days"}
    assert client.get(f"{URL}/payments-primary", headers=tokens.observer).json() == primary
    assert [s["slug"] for s in walk(client, URL, tokens.observer)] == ["payments-primary"]

    r = client.patch(
        f"{URL}/payments-primary",
        headers=tokens.admin,
        json={"slug": "pay", "team": None, "layers": [WEEKLY], "time_zone": "America/New_York"},
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["slug"], changed["team"], changed["time_zone"]) == (
        "pay",
        None,
        "America/New_York",
    )
    assert [layer["name"] for layer in changed["layers"]] == ["Weekly"]
    assert changed["id"] == primary["id"]
    assert_error(client.get(f"{URL}/payments-primary", headers=tokens.admin), 404, "payments")
    assert client.delete(f"{URL}/pay", headers=tokens.admin).status_code == 204
    assert_error(client.delete(f"{URL}/pay", headers=tokens.admin), 404)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"time_zone": "Mars/Olympus"}, "time zone"),
        ({"slug": "Pay"}, "slug"),
        ({"layers": [{**WEEKLY, "start": "2026-01-05T09:00+01:00"}]}, "offset"),
        ({"layers": [{**WEEKLY, "start": "next monday"}]}, "local date and time"),
        ({"layers": [{**WEEKLY, "members": []}]}, "members"),
        ({"layers": [{**WEEKLY, "rotation": {"length": 1, "unit": "months"}}]}, "unit"),
        ({"layers": [{**WEEKLY, "rotation": {"length": 0, "unit": "days"}}]}, "length"),
        ({"layers": [{**WEEKLY, "end": "2026-01-01T00:00"}]}, "end must be after start"),
        ({"layers": [{**WEEKLY, "name": "override"}]}, "reserved"),
        ({"layers": [WEEKLY, WEEKLY]}, "two layers are named"),
        (
            {
                "layers": [
                    {
                        **WEEKLY,
                        "restrictions": [{"kind": "daily", "start": "09:00", "end": "09:00"}],
                    }
                ]
            },
            "needs a length",
        ),
        (
            {
                "layers": [
                    {
                        **WEEKLY,
                        "restrictions": [{"kind": "daily", "start": "25:00", "end": "09:00"}],
                    }
                ]
            },
            "time of day",
        ),
        (
            {
                "layers": [
                    {
                        **WEEKLY,
                        "restrictions": [{"kind": "weekly", "start": "09:00", "end": "17:00"}],
                    }
                ]
            },
            "start_weekday",
        ),
        ({"layers": [{**WEEKLY, "colour": "red"}]}, "colour"),
    ],
)
def test_bad_schedules_are_refused_and_write_nothing(
    client: TestClient,
    tokens: Tokens,
    bob: dict[str, str],
    runtime: Runtime,
    change: dict[str, Any],
    fragment: str,
) -> None:
    before = snapshot(runtime)
    assert_error(client.post(URL, headers=tokens.admin, json=schedule(**change)), 422, fragment)
    assert snapshot(runtime) == before


def test_references_must_exist_and_nothing_is_half_written(
    client: TestClient, tokens: Tokens, bob: dict[str, str], runtime: Runtime
) -> None:
    before = snapshot(runtime)
    unknown_member = schedule(layers=[{**WEEKLY, "members": ["alice", "zed"]}])
    assert_error(client.post(URL, headers=tokens.admin, json=unknown_member), 404, "zed")
    assert_error(client.post(URL, headers=tokens.admin, json=schedule(team="ghosts")), 404)
    assert snapshot(runtime) == before
    client.post(URL, headers=tokens.admin, json=schedule())
    assert_error(client.post(URL, headers=tokens.admin, json=schedule()), 409, "taken")
    r = client.patch(
        f"{URL}/payments-primary",
        headers=tokens.admin,
        json={"layers": [unknown_member["layers"][0]]},
    )
    assert_error(r, 404, "zed")
    layers = client.get(f"{URL}/payments-primary", headers=tokens.admin).json()["layers"]
    assert [layer["name"] for layer in layers] == ["Weekly", "Weekends"]
    assert_error(
        client.patch(f"{URL}/payments-primary", headers=tokens.admin, json={"name": None}),
        422,
        "null",
    )


def test_who_is_on_call_follows_layers_restrictions_and_overrides(
    client: TestClient, tokens: Tokens, primary: dict[str, Any], bob: dict[str, str]
) -> None:
    h = tokens.observer
    # The fake clock reads Monday 2026-01-05 09:00 UTC: alice's week has begun (08:00 UTC).
    r = client.get(f"{URL}/payments-primary/oncall", headers=h)
    assert r.json() == {
        "schedule": "payments-primary",
        "name": "Payments primary",
        "time_zone": "Europe/Berlin",
        "at": "2026-01-05T09:00:00Z",
        "user": {"username": "alice", "name": "Alice"},
    }
    assert on_call(client, h, utc(2026, 1, 5, 7, 59)) is None  # before the first hand-off
    assert on_call(client, h, utc(2026, 1, 9, 22, 59)) == "alice"  # Friday 23:59 Berlin
    assert on_call(client, h, utc(2026, 1, 9, 23)) == "adam"  # the weekend layer on top
    assert on_call(client, h, utc(2026, 1, 12, 8)) == "bob"  # Monday 09:00 Berlin
    # A time without an offset is UTC.
    r = client.get(f"{URL}/payments-primary/oncall", headers=h, params={"at": "2026-01-12T08:00"})
    assert r.json()["user"]["username"] == "bob"

    # alice takes Monday afternoon of bob's week; the override sits over every layer.
    override = {"start": "2026-01-12T12:00:00Z", "end": "2026-01-12T18:00:00Z"}
    r = client.post(f"{URL}/payments-primary/overrides", headers=tokens.responder, json=override)
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["user"], created["created_by"]) == ("alice", "user:alice")
    assert on_call(client, h, utc(2026, 1, 12, 13)) == "alice"
    assert on_call(client, h, utc(2026, 1, 12, 18)) == "bob"

    everywhere = client.get("/api/v1/oncall", headers=h, params={"at": "2026-01-12T13:00:00Z"})
    assert [(i["schedule"], i["user"]["username"]) for i in everywhere.json()["items"]] == [
        ("payments-primary", "alice")
    ]


def test_shifts_are_the_final_schedule(
    client: TestClient, tokens: Tokens, primary: dict[str, Any]
) -> None:
    params = {"start": "2026-01-05T08:00:00Z", "end": "2026-01-19T08:00:00Z"}
    r = client.get(f"{URL}/payments-primary/shifts", headers=tokens.observer, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["start"], body["end"], body["time_zone"]) == (
        "2026-01-05T08:00:00Z",
        "2026-01-19T08:00:00Z",
        "Europe/Berlin",
    )
    shifts = [(s["user"]["username"], s["start"], s["end"], s["source"]) for s in body["shifts"]]
    assert shifts == [
        ("alice", "2026-01-05T08:00:00Z", "2026-01-09T23:00:00Z", "Weekly"),
        ("adam", "2026-01-09T23:00:00Z", "2026-01-11T23:00:00Z", "Weekends"),
        ("alice", "2026-01-11T23:00:00Z", "2026-01-12T08:00:00Z", "Weekly"),
        ("bob", "2026-01-12T08:00:00Z", "2026-01-16T23:00:00Z", "Weekly"),
        ("adam", "2026-01-16T23:00:00Z", "2026-01-18T23:00:00Z", "Weekends"),
        ("bob", "2026-01-18T23:00:00Z", "2026-01-19T08:00:00Z", "Weekly"),
    ]
    # Default window: a week from now.
    r = client.get(f"{URL}/payments-primary/shifts", headers=tokens.observer)
    assert (r.json()["start"], r.json()["end"]) == ("2026-01-05T09:00:00Z", "2026-01-12T09:00:00Z")


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"start": "2026-01-05T00:00:00Z", "end": "2026-06-05T00:00:00Z"}, "90 days"),
        ({"start": "2026-01-05T00:00:00Z", "end": "2026-01-05T00:00:00Z"}, "later than start"),
        ({"start": "soon"}, "start"),
    ],
)
def test_shift_windows_are_bounded(
    client: TestClient,
    tokens: Tokens,
    primary: dict[str, Any],
    params: dict[str, str],
    fragment: str,
) -> None:
    r = client.get(f"{URL}/payments-primary/shifts", headers=tokens.observer, params=params)
    assert_error(r, 422, fragment)


def test_override_permissions(
    client: TestClient,
    tokens: Tokens,
    primary: dict[str, Any],
    bob: dict[str, str],
    runtime: Runtime,
    clock: FakeClock,
) -> None:
    url = f"{URL}/payments-primary/overrides"
    span = {"start": "2026-01-06T08:00:00Z", "end": "2026-01-06T20:00:00Z"}
    before = snapshot(runtime)
    assert_error(client.post(url, headers=tokens.observer, json=span), 403, "responder")
    assert_error(client.post(url, headers=tokens.responder, json={**span, "user": "bob"}), 403)
    assert_error(client.post(url, headers=tokens.admin, json={**span, "user": "zed"}), 404, "zed")
    # The bootstrap token belongs to nobody: it has to say whom the override is for.
    r = client.post(url, headers={"Authorization": "Bearer test-bootstrap-admin-token"}, json=span)
    assert_error(r, 422, "name one")
    for bad, fragment in [
        ({"start": "2026-01-06T20:00:00Z", "end": "2026-01-06T08:00:00Z"}, "later than start"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}, "past"),
        ({"start": "2026-01-06T00:00:00Z", "end": "2028-01-06T00:00:00Z"}, "366 days"),
        ({"start": "2026-01-06T00:00:00Z"}, "end"),
    ]:
        assert_error(client.post(url, headers=tokens.responder, json=bad), 422, fragment)
    assert snapshot(runtime) == before

    mine = client.post(url, headers=tokens.responder, json=span).json()
    bobs = client.post(url, headers=tokens.admin, json={**span, "user": "bob"}).json()
    assert bobs["user"] == "bob"
    listed = walk(client, url, tokens.observer)
    assert [o["id"] for o in listed] == [mine["id"], bobs["id"]]
    # Overrides that have ended drop out of the default listing.
    clock.set(utc(2026, 1, 7))
    assert walk(client, url, tokens.observer) == []
    assert len(walk(client, url, tokens.observer, since="2026-01-06T00:00:00Z")) == 2
    clock.set(utc(2026, 1, 5, 9))

    assert_error(client.delete(f"{url}/{bobs['id']}", headers=tokens.responder), 403)
    assert client.delete(f"{url}/{bobs['id']}", headers=bob).status_code == 204
    assert client.delete(f"{url}/{mine['id']}", headers=tokens.admin).status_code == 204
    assert_error(client.delete(f"{url}/{mine['id']}", headers=tokens.admin), 404)
