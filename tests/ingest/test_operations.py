"""Ingestion under real conditions: concurrency, rate limits, the key cache, a store that
cannot take events, and what the logs and metrics show."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import Org
from tests.ingest.conftest import LiveServer, alerts, stored
from tocsin.api.app import create_app
from tocsin.clock import FakeClock
from tocsin.ingest.integrations import IntegrationCache
from tocsin.ingest.routes import ingest_state, invalidate_integration
from tocsin.ingest.writer import AcceptedEvent, GroupCommitWriter, WriterStopped, _Batch
from tocsin.observability.metrics import REGISTRY
from tocsin.orgs.models import Integration
from tocsin.runtime import Runtime


def trigger(key: str, dedup_key: str | None = "db-1") -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": key,
        "event_action": "trigger",
        "payload": {"summary": "DB down", "source": "db-1", "severity": "critical"},
    }
    if dedup_key is not None:
        event["dedup_key"] = dedup_key
    return event


def test_concurrent_triggers_on_one_key_make_one_alert(
    live_server: LiveServer, runtime: Runtime, org: Org
) -> None:
    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(verify=live_server.ssl, timeout=30) as http:
            return await asyncio.gather(
                *(
                    http.post(f"{live_server.url}/v2/enqueue", json=trigger(org.pd_key))
                    for _ in range(50)
                )
            )

    responses = asyncio.run(fire())
    assert [r.status_code for r in responses] == [202] * 50
    assert {r.json()["dedup_key"] for r in responses} == {"db-1"}
    assert len(stored(runtime)) == 50
    runtime.processor.drain()
    [alert] = alerts(runtime)
    assert alert.event_count == 50


# --- rate limiting ------------------------------------------------------------------------


@pytest.fixture
def limited(runtime: Runtime) -> Runtime:
    runtime.settings = replace(runtime.settings, ingest_rate_per_second=2, ingest_burst=3)
    return runtime


def test_rate_limit_answers_429_with_retry_after(
    limited: Runtime, client: TestClient, org: Org, clock: FakeClock
) -> None:
    for _ in range(3):
        assert client.post("/v2/enqueue", json=trigger(org.pd_key)).status_code == 202
    refused = client.post("/v2/enqueue", json=trigger(org.pd_key))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["status"] == "throttle event"
    assert set(refused.json()) == {"status", "message", "errors"}
    assert len(stored(limited)) == 3

    clock.advance(0.5)  # one token back at 2/s
    assert client.post("/v2/enqueue", json=trigger(org.pd_key)).status_code == 202
    assert client.post("/v2/enqueue", json=trigger(org.pd_key)).status_code == 429
    assert len(stored(limited)) == 4


def test_rate_limit_is_per_key_and_counts_alerts(
    limited: Runtime, client: TestClient, org: Org, clock: FakeClock
) -> None:
    def am(n: int) -> Any:
        alerts_ = [{"labels": {"alertname": f"a{i}"}, "status": "firing"} for i in range(n)]
        return client.post(
            f"/integrations/alertmanager/{org.am_key}", json={"version": "4", "alerts": alerts_}
        )

    assert am(2).status_code == 200
    refused = am(2)  # one token left, two alerts
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["retry-after"] == "1"
    # The PagerDuty key has its own bucket.
    assert client.post("/v2/enqueue", json=trigger(org.pd_key)).status_code == 202
    # A batch bigger than the burst passes once the bucket is full again.
    clock.advance(10)
    assert am(10).status_code == 200
    assert len(stored(limited)) == 13


def test_rate_limit_disabled_with_zero(client: TestClient, runtime: Runtime, org: Org) -> None:
    assert runtime.settings.ingest_rate_per_second == 0
    for _ in range(20):
        assert client.post("/v2/enqueue", json=trigger(org.pd_key)).status_code == 202


# --- the integration key cache ------------------------------------------------------------


def _set_type(runtime: Runtime, key: str, kind: str) -> None:
    with runtime.factory() as s, s.begin():
        s.scalars(sa.select(Integration).where(Integration.key == key)).one().type = kind


def test_integration_changes_apply_after_the_ttl_or_an_invalidation(
    runtime: Runtime, org: Org, clock: FakeClock
) -> None:
    app = create_app(runtime, manage_runtime=False)
    with TestClient(app) as client:
        assert client.post("/v2/enqueue", json=trigger(org.pd_key)).status_code == 202
        _set_type(runtime, org.pd_key, "webhook")
        # Still cached: the hot path did not go back to the database.
        assert client.post("/v2/enqueue", json=trigger(org.pd_key)).status_code == 202
        clock.advance(10)
        assert client.post("/v2/enqueue", json=trigger(org.pd_key)).status_code == 400
        _set_type(runtime, org.pd_key, "pagerduty")
        invalidate_integration(app, org.pd_key)
        assert client.post("/v2/enqueue", json=trigger(org.pd_key)).status_code == 202


def test_concurrent_misses_share_one_query(runtime: Runtime, org: Org) -> None:
    queries: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM integrations" in statement:
            queries.append(statement)

    sa.event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        cache = IntegrationCache(runtime.factory, runtime.clock)

        async def many() -> list[Any]:
            return await asyncio.gather(*(cache.get(org.pd_key) for _ in range(20)))

        infos = asyncio.run(many())
        assert len({info.id for info in infos}) == 1
        assert len(queries) == 1
        asyncio.run(many())  # served from memory now
        assert len(queries) == 1
        assert asyncio.run(cache.get("nope")) is None
        assert asyncio.run(cache.get("nope")) is None  # unknown keys are remembered too
        assert len(queries) == 2
    finally:
        sa.event.remove(runtime.engine, "before_cursor_execute", count)


# --- when events cannot be stored: 503, the only 5xx --------------------------------------


def test_stopped_writer_answers_503(client: TestClient, runtime: Runtime, org: Org) -> None:
    runtime.writer.stop()
    response = client.post("/v2/enqueue", json=trigger(org.pd_key))
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    am = client.post(
        f"/integrations/alertmanager/{org.am_key}",
        json={"version": "4", "alerts": [{"labels": {"alertname": "x"}, "status": "firing"}]},
    )
    assert am.status_code == 503
    assert am.json()["error"]["code"] == "unavailable"
    assert stored(runtime) == []


@pytest.fixture
def refuse_inserts(runtime: Runtime) -> Iterator[None]:
    """A database trigger that fails every insert of an event whose dedup key is 'bad'."""
    postgres = runtime.engine.dialect.name == "postgresql"
    with runtime.engine.begin() as conn:
        if postgres:
            conn.execute(
                sa.text(
                    "CREATE FUNCTION refuse_bad() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.dedup_key = 'bad' THEN RAISE EXCEPTION 'refused'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse_bad BEFORE INSERT ON inbound_events "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_bad()"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse_bad BEFORE INSERT ON inbound_events "
                    "WHEN NEW.dedup_key = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
    yield
    with runtime.engine.begin() as conn:
        conn.execute(
            sa.text("DROP TRIGGER refuse_bad" + (" ON inbound_events" if postgres else ""))
        )
        if postgres:
            conn.execute(sa.text("DROP FUNCTION refuse_bad()"))


def test_failed_commit_answers_503(
    client: TestClient, runtime: Runtime, org: Org, refuse_inserts: None
) -> None:
    response = client.post("/v2/enqueue", json=trigger(org.pd_key, dedup_key="bad"))
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert stored(runtime) == []
    assert client.post("/v2/enqueue", json=trigger(org.pd_key)).status_code == 202
    assert runtime.writer.running  # the writer carries on


def test_a_failing_request_does_not_fail_those_committed_with_it(
    runtime: Runtime, org: Org, refuse_inserts: None
) -> None:
    with runtime.factory() as s:
        integration = s.scalars(sa.select(Integration).where(Integration.key == org.pd_key)).one()
    good = AcceptedEvent(integration.id, org.service_id, "trigger", "ok", {"summary": "fine"})
    bad = AcceptedEvent(integration.id, org.service_id, "trigger", "bad", {"summary": "refused"})
    writer = GroupCommitWriter(runtime.engine, runtime.clock)
    futures: list[Future[None]] = []
    for event in (good, bad, good):  # queued before the thread starts: one group
        done: Future[None] = Future()
        writer._queue.put(_Batch([event], done=done))
        futures.append(done)
    writer.start()
    try:
        assert futures[0].result(30) is None
        with pytest.raises(sa.exc.DBAPIError):
            futures[1].result(30)
        assert futures[2].result(30) is None
    finally:
        writer.stop()
    assert [e.dedup_key for e in stored(runtime)] == ["ok", "ok"]
    with pytest.raises(WriterStopped):
        writer.submit_sync([good])


# --- logs and metrics ---------------------------------------------------------------------


def test_rejections_are_logged_without_the_key(
    client: TestClient, runtime: Runtime, org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tocsin.ingest")
    bad = trigger(org.pd_key)
    bad["payload"]["severity"] = "loud"
    assert client.post("/v2/enqueue", json=bad).status_code == 400
    assert client.post(f"/integrations/alertmanager/{org.am_key}x", json={}).status_code == 404
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("tocsin.ingest")]
    assert any("payload.severity" in m for m in messages)
    assert any("unknown_key" in m for m in messages)
    assert all(org.pd_key not in m and org.am_key not in m for m in messages)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_count_accepted_and_rejected(
    client: TestClient, runtime: Runtime, org: Org
) -> None:
    accepted = _sample("tocsin_events_accepted_total", endpoint="pagerduty")
    rejected = _sample("tocsin_events_rejected_total", endpoint="pagerduty", reason="unknown_key")
    latency = _sample("tocsin_ingest_latency_seconds_count", endpoint="pagerduty")
    client.post("/v2/enqueue", json=trigger(org.pd_key))
    client.post("/v2/enqueue", json=trigger("0" * 32))
    assert _sample("tocsin_events_accepted_total", endpoint="pagerduty") == accepted + 1
    assert (
        _sample("tocsin_events_rejected_total", endpoint="pagerduty", reason="unknown_key")
        == rejected + 1
    )
    assert _sample("tocsin_ingest_latency_seconds_count", endpoint="pagerduty") == latency + 1


def test_state_is_per_app(runtime: Runtime) -> None:
    first, second = create_app(runtime), create_app(runtime)
    assert ingest_state(first) is ingest_state(first)
    assert ingest_state(first) is not ingest_state(second)
