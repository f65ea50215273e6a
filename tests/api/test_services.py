"""Services and their integrations over the API."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.api.conftest import Tokens, assert_error, trigger, walk
from tests.conftest import Org
from tocsin.orgs.models import Integration, Service
from tocsin.runtime import Runtime

URL = "/api/v1/services"


def new_service(**fields: Any) -> dict[str, Any]:
    return {"slug": "search", "name": "Search", **fields}


def add_policy(client: TestClient, tokens: Tokens, slug: str) -> None:
    body = {
        "slug": slug,
        "name": slug.title(),
        "levels": [{"targets": [{"type": "user", "username": "alice"}]}],
    }
    r = client.post("/api/v1/escalation-policies", headers=tokens.admin, json=body)
    assert r.status_code == 201, r.text


def stored_service(rt: Runtime, slug: str) -> Service | None:
    with rt.factory() as s:
        return s.scalars(sa.select(Service).where(Service.slug == slug)).one_or_none()


def test_create_get_list_update_delete(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    add_policy(client, tokens, "payments-primary")
    body = new_service(
        team="payments",
        escalation_policy="payments-primary",
        urgency="low",
        auto_resolve_seconds=3600,
        ack_timeout_seconds=600,
        grouping={"type": "fields", "fields": ["labels.alertname"], "window_seconds": 900},
    )
    r = client.post(URL, headers=tokens.admin, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["team"] == "payments"
    assert created["grouping"] == {
        "type": "fields",
        "fields": ["labels.alertname"],
        "window_seconds": 900,
    }
    assert (created["urgency"], created["auto_resolve_seconds"]) == ("low", 3600)
    assert client.get(f"{URL}/search", headers=tokens.observer).json() == created
    assert [s["slug"] for s in walk(client, URL, tokens.observer, limit=1)] == [
        "checkout",
        "search",
    ]

    patch = {
        "team": None,
        "grouping": {"type": "time_window", "window_seconds": 300},
        "auto_resolve_seconds": None,
        "name": "Site search",
    }
    r = client.patch(f"{URL}/search", headers=tokens.admin, json=patch)
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["team"] is None
    assert updated["grouping"] == {"type": "time_window", "window_seconds": 300, "fields": None}
    assert (updated["name"], updated["auto_resolve_seconds"]) == ("Site search", None)
    assert updated["ack_timeout_seconds"] == 600  # untouched
    # What the event processor reads is what the API validated.
    with runtime.factory() as s:
        stored = s.scalars(sa.select(Service).where(Service.slug == "search")).one()
        assert stored.grouping == {"type": "time_window", "window_seconds": 300}

    r = client.patch(f"{URL}/search", headers=tokens.admin, json={"slug": "find"})
    assert r.json()["slug"] == "find"
    assert_error(client.get(f"{URL}/search", headers=tokens.observer), 404, "search")
    assert client.delete(f"{URL}/find", headers=tokens.admin).status_code == 204
    assert_error(client.get(f"{URL}/find", headers=tokens.observer), 404)
    assert_error(client.delete(f"{URL}/find", headers=tokens.admin), 404)


def test_grouping_is_validated(client: TestClient, org: Org, tokens: Tokens) -> None:
    bad = [
        {"type": "sometimes"},
        {"type": "time_window"},
        {"type": "time_window", "window_seconds": 0},
        {"type": "time_window", "window_seconds": "soon"},
        {"type": "fields", "fields": []},
        {"type": "fields", "fields": [""]},
        {"type": "fields", "fields": ["a"], "window_seconds": -5},
        {"type": "none", "window_seconds": 60},
        {"window_seconds": 60},
        "none",
    ]
    for grouping in bad:
        r = client.post(URL, headers=tokens.admin, json=new_service(grouping=grouping))
        assert_error(r, 422, "grouping")
        r = client.patch(f"{URL}/checkout", headers=tokens.admin, json={"grouping": grouping})
        assert_error(r, 422, "grouping")
    assert_error(client.get(f"{URL}/search", headers=tokens.admin), 404)
    checkout = client.get(f"{URL}/checkout", headers=tokens.admin).json()
    assert checkout["grouping"]["type"] == "none"


def test_bad_service_input(client: TestClient, org: Org, tokens: Tokens) -> None:
    h = tokens.admin
    cases = [
        (new_service(slug="Search"), "slug"),
        (new_service(slug="-search"), "slug"),
        (new_service(slug="s" * 65), "slug"),
        (new_service(name=""), "name"),
        (new_service(name="n" * 201), "name"),
        (new_service(urgency="medium"), "urgency"),
        (new_service(auto_resolve_seconds=0), "auto_resolve_seconds"),
        (new_service(ack_timeout_seconds="ten"), "ack_timeout_seconds"),
        (new_service(escalation_policy="p" * 65), "escalation_policy"),
        (new_service(description="d\x00"), "description"),
        (new_service(colour="blue"), "colour"),
        ({"name": "No slug"}, "slug"),
    ]
    for body, field in cases:
        assert_error(client.post(URL, headers=h, json=body), 422, field)
    assert_error(client.post(URL, headers=h, json=new_service(team="nope")), 404, "nope")
    assert_error(client.post(URL, headers=h, json=new_service(slug="checkout")), 409, "checkout")
    assert_error(client.patch(f"{URL}/checkout", headers=h, json={"name": None}), 422, "null")
    assert_error(client.patch(f"{URL}/checkout", headers=h, json={"urgency": None}), 422, "null")
    client.post(URL, headers=h, json=new_service())
    assert_error(client.patch(f"{URL}/search", headers=h, json={"slug": "checkout"}), 409)
    assert_error(client.patch(f"{URL}/search", headers=h, json={"team": "ghosts"}), 404)
    assert client.get(f"{URL}/search", headers=h).json()["team"] is None
    assert [s["slug"] for s in walk(client, URL, h)] == ["checkout", "search"]


def test_integration_keys(client: TestClient, org: Org, tokens: Tokens) -> None:
    url = f"{URL}/checkout/integrations"
    r = client.post(url, headers=tokens.admin, json={"name": "pd2", "type": "pagerduty"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert re.fullmatch(r"[0-9a-f]{32}", created["key"])
    assert (created["service"], created["type"], created["options"]) == (
        "checkout",
        "pagerduty",
        {},
    )
    other = client.post(url, headers=tokens.admin, json={"name": "pd3", "type": "pagerduty"})
    assert other.json()["key"] != created["key"]

    as_admin = {i["name"]: i for i in walk(client, url, tokens.admin)}
    assert as_admin["pd2"]["key"] == created["key"]
    # Routing keys are credentials: only admins see them in listings.
    as_observer = {i["name"]: i for i in walk(client, url, tokens.observer)}
    assert set(as_observer) == {"events", "prometheus", "hooks", "pd2", "pd3"}
    assert all(i["key"] is None for i in as_observer.values())
    assert as_observer["pd2"]["key_prefix"] == created["key"][:4]

    assert_error(
        client.post(url, headers=tokens.admin, json={"name": "pd2", "type": "webhook"}), 409
    )
    assert_error(
        client.post(url, headers=tokens.admin, json={"name": "x", "type": "internal"}), 422
    )
    assert_error(
        client.post(url, headers=tokens.admin, json={"name": "a b", "type": "webhook"}), 422
    )
    assert_error(
        client.post(
            f"{URL}/nope/integrations", headers=tokens.admin, json={"name": "x", "type": "webhook"}
        ),
        404,
    )

    assert (
        client.delete(f"/api/v1/integrations/{created['id']}", headers=tokens.admin).status_code
        == 204
    )
    assert "pd2" not in {i["name"] for i in walk(client, url, tokens.admin)}
    assert_error(client.delete(f"/api/v1/integrations/{created['id']}", headers=tokens.admin), 404)


def test_request_auth_is_stored_hashed_and_never_returned(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    url = f"{URL}/checkout/integrations"
    bearer = {
        "name": "am2",
        "type": "alertmanager",
        "options": {
            "auth": {"type": "bearer", "token": "s3cret-token"},
            "default_severity": "error",
        },
    }
    r = client.post(url, headers=tokens.admin, json=bearer)
    assert r.status_code == 201, r.text
    assert r.json()["options"] == {"auth": {"type": "bearer"}, "default_severity": "error"}
    basic = {
        "name": "am3",
        "type": "alertmanager",
        "options": {"auth": {"type": "basic", "username": "am", "password": "pa55word"}},
    }
    r = client.post(url, headers=tokens.admin, json=basic)
    assert r.json()["options"] == {"auth": {"type": "basic", "username": "am"}}
    listing = client.get(url, headers=tokens.admin).text
    assert "s3cret-token" not in listing and "pa55word" not in listing
    assert "sha256" not in listing

    with runtime.factory() as s:
        stored = {
            i.name: i.options
            for i in s.scalars(sa.select(Integration).where(Integration.name.in_(["am2", "am3"])))
        }
    assert stored["am2"]["auth"] == {
        "type": "bearer",
        "token_sha256": hashlib.sha256(b"s3cret-token").hexdigest(),
    }
    assert stored["am3"]["auth"] == {
        "type": "basic",
        "username": "am",
        "password_sha256": hashlib.sha256(b"pa55word").hexdigest(),
    }

    bad_auth = [
        {"type": "digest", "token": "x"},
        {"type": "bearer"},
        {"type": "bearer", "token": ""},
        {"type": "bearer", "token": "x", "extra": 1},
        {"type": "basic", "password": "x"},
        {"type": "bearer", "token_sha256": "not-hex"},
        "token",
    ]
    for n, auth in enumerate(bad_auth):
        body = {"name": f"bad{n}", "type": "alertmanager", "options": {"auth": auth}}
        assert_error(client.post(url, headers=tokens.admin, json=body), 422, "auth")
    pd = {
        "name": "pd-auth",
        "type": "pagerduty",
        "options": {"auth": {"type": "bearer", "token": "x"}},
    }
    assert_error(client.post(url, headers=tokens.admin, json=pd), 422, "auth")
    names = {i["name"] for i in walk(client, url, tokens.admin)}
    assert names == {"events", "prometheus", "hooks", "am2", "am3"}


def test_a_new_key_and_its_credentials_work_for_ingestion(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    body = {
        "name": "am-e2e",
        "type": "alertmanager",
        "options": {"auth": {"type": "bearer", "token": "scrape-me"}},
    }
    key = client.post(f"{URL}/checkout/integrations", headers=tokens.admin, json=body).json()["key"]
    notification = {
        "version": "4",
        "status": "firing",
        "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull"}, "fingerprint": "f1"}],
    }
    hook = f"/integrations/alertmanager/{key}"
    assert client.post(hook, json=notification).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post(hook, json=notification, headers=wrong).status_code == 401
    r = client.post(hook, json=notification, headers={"Authorization": "Bearer scrape-me"})
    assert r.status_code == 200, r.text
    runtime.processor.drain()
    [alert] = client.get("/api/v1/alerts", headers=tokens.observer).json()["items"]
    assert (alert["dedup_key"], alert["summary"]) == ("f1", "DiskFull")


def test_a_deleted_key_stops_working_at_once(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    body = {"name": "short-lived", "type": "pagerduty"}
    created = client.post(f"{URL}/checkout/integrations", headers=tokens.admin, json=body).json()

    def enqueue() -> int:
        event = {
            "routing_key": created["key"],
            "event_action": "trigger",
            "dedup_key": "k",
            "payload": {"summary": "s", "source": "h", "severity": "info"},
        }
        return client.post("/v2/enqueue", json=event).status_code

    assert enqueue() == 202
    client.delete(f"/api/v1/integrations/{created['id']}", headers=tokens.admin)
    assert 400 <= enqueue() < 500
    # The same for every key of a deleted service.
    keys = [
        i["key"]
        for i in client.get(f"{URL}/checkout/integrations", headers=tokens.admin).json()["items"]
    ]
    created = {"key": keys[0]}
    assert enqueue() == 202
    assert client.delete(f"{URL}/checkout", headers=tokens.admin).status_code == 204
    assert 400 <= enqueue() < 500


BERLIN_OFFICE = {
    "time_zone": "Europe/Berlin",
    "days": [0, 1, 2, 3, 4],
    "start": "09:00",
    "end": "17:00",
}


def test_support_hours_are_set_shown_and_cleared(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    hours = {
        "time_zone": "Europe/Berlin",
        "days": ["fri", 0, "tuesday"],
        "start": "09:00",
        "end": "17:30",
    }
    r = client.post(URL, headers=tokens.admin, json=new_service(support_hours=hours))
    assert r.status_code == 201, r.text
    # Shown, and stored for the escalation engine, in the one normalised form.
    normalised = {"time_zone": "Europe/Berlin", "days": [0, 1, 4], "start": "09:00", "end": "17:30"}
    assert r.json()["support_hours"] == normalised
    assert (
        client.get(f"{URL}/search", headers=tokens.observer).json()["support_hours"] == normalised
    )
    stored = stored_service(runtime, "search")
    assert stored is not None and stored.support_hours == normalised

    # A window may run past midnight; other fields leave the hours alone.
    night = {"time_zone": "UTC", "days": [5, 6], "start": "22:00", "end": "06:00"}
    r = client.patch(f"{URL}/search", headers=tokens.admin, json={"support_hours": night})
    assert r.status_code == 200, r.text
    assert r.json()["support_hours"] == night
    r = client.patch(f"{URL}/search", headers=tokens.admin, json={"name": "Site search"})
    assert r.json()["support_hours"] == night

    r = client.patch(f"{URL}/search", headers=tokens.admin, json={"support_hours": None})
    assert r.status_code == 200, r.text
    assert r.json()["support_hours"] is None
    stored = stored_service(runtime, "search")
    assert stored is not None and stored.support_hours is None
    # Without support hours, as before.
    assert client.get(f"{URL}/checkout", headers=tokens.observer).json()["support_hours"] is None


def test_bad_support_hours_are_refused_and_nothing_is_written(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    h = tokens.admin
    assert (
        client.patch(
            f"{URL}/checkout", headers=h, json={"support_hours": BERLIN_OFFICE}
        ).status_code
        == 200
    )
    bad = [
        ({**BERLIN_OFFICE, "time_zone": "Mars/Olympus"}, "time zone"),
        ({**BERLIN_OFFICE, "days": []}, "days"),
        ({**BERLIN_OFFICE, "days": [0, 0]}, "twice"),
        ({**BERLIN_OFFICE, "days": [7]}, "days"),
        ({**BERLIN_OFFICE, "days": ["someday"]}, "days"),
        ({**BERLIN_OFFICE, "start": "25:00"}, "start"),
        ({**BERLIN_OFFICE, "end": "09:00"}, "same time"),
        ({**BERLIN_OFFICE, "lunch": "12:00"}, "lunch"),
        ({key: v for key, v in BERLIN_OFFICE.items() if key != "start"}, "start"),
        ("office hours", "support_hours"),
    ]
    for hours, fragment in bad:
        r = client.post(URL, headers=h, json=new_service(support_hours=hours))
        error = assert_error(r, 422, fragment)
        assert all(d["field"].startswith("support_hours") for d in error["details"]), error
        r = client.patch(f"{URL}/checkout", headers=h, json={"support_hours": hours, "name": "X"})
        assert_error(r, 422, fragment)
    assert stored_service(runtime, "search") is None
    checkout = stored_service(runtime, "checkout")
    assert checkout is not None
    assert (checkout.name, checkout.support_hours) == ("Checkout", BERLIN_OFFICE)


def test_low_urgency_set_over_the_api_waits_for_support_hours(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    """What the API stores is what the escalation engine reads."""
    add_policy(client, tokens, "ops")
    new_york = {**BERLIN_OFFICE, "time_zone": "America/New_York"}
    patch = {"escalation_policy": "ops", "urgency": "low", "support_hours": new_york}
    assert client.patch(f"{URL}/checkout", headers=tokens.admin, json=patch).status_code == 200
    incident = trigger(runtime, org, "after-hours")  # Monday 09:00 UTC: 04:00 in New York
    timeline = walk(client, f"/api/v1/incidents/{incident.id}/timeline", tokens.observer)
    assert "waiting for support hours until Mon 5 Jan 2026 09:00 EST" in [
        e["message"] for e in timeline
    ]


def test_the_escalation_policy_must_exist(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    h = tokens.admin
    r = client.post(URL, headers=h, json=new_service(escalation_policy="ghost-policy"))
    error = assert_error(r, 404, "no escalation policy with slug 'ghost-policy'")
    assert error["code"] == "not_found"
    assert stored_service(runtime, "search") is None

    add_policy(client, tokens, "primary")
    r = client.patch(f"{URL}/checkout", headers=h, json={"escalation_policy": "primary"})
    assert r.status_code == 200, r.text
    assert r.json()["escalation_policy"] == "primary"
    # An unknown policy changes nothing, not even the other fields sent with it.
    patch = {"escalation_policy": "ghost-policy", "name": "Renamed", "support_hours": BERLIN_OFFICE}
    assert_error(client.patch(f"{URL}/checkout", headers=h, json=patch), 404, "ghost-policy")
    checkout = stored_service(runtime, "checkout")
    assert checkout is not None
    assert (checkout.escalation_policy, checkout.name, checkout.support_hours) == (
        "primary",
        "Checkout",
        None,
    )

    r = client.post(URL, headers=h, json=new_service(escalation_policy="primary"))
    assert r.status_code == 201, r.text
    assert r.json()["escalation_policy"] == "primary"
    r = client.patch(f"{URL}/checkout", headers=h, json={"escalation_policy": None})
    assert r.status_code == 200, r.text
    assert r.json()["escalation_policy"] is None
