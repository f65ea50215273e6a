"""The benchmark's load generator and reference system do what the figures rely on: wrk's
storm sends exactly its quota, every 2xx counted was stored, Alertmanager holds what it took."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from benchmarks import alertmanager, loadgen

from tests.procs import ServerPool, free_port, pending_events, scalar, wait_until
from tests.services import require_binary

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _wrk() -> None:
    require_binary("wrk", "the Debian package wrk")


def test_storm_sends_exactly_its_quota_on_one_key(servers: ServerPool) -> None:
    db = servers.database("sqlite")
    server = servers.start(db)
    result = loadgen.run_count(
        server.base_url,
        "storm",
        [db.pd_key, "storm-1"],
        total=300,
        connections=8,
        threads=2,
        timeout=60,
    )
    assert (result.ok, result.failed) == (300, 0)
    engine = db.engine()
    try:
        assert scalar(engine, "SELECT count(*) FROM inbound_events") == 300
        wait_until(lambda: pending_events(engine) == 0, timeout=60, what="processing")
        with engine.connect() as conn:
            alerts = conn.execute(sa.text("SELECT dedup_key, event_count FROM alerts")).all()
    finally:
        engine.dispose()
    assert [tuple(a) for a in alerts] == [("storm-1", 300)]


def test_timed_run_counts_only_what_was_stored(servers: ServerPool) -> None:
    db = servers.database("sqlite")
    server = servers.start(db)
    result = loadgen.run_for(
        server.base_url, "pd_trigger", [db.pd_key, "t"], seconds=1, connections=4, threads=1
    )
    assert result.ok > 0 and result.failed == 0
    engine = db.engine()
    try:
        stored = scalar(engine, "SELECT count(DISTINCT dedup_key) FROM inbound_events")
    finally:
        engine.dispose()
    # wrk stops with requests in flight: those may be stored without being counted.
    assert result.ok <= stored <= result.ok + 4


def test_counted_alertmanager_batches_are_stored_whole(servers: ServerPool) -> None:
    db = servers.database("sqlite")
    server = servers.start(db)
    result = loadgen.run_count(
        server.base_url,
        "am_webhook_batch",
        [db.am_key, "ab12", "256"],
        total=6,
        connections=3,
        threads=2,
        timeout=60,
    )
    assert (result.ok, result.failed) == (6, 0)
    engine = db.engine()
    try:
        stored = scalar(engine, "SELECT count(DISTINCT dedup_key) FROM inbound_events")
    finally:
        engine.dispose()
    assert stored == 6 * 256


def test_alertmanager_holds_every_alert_it_acknowledged() -> None:
    path = alertmanager.binary()
    if path is None:
        require_binary("prometheus-alertmanager", "the Debian package prometheus-alertmanager")
    with alertmanager.running_alertmanager(free_port()) as url:
        result = loadgen.run_for(url, "am_api_alert", ["t"], seconds=1, connections=4, threads=1)
        received = alertmanager.alerts_received(url)
    assert result.ok > 0 and result.failed == 0
    assert result.ok <= received <= result.ok + 4
