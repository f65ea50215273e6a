"""Incidents over the API: listing with filters and cursors, detail, actions and timelines."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from tests.api.conftest import Tokens, assert_error, trigger, walk
from tests.conftest import Org
from tocsin.clock import FakeClock
from tocsin.runtime import Runtime

URL = "/api/v1/incidents"


def test_list_is_newest_first_with_service_and_assignee(
    client: TestClient, runtime: Runtime, org: Org, tokens: Tokens, clock: FakeClock
) -> None:
    first = trigger(runtime, org, "db-1", summary="DB down")
    clock.advance(60)
    second = trigger(runtime, org, "web-1", summary="Web slow")
    r = client.get(URL, headers=tokens.observer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["id"] for i in body["items"]] == [second.id, first.id]
    assert body["next_cursor"] is None
    item = body["items"][1]
    assert item["service"] == "checkout"
    assert item["title"] == "DB down"
    assert item["status"] == "triggered"
    assert item["assignee"] is None


def test_filters(
    client: TestClient, runtime: Runtime, org: Org, tokens: Tokens, clock: FakeClock
) -> None:
    early = trigger(runtime, org, "a")
    clock.advance(3600)
    middle = trigger(runtime, org, "b")
    clock.advance(3600)
    late = trigger(runtime, org, "c")
    h = tokens.responder
    assert client.post(f"{URL}/{middle.id}/acknowledge", headers=h).status_code == 200
    assert client.post(f"{URL}/{late.id}/resolve", headers=h).status_code == 200
    assert client.post(f"{URL}/{early.id}/reassign", headers=h, json={"user": "adam"}).is_success

    def ids(**params: object) -> list[int]:
        r = client.get(URL, headers=h, params=params)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert ids(status="acknowledged") == [middle.id]
    assert ids(status=["triggered", "resolved"]) == [late.id, early.id]
    assert ids(service="checkout") == [late.id, middle.id, early.id]
    assert ids(urgency="low") == []
    assert ids(urgency="high") == [late.id, middle.id, early.id]
    assert ids(assignee="adam") == [early.id]
    since = middle.created_at.isoformat()
    assert ids(since=since) == [late.id, middle.id]
    assert ids(until=since) == [early.id]
    # A time without an offset is UTC.
    assert ids(since=middle.created_at.replace(tzinfo=None).isoformat()) == [late.id, middle.id]
    assert_error(client.get(URL, headers=h, params={"service": "nope"}), 404, "nope")
    assert_error(client.get(URL, headers=h, params={"assignee": "nobody"}), 404, "nobody")
    assert_error(client.get(URL, headers=h, params={"status": "sleeping"}), 422, "status")
    assert_error(client.get(URL, headers=h, params={"since": "yesterday"}), 422, "since")
    assert_error(
        client.get(URL, headers=h, params={"since": late.created_at.isoformat(), "until": since}),
        422,
        "since must be earlier",
    )


def test_cursor_walks_every_page_without_duplicates(
    client: TestClient, runtime: Runtime, org: Org, tokens: Tokens, clock: FakeClock
) -> None:
    made = []
    for n in range(23):
        made.append(trigger(runtime, org, f"k{n}").id)
        if n % 4 == 0:  # several incidents share a creation instant: the id breaks the tie
            clock.advance(1)
    r = client.get(URL, headers=tokens.observer, params={"limit": 5})
    assert len(r.json()["items"]) == 5 and r.json()["next_cursor"]
    seen = walk(client, URL, tokens.observer, limit=5)
    assert [i["id"] for i in seen] == sorted(made, reverse=True)
    # Filters apply on every page.
    client.post(f"{URL}/{made[3]}/resolve", headers=tokens.responder)
    open_ids = [i["id"] for i in walk(client, URL, tokens.observer, limit=4, status="triggered")]
    assert open_ids == sorted(set(made) - {made[3]}, reverse=True)


def test_limit_and_cursor_are_checked(client: TestClient, org: Org, tokens: Tokens) -> None:
    h = tokens.observer
    assert_error(client.get(URL, headers=h, params={"limit": 501}), 422, "limit")
    assert_error(client.get(URL, headers=h, params={"limit": 0}), 422, "limit")
    assert client.get(URL, headers=h, params={"limit": 500}).status_code == 200
    for bad in ["garbage", "eyJ2IjoxfQ", "W10", "eyJ2IjoxLCJrIjpbIngiLCJ5Il19"]:
        assert_error(client.get(URL, headers=h, params={"cursor": bad}), 400, "cursor")


def test_detail_has_alerts_summary(
    client: TestClient, runtime: Runtime, org: Org, tokens: Tokens
) -> None:
    incident = trigger(runtime, org, "db-1", summary="DB down", severity="error")
    r = client.get(f"{URL}/{incident.id}", headers=tokens.observer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["title"] == "DB down"
    assert body["alerts"]["total"] == 1
    assert body["alerts"]["by_status"] == {"triggered": 1, "acknowledged": 0, "resolved": 0}
    [alert] = body["alerts"]["recent"]
    assert (alert["dedup_key"], alert["severity"]) == ("db-1", "error")
    assert_error(client.get(f"{URL}/999999", headers=tokens.observer), 404, "999999")


def test_acknowledge_then_again_is_409(
    client: TestClient, runtime: Runtime, org: Org, tokens: Tokens, clock: FakeClock
) -> None:
    incident = trigger(runtime, org, "db-1")
    clock.advance(30)
    r = client.post(f"{URL}/{incident.id}/acknowledge", headers=tokens.responder)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledged_by"] == "user:alice"
    assert body["acknowledged_at"] == clock.now().isoformat().replace("+00:00", "Z")
    again = client.post(f"{URL}/{incident.id}/acknowledge", headers=tokens.admin)
    assert_error(again, 409, "already acknowledged by user:alice")
    client.post(f"{URL}/{incident.id}/resolve", headers=tokens.responder)
    assert_error(
        client.post(f"{URL}/{incident.id}/acknowledge", headers=tokens.responder), 409, "resolved"
    )
    assert_error(client.post(f"{URL}/424242/acknowledge", headers=tokens.responder), 404)


def test_resolve_with_and_without_reason(
    client: TestClient, runtime: Runtime, org: Org, tokens: Tokens
) -> None:
    a = trigger(runtime, org, "a")
    b = trigger(runtime, org, "b")
    r = client.post(f"{URL}/{a.id}/resolve", headers=tokens.responder, json={"reason": "fixed"})
    assert r.status_code == 200 and r.json()["status"] == "resolved", r.text
    assert r.json()["resolved_by"] == "user:alice"
    assert client.post(f"{URL}/{b.id}/resolve", headers=tokens.responder).status_code == 200
    assert_error(client.post(f"{URL}/{a.id}/resolve", headers=tokens.responder), 409, "already")
    timeline = walk(client, f"{URL}/{a.id}/timeline", tokens.observer)
    assert timeline[-1]["message"] == "Resolved by user:alice: fixed"
    alert = client.get(f"{URL}/{a.id}", headers=tokens.observer).json()["alerts"]["recent"][0]
    assert alert["status"] == "resolved"
    long_reason = {"reason": "x" * 1001}
    c = trigger(runtime, org, "c")
    assert_error(
        client.post(f"{URL}/{c.id}/resolve", headers=tokens.responder, json=long_reason), 422
    )
    assert client.get(f"{URL}/{c.id}", headers=tokens.observer).json()["status"] == "triggered"


def test_reassign(client: TestClient, runtime: Runtime, org: Org, tokens: Tokens) -> None:
    incident = trigger(runtime, org, "db-1")
    client.post(f"{URL}/{incident.id}/acknowledge", headers=tokens.responder)
    r = client.post(
        f"{URL}/{incident.id}/reassign", headers=tokens.responder, json={"user": "olga"}
    )
    assert r.status_code == 200, r.text
    # The new owner must acknowledge again.
    assert (r.json()["assignee"], r.json()["status"]) == ("olga", "triggered")
    nobody = client.post(
        f"{URL}/{incident.id}/reassign", headers=tokens.responder, json={"user": "zed"}
    )
    assert_error(nobody, 404, "zed")
    client.post(f"{URL}/{incident.id}/resolve", headers=tokens.responder)
    resolved = client.post(
        f"{URL}/{incident.id}/reassign", headers=tokens.responder, json={"user": "alice"}
    )
    assert_error(resolved, 409, "resolved")
    assert client.get(f"{URL}/{incident.id}", headers=tokens.observer).json()["assignee"] == "olga"


def test_notes_and_timeline_record_the_actor(
    client: TestClient, runtime: Runtime, org: Org, tokens: Tokens, admin_headers: dict[str, str]
) -> None:
    incident = trigger(runtime, org, "db-1")
    url = f"{URL}/{incident.id}"
    r = client.post(f"{url}/notes", headers=tokens.responder, json={"text": "looking into it"})
    assert r.status_code == 201, r.text
    assert (r.json()["kind"], r.json()["actor"]) == ("note", "user:alice")
    client.post(f"{url}/acknowledge", headers=tokens.admin)
    client.post(f"{url}/reassign", headers=tokens.responder, json={"user": "alice"})
    client.post(f"{url}/resolve", headers=admin_headers, json={"reason": "disk cleaned"})
    # Notes stay possible after resolution (for the write-up).
    client.post(f"{url}/notes", headers=tokens.responder, json={"text": "post-mortem on Monday"})
    entries = walk(client, f"{url}/timeline", tokens.observer, limit=2)
    assert [(e["kind"], e["actor"]) for e in entries] == [
        ("incident.triggered", "integration:checkout/events"),
        ("alert.triggered", "integration:checkout/events"),
        ("note", "user:alice"),
        ("incident.acknowledged", "user:adam"),
        ("incident.reassigned", "user:alice"),
        ("incident.resolved", "token:bootstrap"),
        ("note", "user:alice"),
    ]
    assert entries[2]["message"] == "looking into it"
    assert len({e["id"] for e in entries}) == len(entries)
    assert_error(client.get(f"{URL}/777/timeline", headers=tokens.observer), 404)


def test_note_text_is_checked(
    client: TestClient, runtime: Runtime, org: Org, tokens: Tokens
) -> None:
    incident = trigger(runtime, org, "db-1")
    url = f"{URL}/{incident.id}/notes"
    h = tokens.responder
    assert client.post(url, headers=h, json={"text": "x" * 10_000}).status_code == 201
    assert_error(client.post(url, headers=h, json={"text": "x" * 10_001}), 422, "text")
    assert_error(client.post(url, headers=h, json={"text": ""}), 422, "text")
    assert_error(client.post(url, headers=h, json={"text": "   "}), 422, "text")
    assert_error(client.post(url, headers=h, json={"text": 5}), 422, "text")
    assert_error(client.post(url, headers=h, json={"text": "a\x00b"}), 422, "NUL")
    assert_error(client.post(url, headers=h, json={}), 422, "text")
    assert_error(client.post(url, headers=h, json={"text": "hi", "extra": 1}), 422, "extra")
    assert_error(client.post(url, headers=h, content=b"{not json"), 422)
    notes = [e for e in walk(client, f"{URL}/{incident.id}/timeline", h) if e["kind"] == "note"]
    assert len(notes) == 1


def test_concurrent_acknowledgements_succeed_once(
    client: TestClient, runtime: Runtime, org: Org, tokens: Tokens
) -> None:
    incident = trigger(runtime, org, "db-1")
    url = f"{URL}/{incident.id}/acknowledge"
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(
            pool.map(lambda _: client.post(url, headers=tokens.responder).status_code, range(6))
        )
    assert sorted(statuses) == [200, 409, 409, 409, 409, 409]
    kinds = [e["kind"] for e in walk(client, f"{URL}/{incident.id}/timeline", tokens.observer)]
    assert kinds.count("incident.acknowledged") == 1
