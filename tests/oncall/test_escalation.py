"""Escalation end to end on a fake clock: levels and their delays, loops, what stops an
escalation and what starts it again, schedule and team targets, manual escalation, responder
requests and paging a team."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.oncall import org_builders as b
from tests.oncall.paging import FakeOutbox, outbox, page_rows, pages
from tocsin.clock import FakeClock
from tocsin.db.engine import transaction
from tocsin.engine.models import Job
from tocsin.engine.queue import enqueue
from tocsin.errors import ApiError
from tocsin.incidents import service as incidents
from tocsin.incidents.models import Incident, TimelineEntry
from tocsin.oncall import escalation
from tocsin.orgs.models import Service, Team, User
from tocsin.runtime import Runtime

__all__ = ["outbox"]

MINUTE = timedelta(minutes=1)


@dataclass
class Ops:
    alice: int
    bob: int
    carol: int
    service: int


@pytest.fixture
def ops(runtime: Runtime, outbox: FakeOutbox) -> Ops:
    """alice at level 0 for 10 minutes, then bob at level 1 for 15 minutes."""
    alice, bob, carol = (b.user(runtime, n) for n in ("alice", "bob", "carol"))
    b.policy(runtime, "ops", [(10, [("user", alice)]), (15, [("user", bob)])])
    return Ops(alice, bob, carol, b.service(runtime, "checkout", policy_slug="ops"))


def open_incident(rt: Runtime, service_id: int, urgency: str | None = None) -> int:
    with transaction(rt.factory) as s:
        incident = incidents.open_incident(
            s,
            service=s.get_one(Service, service_id),
            title="Checkout is down",
            severity="critical",
            now=rt.clock.now(),
            actor="user:test",
            urgency=urgency,
        )
        return incident.id


def change(rt: Runtime, incident_id: int, action: str, **kw: object) -> None:
    with transaction(rt.factory) as s:
        incident = s.get_one(Incident, incident_id)
        getattr(incidents, action)(s, incident, now=rt.clock.now(), actor="user:test", **kw)


def run_jobs(rt: Runtime) -> None:
    while rt.worker.run_once():
        pass


def escalation_log(rt: Runtime, incident_id: int) -> list[str]:
    with rt.factory() as s:
        return list(
            s.scalars(
                sa.select(TimelineEntry.message)
                .where(
                    TimelineEntry.incident_id == incident_id,
                    TimelineEntry.kind.like("escalation.%")
                    | (TimelineEntry.kind == "responders.requested"),
                )
                .order_by(TimelineEntry.id)
            )
        )


def the(rt: Runtime, incident_id: int) -> Incident:
    with rt.factory() as s:
        return s.get_one(Incident, incident_id)


def test_each_level_fires_after_the_previous_levels_delay(
    runtime: Runtime, clock: FakeClock, ops: Ops
) -> None:
    incident = open_incident(runtime, ops.service)
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0)]
    assert the(runtime, incident).escalation_policy_id is not None

    clock.advance(10 * MINUTE - timedelta(seconds=1))
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0)]

    clock.advance(timedelta(seconds=1))
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0), ("bob", 1, 0)]
    assert (the(runtime, incident).escalation_level, the(runtime, incident).escalation_loop) == (
        1,
        0,
    )
    assert escalation_log(runtime, incident) == [
        "escalated to level 0 (loop 0): paged alice",
        "escalated to level 1 (loop 0): paged bob",
        "escalation exhausted: escalation policy Ops ran 1 loop; nobody else will be paged "
        "until the incident changes",
    ]
    clock.advance(2 * timedelta(hours=1))
    run_jobs(runtime)
    assert len(pages(runtime)) == 2


def test_repeat_runs_the_whole_policy_again(
    runtime: Runtime, clock: FakeClock, outbox: FakeOutbox
) -> None:
    alice, bob = b.user(runtime, "alice"), b.user(runtime, "bob")
    b.policy(runtime, "twice", [(10, [("user", alice)]), (15, [("user", bob)])], repeat=1)
    incident = open_incident(runtime, b.service(runtime, "checkout", policy_slug="twice"))
    fired = []
    for _ in range(60):
        run_jobs(runtime)
        now = pages(runtime)
        if len(now) > len(fired):
            fired.append((now[-1], clock.now()))
        clock.advance(MINUTE)
    start = fired[0][1]
    assert [(page, at - start) for page, at in fired] == [
        (("alice", 0, 0), 0 * MINUTE),
        (("bob", 1, 0), 10 * MINUTE),
        (("alice", 0, 1), 25 * MINUTE),
        (("bob", 1, 1), 35 * MINUTE),
    ]
    assert escalation_log(runtime, incident)[-1].startswith(
        "escalation exhausted: escalation policy Twice ran 2 loops"
    )


def test_acknowledgement_stops_the_escalation(runtime: Runtime, clock: FakeClock, ops: Ops) -> None:
    incident = open_incident(runtime, ops.service)
    run_jobs(runtime)
    clock.advance(5 * MINUTE)
    change(runtime, incident, "acknowledge")
    clock.advance(timedelta(hours=3))
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0)]
    assert escalation_log(runtime, incident) == ["escalated to level 0 (loop 0): paged alice"]
    with runtime.factory() as s:
        states = s.scalars(
            sa.select(Job.state).where(Job.kind == escalation.STEP_JOB).order_by(Job.id)
        ).all()
    assert states == ["done", "done"]  # the superseded step ran and did nothing


def test_resolve_stops_the_escalation(runtime: Runtime, clock: FakeClock, ops: Ops) -> None:
    incident = open_incident(runtime, ops.service)
    run_jobs(runtime)
    clock.advance(9 * MINUTE)
    change(runtime, incident, "resolve")
    clock.advance(timedelta(hours=1))
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0)]
    assert escalation_log(runtime, incident) == ["escalated to level 0 (loop 0): paged alice"]


def test_acknowledgement_timeout_triggers_again_and_escalation_starts_over(
    runtime: Runtime, clock: FakeClock, ops: Ops
) -> None:
    with runtime.factory() as s, s.begin():
        s.get_one(Service, ops.service).ack_timeout_seconds = 600
    incident = open_incident(runtime, ops.service)
    run_jobs(runtime)
    clock.advance(MINUTE)
    change(runtime, incident, "acknowledge")
    clock.advance(10 * MINUTE)  # the acknowledgement times out
    run_jobs(runtime)
    assert the(runtime, incident).status == "triggered"
    # A new loop number, so the outbox sees a new page for alice rather than a duplicate.
    assert pages(runtime) == [("alice", 0, 0), ("alice", 0, 1)]
    clock.advance(10 * MINUTE)
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0), ("alice", 0, 1), ("bob", 1, 1)]


def test_a_schedule_target_pages_whoever_is_on_call_at_that_moment(
    runtime: Runtime, clock: FakeClock, outbox: FakeOutbox
) -> None:
    alice, bob = b.user(runtime, "alice"), b.user(runtime, "bob")
    # Daily hand-off at 09:10 UTC: alice until 2026-01-05 09:10, then bob.
    primary = b.schedule(
        runtime, "primary", [b.layer([alice, bob], "2026-01-04T09:10", unit="days")]
    )
    b.policy(runtime, "primary", [(15, [("schedule", primary)])], repeat=1)
    open_incident(runtime, b.service(runtime, "checkout", policy_slug="primary"))
    run_jobs(runtime)  # 09:00
    clock.advance(15 * MINUTE)  # 09:15
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0), ("bob", 0, 1)]


def test_a_team_target_pages_every_active_member(
    runtime: Runtime, clock: FakeClock, outbox: FakeOutbox
) -> None:
    alice, bob = b.user(runtime, "alice"), b.user(runtime, "bob")
    dave = b.user(runtime, "dave", active=False)
    team = b.team(runtime, "payments", [alice, bob, dave])
    b.policy(runtime, "team", [(5, [("team", team)])])
    incident = open_incident(runtime, b.service(runtime, "checkout", policy_slug="team"))
    run_jobs(runtime)
    assert sorted(pages(runtime)) == [("alice", 0, 0), ("bob", 0, 0)]
    assert escalation_log(runtime, incident)[0] == "escalated to level 0 (loop 0): paged alice, bob"


def test_a_level_that_reaches_nobody_hands_over_at_once(
    runtime: Runtime, clock: FakeClock, outbox: FakeOutbox
) -> None:
    alice, bob = b.user(runtime, "alice"), b.user(runtime, "bob")
    later = b.schedule(runtime, "later", [b.layer([alice], "2026-02-01T00:00")])
    b.policy(runtime, "gappy", [(30, [("schedule", later)]), (30, [("user", bob)])])
    incident = open_incident(runtime, b.service(runtime, "checkout", policy_slug="gappy"))
    run_jobs(runtime)
    assert pages(runtime) == [("bob", 1, 0)]
    assert escalation_log(runtime, incident)[:2] == [
        "level 0 reached nobody (loop 0)",
        "escalated to level 1 (loop 0): paged bob",
    ]


def test_a_service_without_a_policy_pages_nobody_and_writes_nothing(
    runtime: Runtime, outbox: FakeOutbox
) -> None:
    b.user(runtime, "alice")
    incident = open_incident(runtime, b.service(runtime, "bare"))
    run_jobs(runtime)
    assert pages(runtime) == []
    assert escalation_log(runtime, incident) == []
    with runtime.factory() as s:
        assert s.scalars(sa.select(Job).where(Job.kind == escalation.STEP_JOB)).all() == []


def test_reassigning_pages_the_new_assignee_and_the_policy_follows(
    runtime: Runtime, clock: FakeClock, ops: Ops
) -> None:
    incident = open_incident(runtime, ops.service)
    run_jobs(runtime)
    clock.advance(2 * MINUTE)
    with transaction(runtime.factory) as s:
        incidents.reassign(
            s,
            s.get_one(Incident, incident),
            user=s.get_one(User, ops.carol),
            now=clock.now(),
            actor="user:test",
        )
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0), ("carol", 0, 1)]
    assert page_rows(runtime)[-1]["reason"] == "assigned to you"
    clock.advance(9 * MINUTE)  # the first escalation's level 1 would have been due now
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0), ("carol", 0, 1)]
    clock.advance(MINUTE)  # 10 minutes after the reassignment: the policy's level 1
    run_jobs(runtime)
    assert pages(runtime)[-1] == ("bob", 1, 1)


def test_escalating_by_hand_pages_the_next_level_now(
    runtime: Runtime, clock: FakeClock, ops: Ops
) -> None:
    incident = open_incident(runtime, ops.service)
    run_jobs(runtime)
    clock.advance(2 * MINUTE)
    with transaction(runtime.factory) as s:
        escalation.escalate_now(s, s.get_one(Incident, incident), now=clock.now(), actor="user:al")
    assert pages(runtime) == [("alice", 0, 0), ("bob", 1, 1)]
    clock.advance(timedelta(hours=2))
    run_jobs(runtime)  # the automatic step for level 1 was superseded
    assert pages(runtime) == [("alice", 0, 0), ("bob", 1, 1)]
    assert escalation_log(runtime, incident)[1] == (
        "escalated by user:al to level 1 (loop 1): paged bob"
    )

    with transaction(runtime.factory) as s:  # again, to a level already paged
        escalation.escalate_now(
            s, s.get_one(Incident, incident), now=clock.now(), actor="user:al", level=0
        )
    assert pages(runtime)[-1] == ("alice", 0, 2)
    clock.advance(10 * MINUTE)
    run_jobs(runtime)
    assert pages(runtime)[-1] == ("bob", 1, 2)


def test_escalating_an_acknowledged_incident_triggers_it_again(
    runtime: Runtime, clock: FakeClock, ops: Ops
) -> None:
    incident = open_incident(runtime, ops.service)
    run_jobs(runtime)
    change(runtime, incident, "acknowledge")
    with transaction(runtime.factory) as s:
        escalation.escalate_now(s, s.get_one(Incident, incident), now=clock.now(), actor="user:al")
    assert the(runtime, incident).status == "triggered"
    assert pages(runtime) == [("alice", 0, 0), ("bob", 1, 1)]
    run_jobs(runtime)  # the lifecycle hook did not start a second escalation
    assert pages(runtime) == [("alice", 0, 0), ("bob", 1, 1)]


def test_escalating_by_hand_refuses_what_cannot_be_done(
    runtime: Runtime, clock: FakeClock, ops: Ops
) -> None:
    incident = open_incident(runtime, ops.service)
    with transaction(runtime.factory) as s, pytest.raises(ApiError, match="between 0 and 1"):
        escalation.escalate_now(
            s, s.get_one(Incident, incident), now=clock.now(), actor="user:al", level=2
        )
    change(runtime, incident, "resolve")
    with transaction(runtime.factory) as s, pytest.raises(incidents.IncidentStateError):
        escalation.escalate_now(s, s.get_one(Incident, incident), now=clock.now(), actor="user:al")
    bare = open_incident(runtime, b.service(runtime, "bare"))
    with (
        transaction(runtime.factory) as s,
        pytest.raises(incidents.IncidentStateError, match="nobody to escalate to"),
    ):
        escalation.escalate_now(s, s.get_one(Incident, bare), now=clock.now(), actor="user:al")


def test_escalating_while_waiting_pages_the_first_level(
    runtime: Runtime, clock: FakeClock, ops: Ops
) -> None:
    with runtime.factory() as s, s.begin():
        s.get_one(Service, ops.service).support_hours = {
            "time_zone": "UTC",
            "days": [1],
            "start": "09:00",
            "end": "17:00",
        }
    incident = open_incident(runtime, ops.service, urgency="low")  # Monday: waits for Tuesday
    run_jobs(runtime)
    assert pages(runtime) == []
    with transaction(runtime.factory) as s:
        escalation.escalate_now(s, s.get_one(Incident, incident), now=clock.now(), actor="user:al")
    assert pages(runtime) == [("alice", 0, 1)]
    clock.advance(timedelta(days=1))
    run_jobs(runtime)  # the held first step was superseded; level 1 waits for support hours
    assert pages(runtime) == [("alice", 0, 1), ("bob", 1, 1)]


def test_responders_requested_into_an_incident(
    runtime: Runtime, clock: FakeClock, ops: Ops
) -> None:
    dave, erin = b.user(runtime, "dave"), b.user(runtime, "erin")
    primary = b.schedule(runtime, "primary", [b.layer([erin])])
    team = b.team(runtime, "db", [dave, ops.carol])
    incident = open_incident(runtime, ops.service)
    run_jobs(runtime)
    with transaction(runtime.factory) as s:
        paged = escalation.mobilise(
            s,
            s.get_one(Incident, incident),
            now=clock.now(),
            actor="user:alice",
            user_ids=[ops.carol],
            schedule_ids=[primary],
            team_ids=[team],
            message="need a DBA",
        )
    assert paged == [ops.carol, erin, dave]
    assert pages(runtime) == [("alice", 0, 0), ("carol", -1, 0), ("erin", -1, 0), ("dave", -1, 0)]
    assert escalation_log(runtime, incident)[-1] == (
        "responders requested: carol, erin, dave (need a DBA)"
    )
    with transaction(runtime.factory) as s:  # asking again pages again
        escalation.mobilise(
            s, s.get_one(Incident, incident), now=clock.now(), actor="user:alice", user_ids=[dave]
        )
    assert pages(runtime)[-1] == ("dave", -1, 1)
    clock.advance(10 * MINUTE)  # the escalation carries on regardless
    run_jobs(runtime)
    assert pages(runtime)[-1] == ("bob", 1, 0)


def test_responder_requests_refuse_unknown_and_inactive_targets(
    runtime: Runtime, clock: FakeClock, ops: Ops
) -> None:
    gone = b.user(runtime, "gone", active=False)
    incident = open_incident(runtime, ops.service)
    cases = [
        ({}, 422, "at least one"),
        ({"user_ids": [9999]}, 404, "no user with id 9999"),
        ({"schedule_ids": [9999]}, 404, "no schedule with id 9999"),
        ({"team_ids": [9999]}, 404, "no team with id 9999"),
        ({"user_ids": [gone]}, 409, "gone is deactivated"),
    ]
    for kwargs, status, message in cases:
        with transaction(runtime.factory) as s, pytest.raises(ApiError) as caught:
            escalation.mobilise(
                s, s.get_one(Incident, incident), now=clock.now(), actor="user:a", **kwargs
            )
        assert (caught.value.status, message in caught.value.message) == (status, True)
    assert escalation_log(runtime, incident) == []


def test_paging_a_team_through_its_policy(
    runtime: Runtime, clock: FakeClock, outbox: FakeOutbox
) -> None:
    alice, bob = b.user(runtime, "alice"), b.user(runtime, "bob")
    team = b.team(runtime, "payments", [alice, bob])
    b.policy(runtime, "payments", [(10, [("user", bob)])], team_id=team)
    with transaction(runtime.factory) as s:
        incident = escalation.page_team(
            s,
            s.get_one(Team, team),
            message="Card payments failing",
            now=clock.now(),
            actor="user:x",
        )
        incident_id, service_id = incident.id, incident.service_id
    run_jobs(runtime)
    assert pages(runtime, incident_id) == [("bob", 0, 0)]
    with runtime.factory() as s:
        service = s.get_one(Service, service_id)
        assert (service.internal, service.team_id, service.escalation_policy) == (
            True,
            team,
            "payments",
        )
        assert s.get_one(Incident, incident_id).title == "Card payments failing"
    with transaction(runtime.factory) as s:  # the same service next time
        again = escalation.page_team(
            s, s.get_one(Team, team), message="Still failing", now=clock.now(), actor="user:x"
        )
        assert again.service_id == service_id


def test_paging_a_team_without_a_policy_pages_every_member(
    runtime: Runtime, clock: FakeClock, outbox: FakeOutbox
) -> None:
    alice, bob = b.user(runtime, "alice"), b.user(runtime, "bob")
    team = b.team(runtime, "payments", [alice, bob])
    with transaction(runtime.factory) as s:
        incident_id = escalation.page_team(
            s,
            s.get_one(Team, team),
            message="All hands",
            now=clock.now(),
            actor="user:x",
            urgency="low",
        ).id
    assert pages(runtime, incident_id) == [("alice", -1, 0), ("bob", -1, 0)]
    assert the(runtime, incident_id).urgency == "low"
    with transaction(runtime.factory) as s, pytest.raises(ApiError, match="needs a message"):
        escalation.page_team(s, s.get_one(Team, team), message="  ", now=clock.now(), actor="x")


def test_a_stale_or_malformed_step_does_nothing(
    runtime: Runtime, clock: FakeClock, ops: Ops
) -> None:
    incident = open_incident(runtime, ops.service)
    run_jobs(runtime)
    now = clock.now()
    with transaction(runtime.factory) as s:
        current = s.get_one(Incident, incident)
        for key, payload in [
            ("old-generation", {"generation": current.generation - 1, "after": [0, 0]}),
            ("moved-on", {"generation": current.generation, "after": [1, 0]}),
            ("malformed", {"generation": "x"}),
        ]:
            enqueue(
                s,
                kind=escalation.STEP_JOB,
                due_at=now,
                now=now,
                payload={"incident_id": incident, "level": 1, "loop": 0, "first_loop": 0} | payload,
                unique_key=key,
            )
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0)]
    with runtime.factory() as s:
        states = dict(
            s.execute(
                sa.select(Job.unique_key, Job.state).where(
                    Job.unique_key.in_(["old-generation", "moved-on", "malformed"])
                )
            ).all()
        )
        error = s.scalar(sa.select(Job.last_error).where(Job.unique_key == "malformed"))
    assert states == {"old-generation": "done", "moved-on": "done", "malformed": "failed"}
    assert error is not None and "malformed escalation step payload" in error
