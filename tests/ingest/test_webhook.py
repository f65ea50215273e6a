"""Generic JSON webhooks mapped by the integration's options."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Org
from tests.ingest.conftest import alerts, set_options, stored
from tocsin.runtime import Runtime

GRAFANA_LIKE_MAPPING = {
    "summary": "alerts.0.title",
    "severity": "alerts.0.labels.priority",
    "dedup_key": "alerts.0.id",
    "action": "state",
    "source": "origin.host",
    "severity_map": {"P1": "critical", "P3": "warning"},
    "action_map": {"alerting": "trigger", "ok": "resolve", "paused": "acknowledge"},
    "default_severity": "error",
}


def body(state: str = "alerting", priority: str = "P1", **extra: Any) -> dict[str, Any]:
    return {
        "state": state,
        "origin": {"host": "grafana-1"},
        "alerts": [{"id": "disk-7", "title": "Disk 91% full", "labels": {"priority": priority}}],
        **extra,
    }


def post(client: TestClient, key: str, payload: Any) -> Any:
    return client.post(f"/integrations/webhook/{key}", json=payload)


@pytest.fixture
def mapped(runtime: Runtime, org: Org) -> str:
    set_options(runtime, org.webhook_key, {"mapping": GRAFANA_LIKE_MAPPING})
    return org.webhook_key


def test_mapped_trigger_acknowledge_resolve(
    client: TestClient, runtime: Runtime, mapped: str
) -> None:
    response = post(client, mapped, body())
    assert response.status_code == 200
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "disk-7",
        "event_action": "trigger",
    }
    [event] = stored(runtime)
    assert event.payload == {
        "summary": "Disk 91% full",
        "severity": "critical",
        "source": "grafana-1",
        "custom_details": body(),
    }
    runtime.processor.drain()
    assert post(client, mapped, body(state="paused")).json()["event_action"] == "acknowledge"
    runtime.processor.drain()
    assert alerts(runtime)[0].status == "acknowledged"
    assert post(client, mapped, body(state="OK")).json()["event_action"] == "resolve"
    runtime.processor.drain()
    assert alerts(runtime)[0].status == "resolved"


def test_severity_mapping_and_defaults(client: TestClient, runtime: Runtime, mapped: str) -> None:
    post(client, mapped, body(priority="P3"))  # mapped
    post(client, mapped, body(priority="info"))  # already a severity
    post(client, mapped, body(priority="P9"))  # unknown: default_severity
    missing = body()
    del missing["alerts"][0]["labels"]
    post(client, mapped, missing)  # absent: default_severity
    assert [e.payload["severity"] for e in stored(runtime)] == ["warning", "info", "error", "error"]


def test_default_mapping_reads_fields_by_their_own_names(
    client: TestClient, runtime: Runtime, org: Org
) -> None:
    response = post(client, org.webhook_key, {"summary": "Backup failed", "severity": "warning"})
    assert response.status_code == 200
    generated = response.json()["dedup_key"]
    assert len(generated) == 32
    [event] = stored(runtime)
    assert (event.action, event.dedup_key) == ("trigger", generated)
    assert event.payload["source"] == "webhook"
    assert event.payload["severity"] == "warning"
    post(client, org.webhook_key, {"summary": "Backup ok", "action": "resolved", "dedup_key": 42})
    assert (stored(runtime)[1].action, stored(runtime)[1].dedup_key) == ("resolve", "42")


def test_list_root_and_negative_index(client: TestClient, runtime: Runtime, org: Org) -> None:
    set_options(runtime, org.webhook_key, {"mapping": {"summary": "-1.msg"}})
    assert post(client, org.webhook_key, [{"msg": "old"}, {"msg": "newest"}]).status_code == 200
    assert stored(runtime)[0].payload["summary"] == "newest"


@pytest.mark.parametrize(
    ("options", "payload", "fragment"),
    [
        ({"mapping": GRAFANA_LIKE_MAPPING}, {"state": "alerting"}, "'alerts.0.title'"),
        ({"mapping": GRAFANA_LIKE_MAPPING}, body(alerts=[]), "'alerts.0.title'"),
        ({"mapping": GRAFANA_LIKE_MAPPING}, body(state="exploded"), "'exploded' at path 'state'"),
        (
            {"mapping": {"summary": "s", "action": "a"}},
            {"s": "x", "a": "resolve"},
            "no dedup key found at path 'dedup_key'",
        ),
        ({}, {"summary": {"nested": "object"}}, "path 'summary'"),
        ({}, {"summary": "x" * 1025}, "longer than 1024"),
        ({}, {"summary": "x", "dedup_key": "k" * 256}, "longer than 255"),
        ({}, "just a string", "JSON object or array"),
        ({"mapping": {"summary": 5}}, {"summary": "x"}, "mapping.summary"),
        ({"mapping": {"default_action": "page"}}, {"summary": "x"}, "default_action"),
        ({"mapping": ["summary"]}, {"summary": "x"}, "options.mapping"),
    ],
)
def test_bad_bodies_and_mappings_are_refused(
    options: dict[str, Any],
    payload: Any,
    fragment: str,
    client: TestClient,
    runtime: Runtime,
    org: Org,
) -> None:
    set_options(runtime, org.webhook_key, options)
    response = post(client, org.webhook_key, payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    assert fragment in error["message"], error["message"]
    assert stored(runtime) == []


def test_webhook_auth_and_keys(client: TestClient, runtime: Runtime, org: Org) -> None:
    digest = hashlib.sha256(b"hook-token").hexdigest()
    set_options(runtime, org.webhook_key, {"auth": {"type": "bearer", "token_sha256": digest}})
    assert post(client, org.webhook_key, {"summary": "x"}).status_code == 401
    assert post(client, org.am_key, {"summary": "x"}).status_code == 404
    response = client.post(
        f"/integrations/webhook/{org.webhook_key}",
        json={"summary": "x"},
        headers={"Authorization": "Bearer hook-token"},
    )
    assert response.status_code == 200
    assert len(stored(runtime)) == 1
