"""PagerDuty Events API v2: the official client works unchanged; bad input is refused whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pagerduty
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import Org
from tests.ingest.conftest import LiveServer, alerts, stored
from tocsin.alerts.models import ChangeEvent
from tocsin.incidents.models import Incident
from tocsin.runtime import Runtime


def trigger(key: str, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": key,
        "event_action": "trigger",
        "payload": {"summary": "Disk full on db-1", "source": "db-1", "severity": "error"},
    }
    event.update(overrides)
    return event


# --- the official client against a real server ----------------------------------------------


@pytest.fixture
def pd(live_server: LiveServer, org: Org) -> Iterator[pagerduty.EventsApiV2Client]:
    client = pagerduty.EventsApiV2Client(
        org.pd_key, base_url=live_server.url, verify=live_server.ssl
    )
    yield client
    client.close()


def test_official_client_trigger_acknowledge_resolve(
    pd: pagerduty.EventsApiV2Client, runtime: Runtime
) -> None:
    key = pd.trigger(
        "CPU at 99% on web-1",
        "web-1",
        dedup_key="web-1/cpu",
        severity="warning",
        custom_details={"load": 12.5},
        links=[{"href": "https://grafana.example.com/d/1", "text": "Dashboard"}],
    )
    assert key == "web-1/cpu"
    runtime.processor.drain()
    [alert] = alerts(runtime)
    assert (alert.summary, alert.source, alert.severity) == (
        "CPU at 99% on web-1",
        "web-1",
        "warning",
    )
    assert alert.details["custom_details"] == {"load": 12.5}
    assert alert.details["links"] == [
        {"href": "https://grafana.example.com/d/1", "text": "Dashboard"}
    ]

    assert pd.acknowledge("web-1/cpu") == "web-1/cpu"
    runtime.processor.drain()
    assert alerts(runtime)[0].status == "acknowledged"

    assert pd.resolve("web-1/cpu") == "web-1/cpu"
    runtime.processor.drain()
    assert alerts(runtime)[0].status == "resolved"
    with runtime.factory() as s:
        assert s.scalars(sa.select(Incident.status)).one() == "resolved"


def test_official_client_trigger_without_dedup_key_gets_a_generated_one(
    pd: pagerduty.EventsApiV2Client, runtime: Runtime
) -> None:
    first = pd.trigger("Queue backlog", "worker-3")
    second = pd.trigger("Queue backlog", "worker-3")
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second
    assert [e.dedup_key for e in stored(runtime)] == [first, second]
    runtime.processor.drain()
    assert sorted(a.dedup_key for a in alerts(runtime)) == sorted([first, second])


def test_official_client_change_event(pd: pagerduty.EventsApiV2Client, runtime: Runtime) -> None:
    pd.send_change_event(
        payload={
            "summary": "Deployed checkout v42",
            "source": "ci",
            "timestamp": "2026-01-05T08:55:00.000+0000",
            "custom_details": {"build": 42},
        },
        links=[{"href": "https://ci.example.com/42", "text": "Build 42"}],
    )
    [event] = stored(runtime)
    assert event.action == "change"
    assert event.payload["timestamp"] == "2026-01-05T08:55:00+00:00"
    runtime.processor.drain()
    with runtime.factory() as s:
        change = s.scalars(sa.select(ChangeEvent)).one()
    assert (change.summary, change.source) == ("Deployed checkout v42", "ci")
    assert change.occurred_at.isoformat() == "2026-01-05T08:55:00+00:00"
    assert change.details["links"] == [{"href": "https://ci.example.com/42", "text": "Build 42"}]


def test_official_client_sees_an_invalid_routing_key_as_a_client_error(
    live_server: LiveServer, runtime: Runtime, org: Org
) -> None:
    with (
        pagerduty.EventsApiV2Client(
            "z" * 32, base_url=live_server.url, verify=live_server.ssl
        ) as client,
        pytest.raises(pagerduty.HttpError) as failure,
    ):
        client.trigger("x", "y")
    assert failure.value.response.status_code == 400
    assert failure.value.response.json()["errors"] == ["Invalid routing key"]
    assert stored(runtime) == []


# --- what is stored ----------------------------------------------------------------------


def test_response_and_stored_payload_are_normalised(
    client: TestClient, runtime: Runtime, org: Org
) -> None:
    event = trigger(
        org.pd_key,
        dedup_key="k" * 255,
        client="Sample Monitoring Service",
        client_url="https://monitoring.example.com",
        images=[{"src": "https://example.com/i.png", "alt": "graph"}],
        links=[{"href": "https://example.com/"}],
        unknown_field="ignored",
    )
    event["payload"].update(
        summary="s" * 1024,
        severity="Critical",
        timestamp="2015-07-17T08:42:58.315+0000",
        component="postgres",
        group="prod-datapipe",
        **{"class": "disk"},
        custom_details={"free space": "1%"},
    )
    response = client.post("/v2/enqueue", json=event)
    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "k" * 255,
    }
    [row] = stored(runtime)
    assert (row.action, row.dedup_key, row.status) == ("trigger", "k" * 255, "pending")
    assert row.payload == {
        "summary": "s" * 1024,
        "severity": "critical",
        "source": "db-1",
        "timestamp": "2015-07-17T08:42:58.315000+00:00",
        "component": "postgres",
        "group": "prod-datapipe",
        "class": "disk",
        "custom_details": {"free space": "1%"},
        "images": [{"src": "https://example.com/i.png", "alt": "graph"}],
        "links": [{"href": "https://example.com/"}],
        "client": "Sample Monitoring Service",
        "client_url": "https://monitoring.example.com",
    }


def test_timestamp_without_offset_is_taken_as_utc(
    client: TestClient, runtime: Runtime, org: Org
) -> None:
    event = trigger(org.pd_key)
    event["payload"]["timestamp"] = "2026-01-05T08:00:00"
    assert client.post("/v2/enqueue", json=event).status_code == 202
    assert stored(runtime)[0].payload["timestamp"] == "2026-01-05T08:00:00+00:00"


def test_follow_up_events_ignore_their_payload(
    client: TestClient, runtime: Runtime, org: Org
) -> None:
    # Alertmanager's pagerduty_configs sends the full payload with resolve events too.
    body = trigger(org.pd_key, event_action="resolve", dedup_key="abc")
    body["payload"]["severity"] = "whatever"
    response = client.post("/v2/enqueue", json=body)
    assert response.status_code == 202
    assert response.json()["dedup_key"] == "abc"
    [row] = stored(runtime)
    assert (row.action, row.payload) == ("resolve", {})


def test_nesting_up_to_the_limit_is_accepted(
    client: TestClient, runtime: Runtime, org: Org
) -> None:
    nested: Any = "leaf"
    for _ in range(29):  # event, payload, custom_details + 29 = 32 levels
        nested = {"n": nested}
    event = trigger(org.pd_key)
    event["payload"]["custom_details"] = nested
    assert client.post("/v2/enqueue", json=event).status_code == 202


# --- bad input: a 4xx in PagerDuty's shape, and nothing stored ------------------------------


def _deep(levels: int) -> Any:
    node: Any = 1
    for _ in range(levels):
        node = [node]
    return node


def _bad_cases(key: str, am_key: str) -> list[tuple[str, Any, int, str]]:
    """(name, body as dict or raw bytes, expected status, a fragment of the errors)."""
    long_summary = trigger(key)
    long_summary["payload"]["summary"] = "x" * 1025
    no_payload_fields = trigger(key, payload={})
    bad_severity = trigger(key)
    bad_severity["payload"]["severity"] = "fatal"
    bad_ts = trigger(key)
    bad_ts["payload"]["timestamp"] = "yesterday at noon"
    date_only = trigger(key)
    date_only["payload"]["timestamp"] = "2026-01-05"
    bad_details = trigger(key)
    bad_details["payload"]["custom_details"] = [1, 2]
    deep = trigger(key)
    deep["payload"]["custom_details"] = _deep(40)
    nul = trigger(key)
    nul["payload"]["summary"] = "bad \u0000 byte"
    return [
        ("malformed json", b'{"routing_key": ', 400, "JSON parse error"),
        ("invalid utf-8", b'{"routing_key": "\xff\xfe"}', 400, "UTF-8"),
        ("empty body", b"", 400, "empty"),
        ("not an object", [trigger(key)], 400, "JSON object"),
        ("no routing key", {"event_action": "trigger"}, 400, "routing_key"),
        ("routing key not a string", trigger(12345), 400, "routing_key"),
        ("unknown routing key", trigger("f" * 32), 400, "Invalid routing key"),
        ("key of another integration type", trigger(am_key), 400, "alertmanager integration"),
        ("bad event_action", trigger(key, event_action="page"), 400, "event_action"),
        ("no payload", trigger(key, payload=None), 400, "payload is required"),
        ("payload fields missing", no_payload_fields, 400, "payload.source is required"),
        ("bad severity", bad_severity, 400, "payload.severity"),
        ("summary too long", long_summary, 400, "at most 1024"),
        ("dedup key too long", trigger(key, dedup_key="k" * 256), 400, "at most 255"),
        ("dedup key not a string", trigger(key, dedup_key=7), 400, "dedup_key must be a string"),
        ("ack without dedup key", trigger(key, event_action="acknowledge"), 400, "required"),
        ("resolve without dedup key", trigger(key, event_action="resolve"), 400, "required"),
        ("bad timestamp", bad_ts, 400, "ISO 8601"),
        ("date-only timestamp", date_only, 400, "time of day"),
        ("custom_details a list", bad_details, 400, "custom_details"),
        ("links not a list", trigger(key, links={"href": "x"}), 400, "links must be"),
        ("link without href", trigger(key, links=[{"text": "x"}]), 400, "links[0].href"),
        ("image src not a string", trigger(key, images=[{"src": 5}]), 400, "images[0].src"),
        ("client not a string", trigger(key, client=["x"]), 400, "client must be"),
        ("too deeply nested", deep, 400, "nested deeper than 32"),
        ("NUL character", nul, 400, "NUL"),
    ]


BAD_CASE_NAMES = [c[0] for c in _bad_cases("k", "a")]


@pytest.mark.parametrize("name", BAD_CASE_NAMES)
def test_bad_input_is_refused_with_pagerduty_errors(
    name: str, client: TestClient, runtime: Runtime, org: Org
) -> None:
    [(_, body, status, fragment)] = [c for c in _bad_cases(org.pd_key, org.am_key) if c[0] == name]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/v2/enqueue", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == status
    answer = response.json()
    assert set(answer) == {"status", "message", "errors"}
    if name in ("malformed json", "invalid utf-8", "empty body"):
        assert answer["status"] == "Unrecognized object"
        assert answer["message"] == "Event object format is unrecognized"
    else:
        assert answer["status"] == "invalid event"
        assert answer["message"] == "Event object is invalid"
    assert any(fragment in e for e in answer["errors"]), answer["errors"]
    assert stored(runtime) == []


def test_all_problems_are_reported_at_once(client: TestClient, runtime: Runtime, org: Org) -> None:
    response = client.post("/v2/enqueue", json=trigger(org.pd_key, payload={"severity": "x"}))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert len(errors) == 3
    assert {e.split(" ")[0] for e in errors} == {
        "payload.summary",
        "payload.source",
        "payload.severity",
    }


def test_non_json_content_type_is_refused(client: TestClient, runtime: Runtime, org: Org) -> None:
    response = client.post("/v2/enqueue", data={"routing_key": org.pd_key})
    assert response.status_code == 400
    assert response.json()["status"] == "invalid event"
    assert "application/json" in response.json()["errors"][0]
    assert stored(runtime) == []


def test_body_over_512_kb_is_refused_with_413(
    client: TestClient, runtime: Runtime, org: Org
) -> None:
    event = trigger(org.pd_key)
    event["payload"]["custom_details"] = {"blob": "x" * (512 * 1024)}
    response = client.post("/v2/enqueue", json=event)
    assert response.status_code == 413
    assert response.json()["status"] == "invalid event"
    assert stored(runtime) == []


def test_chunked_body_over_the_limit_is_refused(
    live_server: LiveServer, runtime: Runtime, org: Org
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"routing_key": "' + org.pd_key.encode() + b'", "payload": {"x": "'
        for _ in range(1024):
            yield b"y" * 1024
        yield b'"}}'

    with httpx.Client(verify=live_server.ssl) as http:
        response = http.post(
            f"{live_server.url}/v2/enqueue",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["status"] == "invalid event"
    assert stored(runtime) == []


def test_change_event_bad_input(client: TestClient, runtime: Runtime, org: Org) -> None:
    cases = [
        ({"routing_key": org.pd_key}, "payload is required"),
        ({"routing_key": org.pd_key, "payload": {"source": "ci"}}, "payload.summary"),
        (
            {"routing_key": org.pd_key, "payload": {"summary": "x", "timestamp": "soon"}},
            "ISO 8601",
        ),
        ({"routing_key": "0" * 32, "payload": {"summary": "x"}}, "Invalid routing key"),
    ]
    for body, fragment in cases:
        response = client.post("/v2/change/enqueue", json=body)
        assert response.status_code == 400, body
        assert response.json()["status"] == "invalid event"
        assert any(fragment in e for e in response.json()["errors"]), response.json()
    assert stored(runtime) == []


def test_wrong_method_is_a_client_error(client: TestClient, org: Org) -> None:
    assert client.get("/v2/enqueue").status_code == 405
