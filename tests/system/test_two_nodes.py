"""Two server processes on one PostgreSQL database: dedup holds across nodes and every accepted
event is processed exactly once."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from tests.procs import (
    Send,
    ServerPool,
    fire,
    pd_trigger,
    pending_events,
    require_database,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SHARED_KEYS = 150  # each triggered twice on each node, the four sends back to back
SOLO_KEYS = 200  # each triggered once, on one node or the other


def test_two_nodes_dedup_and_process_exactly_once(servers: ServerPool) -> None:
    require_database("postgresql")
    db = servers.database("postgresql")
    a, b = servers.start(db), servers.start(db)
    urls = [f"{a.base_url}/v2/enqueue", f"{b.base_url}/v2/enqueue"]

    sends: list[Send] = []
    for i in range(max(SHARED_KEYS, SOLO_KEYS)):
        if i < SHARED_KEYS:
            key = f"shared-{i}"
            sends += [Send(urls[n % 2], pd_trigger(db.pd_key, key), key) for n in range(4)]
        if i < SOLO_KEYS:
            key = f"solo-{i}"
            sends.append(Send(urls[i % 2], pd_trigger(db.pd_key, key), key))

    report = fire(sends, threads=8)
    assert (report.failed, report.rejected, report.not_sent) == ([], [], 0)
    accepted = Counter(report.accepted)
    assert sum(accepted.values()) == len(sends)

    engine = db.engine()
    try:
        wait_until(lambda: pending_events(engine) == 0, timeout=120, what="processing")
        with engine.connect() as conn:
            statuses: dict[str, int] = dict(
                conn.execute(
                    sa.text("SELECT status, count(*) FROM inbound_events GROUP BY status")
                ).all()
            )
            alerts = conn.execute(
                sa.text("SELECT dedup_key, status, event_count FROM alerts")
            ).all()
            incidents = conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one()
    finally:
        engine.dispose()

    assert statuses == {"processed": len(sends)}
    per_key = Counter(row.dedup_key for row in alerts)
    assert set(per_key.values()) == {1}, [k for k, n in per_key.items() if n > 1][:10]
    assert {row.status for row in alerts} == {"triggered"}
    assert {row.dedup_key: row.event_count for row in alerts} == dict(accepted)
    assert sum(row.event_count for row in alerts) == len(sends)
    assert incidents == SHARED_KEYS + SOLO_KEYS
