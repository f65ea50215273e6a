"""SIGKILL mid-stream: every event a server answered 202 for survives and is processed."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from tests.procs import (
    Send,
    SendReport,
    ServerPool,
    fire,
    pd_trigger,
    pending_events,
    wait_until,
)

pytestmark = pytest.mark.slow

EVENTS = 3000
KILL_AFTER_ACKS = 800


def test_acknowledged_events_survive_sigkill(servers: ServerPool, db_kind: str) -> None:
    db = servers.database(db_kind)
    server = servers.start(db)
    url = f"{server.base_url}/v2/enqueue"
    sends = [Send(url, pd_trigger(db.pd_key, f"crash-{i}"), f"crash-{i}") for i in range(EVENTS)]

    enough = threading.Event()
    stop = threading.Event()
    outcome: list[SendReport] = []

    def on_accept(total: int) -> None:
        if total >= KILL_AFTER_ACKS:
            enough.set()

    sender = threading.Thread(
        target=lambda: outcome.append(fire(sends, threads=8, stop=stop, on_accept=on_accept))
    )
    sender.start()
    try:
        assert enough.wait(timeout=120), "the server never acknowledged enough events"
        server.kill()  # requests are in flight on all eight connections right now
    finally:
        stop.set()
        sender.join(timeout=120)
    [report] = outcome
    assert not report.rejected, report.rejected[:5]
    assert report.failed, "the kill should have cut off requests in flight"
    acked = set(report.accepted)
    never_sent = {s.key for s in sends} - acked - set(report.failed)

    engine = db.engine()
    try:
        # Durable before anything restarts: the inbox holds every acknowledged event, once.
        stored = _stored_keys(engine)
        assert acked <= set(stored), sorted(acked - set(stored))[:10]
        assert len(stored) == len(set(stored)), "an event was stored twice"
        assert not set(stored) & never_sent

        servers.start(db)  # same database, new process
        wait_until(lambda: pending_events(engine) == 0, timeout=120, what="processing")

        with engine.connect() as conn:
            statuses: dict[str, int] = dict(
                conn.execute(
                    sa.text("SELECT status, count(*) FROM inbound_events GROUP BY status")
                ).all()
            )
            alerts: dict[str, int] = dict(
                conn.execute(sa.text("SELECT dedup_key, event_count FROM alerts")).all()
            )
        assert statuses == {"processed": len(stored)}
        assert acked <= set(alerts), sorted(acked - set(alerts))[:10]
        assert set(alerts) == set(stored)
        assert set(alerts.values()) == {1}
    finally:
        engine.dispose()


def _stored_keys(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT dedup_key FROM inbound_events")).scalars())
