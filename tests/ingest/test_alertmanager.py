"""Alertmanager's webhook (payload version 4): every alert of a notification is an event."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Org
from tests.ingest.conftest import alerts, set_options, stored
from tocsin.ingest.alertmanager import fingerprint_of
from tocsin.ingest.writer import AcceptedEvent
from tocsin.runtime import Runtime

EXTERNAL_URL = "http://alertmanager.example.com:9093"


def am_alert(n: int, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "HighLatency", "instance": f"web-{n}:9100", **labels},
        "annotations": {"summary": f"p99 latency above 1s on web-{n}"},
        "startsAt": "2026-01-05T08:59:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-01-05T09:10:00Z",
        "generatorURL": f"http://prometheus.example.com/graph?g0.expr=latency{n}",
        "fingerprint": f"{n:016x}",
    }


def notification(alerts_: list[dict[str, Any]], status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighLatency"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "tocsin",
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"alertname": "HighLatency"},
        "commonAnnotations": {},
        "externalURL": EXTERNAL_URL,
        "alerts": alerts_,
    }


def post(client: TestClient, key: str, body: Any, **kwargs: Any) -> Any:
    return client.post(f"/integrations/alertmanager/{key}", json=body, **kwargs)


def test_firing_alerts_become_alerts(client: TestClient, runtime: Runtime, org: Org) -> None:
    body = notification([am_alert(1, severity="warning"), am_alert(2, severity="page")])
    response = post(client, org.am_key, body)
    assert response.status_code == 200
    assert response.json() == {"status": "success", "message": "Events processed", "events": 2}
    runtime.processor.drain()
    first, second = alerts(runtime)
    assert first.dedup_key == "0000000000000001"
    assert first.summary == "p99 latency above 1s on web-1"
    assert (first.severity, second.severity) == ("warning", "critical")
    assert first.source == "web-1:9100"
    details = first.details["custom_details"]
    assert details == {
        "labels": {"alertname": "HighLatency", "instance": "web-1:9100", "severity": "warning"},
        "annotations": {"summary": "p99 latency above 1s on web-1"},
        "startsAt": "2026-01-05T08:59:00.123456+00:00",
        "endsAt": "",
        "generatorURL": "http://prometheus.example.com/graph?g0.expr=latency1",
        "groupKey": '{}:{alertname="HighLatency"}',
        "receiver": "tocsin",
        "externalURL": EXTERNAL_URL,
        "groupLabels": {"alertname": "HighLatency"},
    }
    assert first.details["client_url"] == EXTERNAL_URL


def test_repeat_then_resolved_notification(client: TestClient, runtime: Runtime, org: Org) -> None:
    post(client, org.am_key, notification([am_alert(1), am_alert(2)]))
    post(client, org.am_key, notification([am_alert(1), am_alert(2)]))  # group_interval repeat
    runtime.processor.drain()
    assert [a.event_count for a in alerts(runtime)] == [2, 2]
    resolved = notification([am_alert(1, "resolved"), am_alert(2, "firing")], status="firing")
    assert post(client, org.am_key, resolved).status_code == 200
    runtime.processor.drain()
    assert [a.status for a in alerts(runtime)] == ["resolved", "triggered"]
    assert post(client, org.am_key, notification([am_alert(2, "resolved")], "resolved")).is_success
    runtime.processor.drain()
    assert [a.status for a in alerts(runtime)] == ["resolved", "resolved"]


def test_alert_status_falls_back_to_the_group_status(
    client: TestClient, runtime: Runtime, org: Org
) -> None:
    alert = am_alert(1)
    del alert["status"]
    post(client, org.am_key, notification([alert], status="resolved"))
    assert [e.action for e in stored(runtime)] == ["resolve"]


def test_a_batch_of_256_and_more_goes_in_one_submit(
    client: TestClient, runtime: Runtime, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    submits: list[int] = []
    real_submit = runtime.writer.submit

    async def counting_submit(events: list[AcceptedEvent]) -> None:
        submits.append(len(events))
        await real_submit(events)

    monkeypatch.setattr(runtime.writer, "submit", counting_submit)
    assert post(client, org.am_key, notification([am_alert(n) for n in range(256)])).is_success
    response = post(client, org.am_key, notification([am_alert(n) for n in range(256, 556)]))
    assert response.json()["events"] == 300
    assert submits == [256, 300]
    keys = [e.dedup_key for e in stored(runtime)]
    assert keys == [f"{n:016x}" for n in range(556)]


def test_missing_fingerprint_is_a_stable_hash_of_the_labels(
    client: TestClient, runtime: Runtime, org: Org
) -> None:
    one = am_alert(1)
    del one["fingerprint"]
    reordered = dict(one, labels=dict(reversed(list(one["labels"].items()))))
    post(client, org.am_key, notification([one]))
    post(client, org.am_key, notification([reordered]))
    keys = [e.dedup_key for e in stored(runtime)]
    assert keys[0] == keys[1] == fingerprint_of(one["labels"])
    runtime.processor.drain()
    [alert] = alerts(runtime)
    assert alert.event_count == 2


def test_summary_severity_and_source_fallbacks(
    client: TestClient, runtime: Runtime, org: Org
) -> None:
    set_options(runtime, org.am_key, {"default_severity": "warning"})
    described = {"labels": {"alertname": "A", "job": "node"}, "annotations": {"description": "d"}}
    named = {"labels": {"alertname": "B", "severity": "mystery"}, "annotations": {}}
    long = {"labels": {"alertname": "C"}, "annotations": {"summary": "x" * 5000}}
    post(client, org.am_key, notification([described, named, long]))
    payloads = [e.payload for e in stored(runtime)]
    assert [p["summary"] for p in payloads] == ["d", "B", "x" * 1024]
    assert [p["severity"] for p in payloads] == ["warning", "warning", "warning"]
    assert [p["source"] for p in payloads] == ["node", EXTERNAL_URL, EXTERNAL_URL]


def test_unknown_severity_defaults_to_critical(
    client: TestClient, runtime: Runtime, org: Org
) -> None:
    post(client, org.am_key, notification([am_alert(1, severity="sev9")]))
    assert stored(runtime)[0].payload["severity"] == "critical"


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def test_bearer_auth(client: TestClient, runtime: Runtime, org: Org) -> None:
    set_options(runtime, org.am_key, {"auth": {"type": "bearer", "token_sha256": _sha("s3cret")}})
    body = notification([am_alert(1)])
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic czNjcmV0"}):
        response = post(client, org.am_key, body, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
        assert "s3cret" not in response.text
    assert stored(runtime) == []
    assert post(client, org.am_key, body, headers={"Authorization": "Bearer s3cret"}).is_success
    assert len(stored(runtime)) == 1


def test_basic_auth(client: TestClient, runtime: Runtime, org: Org) -> None:
    auth = {"type": "basic", "username": "am", "password_sha256": _sha("pa:ss")}
    set_options(runtime, org.am_key, {"auth": auth})
    body = notification([am_alert(1)])

    def basic(user: str, password: str) -> dict[str, str]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    for headers in (
        {},
        basic("am", "wrong"),
        basic("other", "pa:ss"),
        {"Authorization": "Basic !!notbase64"},
        {"Authorization": "Bearer pa:ss"},
    ):
        assert post(client, org.am_key, body, headers=headers).status_code == 401
    assert stored(runtime) == []
    assert post(client, org.am_key, body, headers=basic("am", "pa:ss")).is_success
    assert len(stored(runtime)) == 1


def test_unusable_auth_option_fails_closed(client: TestClient, runtime: Runtime, org: Org) -> None:
    set_options(runtime, org.am_key, {"auth": {"type": "hmac"}})
    assert post(client, org.am_key, notification([am_alert(1)])).status_code == 401
    assert stored(runtime) == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "JSON object"),
        ({"version": "4"}, "alerts must be an array"),
        (dict(notification([]), version="3"), "unsupported webhook payload version"),
        (notification([{"status": "pending", "labels": {}}], status="x"), "alerts[0].status"),
        (notification(["not an object"]), "alerts[0] must be an object"),
        (notification([am_alert(1), dict(am_alert(2), labels={"a": 1})]), "alerts[1].labels"),
        (notification([dict(am_alert(1), annotations=["x"])]), "alerts[0].annotations"),
        (notification([dict(am_alert(1), startsAt="yesterday")]), "alerts[0].startsAt"),
        (notification([dict(am_alert(1), fingerprint=12)]), "alerts[0].fingerprint"),
        (dict(notification([am_alert(1)]), groupLabels="x"), "groupLabels"),
        (dict(notification([am_alert(1)]), externalURL=5), "externalURL"),
    ],
)
def test_malformed_payloads_are_refused_whole(
    body: Any, fragment: str, client: TestClient, runtime: Runtime, org: Org
) -> None:
    response = post(client, org.am_key, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    assert fragment in error["message"], error
    assert stored(runtime) == []


def test_bad_requests_in_the_api_error_shape(
    client: TestClient, runtime: Runtime, org: Org
) -> None:
    url = f"/integrations/alertmanager/{org.am_key}"
    cases = [
        (client.post(url, content=b"{nope", headers={"content-type": "application/json"}), 400),
        (client.post(url, content=b"\xff\xfe", headers={"content-type": "application/json"}), 400),
        (client.post(url, content=b"x=1", headers={"content-type": "text/plain"}), 415),
        (client.post(url, content=b"[" * 40 + b"]" * 40), 400),
        (client.post(url, content=b"{}" + b" " * (512 * 1024)), 413),
        (post(client, "0" * 32, notification([am_alert(1)])), 404),
        (post(client, org.pd_key, notification([am_alert(1)])), 404),
        (post(client, org.webhook_key, notification([am_alert(1)])), 404),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert set(response.json()["error"]) == {"code", "message", "details"}
    assert stored(runtime) == []


def test_unknown_key_is_checked_before_the_body_is_read(client: TestClient, org: Org) -> None:
    response = client.post(
        "/integrations/alertmanager/" + "0" * 32,
        content=b"not json at all",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "unknown integration key"
