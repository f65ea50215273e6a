"""Escalation into the real notification outbox: one outbox row per (incident, level, loop,
user, contact method), also when a node dies mid-escalation; a re-triggered incident pages the
same people again instead of being swallowed as a duplicate; hand-off notices land once."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from tests.oncall import org_builders as b
from tests.oncall.helpers import utc
from tests.oncall.test_escalation import change, open_incident, run_jobs
from tocsin.clock import FakeClock
from tocsin.engine.worker import Worker
from tocsin.notify.models import Notification
from tocsin.oncall import escalation
from tocsin.orgs.models import Service, User
from tocsin.runtime import Runtime

MINUTE = timedelta(minutes=1)


def outbox_pages(rt: Runtime) -> list[tuple[str, int | None, int | None, str]]:
    """(username, level, loop, unique key) of every page row, oldest first."""
    with rt.factory() as s:
        rows = s.execute(
            sa.select(User.username, Notification.level, Notification.loop, Notification.unique_key)
            .join(User, User.id == Notification.user_id)
            .where(Notification.purpose == "page")
            .order_by(Notification.id)
        ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def setup_ops(rt: Runtime) -> tuple[int, int, int]:
    alice, bob = b.user(rt, "alice"), b.user(rt, "bob")
    b.email_method(rt, alice)
    b.email_method(rt, bob)
    b.policy(rt, "ops", [(10, [("user", alice)]), (15, [("user", bob)])])
    return alice, bob, b.service(rt, "checkout", policy_slug="ops")


def test_levels_become_outbox_rows_and_a_dead_node_adds_none(
    runtime: Runtime, clock: FakeClock
) -> None:
    _, bob, service = setup_ops(runtime)
    incident = open_incident(runtime, service)
    run_jobs(runtime)
    assert [(u, lv, lp) for u, lv, lp, _ in outbox_pages(runtime)] == [("alice", 0, 0)]

    clock.advance(10 * MINUTE)
    doomed = Worker(runtime.factory, clock, node="doomed", lease_seconds=30)
    [claimed] = [c for c in doomed.claim() if c.kind == escalation.STEP_JOB]
    clock.advance(31 * timedelta(seconds=1))
    run_jobs(runtime)
    assert doomed.execute(claimed) is False
    rows = outbox_pages(runtime)
    assert [(u, lv, lp) for u, lv, lp, _ in rows] == [("alice", 0, 0), ("bob", 1, 0)]
    assert len({key for *_, key in rows}) == len(rows)
    assert rows[1][3].startswith(f"page:{incident}:1:0:{bob}:")


def test_a_retriggered_incident_pages_the_same_person_again(
    runtime: Runtime, clock: FakeClock
) -> None:
    _, _, service = setup_ops(runtime)
    with runtime.factory() as s, s.begin():
        s.get_one(Service, service).ack_timeout_seconds = 300
    incident = open_incident(runtime, service)
    run_jobs(runtime)
    change(runtime, incident, "acknowledge")
    clock.advance(5 * MINUTE)
    run_jobs(runtime)
    assert [(u, lv, lp) for u, lv, lp, _ in outbox_pages(runtime)] == [
        ("alice", 0, 0),
        ("alice", 0, 1),
    ]


def test_hand_off_notices_reach_the_outbox_once(runtime: Runtime, clock: FakeClock) -> None:
    alice = b.user(runtime, "alice", handoff_notice_minutes=30)
    b.email_method(runtime, alice)
    sid = b.schedule(runtime, "primary", [b.layer([alice], "2026-01-05T10:00", unit="days")])
    while clock.now() < utc(2026, 1, 5, 11):
        run_jobs(runtime)
        clock.advance(5 * MINUTE)
    with runtime.factory() as s:
        rows = s.execute(
            sa.select(Notification.unique_key, Notification.message, Notification.created_at).where(
                Notification.purpose == "handoff"
            )
        ).all()
    [(key, message, created)] = rows
    assert key.startswith(f"handoff:{sid}:{alice}:2026-01-05T10:00:00+00:00:")
    assert message["subject"] == "You are on call for Primary from Mon 5 Jan 2026 10:00 UTC"
    assert created == utc(2026, 1, 5, 9, 30)
