"""GET /metrics: what an operator alerts on, in the Prometheus text format, behind a token."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Org
from tocsin.clock import FakeClock
from tocsin.engine.queue import enqueue
from tocsin.runtime import Runtime


def _samples(client: TestClient, headers: dict[str, str]) -> dict[str, float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}"] = sample.value
    return values


def test_metrics_need_a_token(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 401


def test_metrics_report_intake_backlog_and_jobs(
    client: TestClient,
    runtime: Runtime,
    org: Org,
    clock: FakeClock,
    admin_headers: dict[str, str],
) -> None:
    before = _samples(client, admin_headers)
    event = {
        "routing_key": org.pd_key,
        "event_action": "trigger",
        "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"},
    }
    assert client.post("/v2/enqueue", json=event).status_code == 202
    assert client.post("/v2/enqueue", json={**event, "routing_key": "x" * 32}).status_code == 400
    clock.advance(30)
    with runtime.factory() as s, s.begin():
        enqueue(s, kind="test.noop", due_at=clock.now() - timedelta(seconds=90), now=clock.now())

    after = _samples(client, admin_headers)

    def grew(prefix: str) -> float:
        keys = [k for k in after if k.startswith(prefix)]
        assert keys, f"no sample {prefix}"
        return sum(after[k] for k in keys) - sum(before.get(k, 0.0) for k in keys)

    assert grew("tocsin_events_accepted_total") == 1
    assert grew("tocsin_events_rejected_total") == 1
    assert grew("tocsin_ingest_latency_seconds_count") == 1
    assert after["tocsin_inbox_pending{}"] == 1
    assert after["tocsin_inbox_oldest_pending_seconds{}"] == 30
    assert after["tocsin_jobs_due{}"] >= 1
    assert after["tocsin_job_lag_seconds{}"] >= 90

    runtime.processor.drain()
    assert _samples(client, admin_headers)["tocsin_inbox_pending{}"] == 0
