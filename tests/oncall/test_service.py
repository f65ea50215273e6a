"""Who is on call, read from the database: schedules, policies, services, teams, and the gaps
in a service's coverage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from tests.oncall import org_builders as b
from tests.oncall.helpers import utc
from tocsin.oncall import service as oncall
from tocsin.oncall.models import EscalationPolicy, Schedule
from tocsin.orgs.models import Service, Team
from tocsin.runtime import Runtime

WEEK = timedelta(weeks=1)


@contextmanager
def counted_queries(rt: Runtime) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(rt.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(rt.engine, "before_cursor_execute", count)


def test_weekly_rotation_with_an_override(runtime: Runtime) -> None:
    alice, bob, carol = (b.user(runtime, n) for n in ("alice", "bob", "carol"))
    sid = b.schedule(runtime, "primary", [b.layer([alice, bob])], time_zone="Europe/Berlin")
    b.override(runtime, sid, carol, utc(2026, 1, 14, 12), utc(2026, 1, 14, 14))
    with runtime.factory() as s:
        schedule = s.get_one(Schedule, sid)
        # Hand-offs are Mondays 09:00 Berlin = 08:00 UTC.
        assert oncall.schedule_on_call(s, schedule, utc(2026, 1, 5, 7, 59)) is None
        assert oncall.schedule_on_call(s, schedule, utc(2026, 1, 5, 8)) == alice
        assert oncall.schedule_on_call(s, schedule, utc(2026, 1, 12, 8)) == bob
        assert oncall.schedule_on_call(s, schedule, utc(2026, 1, 14, 13)) == carol
        assert oncall.schedule_on_call(s, schedule, utc(2026, 1, 14, 14)) == bob
        assert oncall.schedule_on_call(s, schedule, utc(2026, 1, 19, 8)) == alice


def test_schedule_spec_uses_layers_in_position_order_and_window_overrides(
    runtime: Runtime,
) -> None:
    alice, bob, carol = (b.user(runtime, n) for n in ("alice", "bob", "carol"))
    sid = b.schedule(
        runtime,
        "follow",
        [
            b.layer([alice], name="Base"),
            b.layer(
                [bob],
                name="Days",
                restrictions=[{"kind": "daily", "start": "09:00", "end": "17:00"}],
            ),
        ],
    )
    b.override(runtime, sid, carol, utc(2026, 1, 6, 1), utc(2026, 1, 6, 2))
    b.override(runtime, sid, carol, utc(2026, 2, 6, 1), utc(2026, 2, 6, 2))
    with runtime.factory() as s:
        schedule = s.get_one(Schedule, sid)
        spec = oncall.schedule_spec(s, schedule, utc(2026, 1, 5), utc(2026, 1, 12))
        assert [layer.name for layer in spec.layers] == ["Base", "Days"]
        assert [layer.users for layer in spec.layers] == [(alice,), (bob,)]
        assert [(o.user, o.start) for o in spec.overrides] == [(carol, utc(2026, 1, 6, 1))]
        assert len(oncall.schedule_spec(s, schedule).overrides) == 2
        assert oncall.schedule_on_call(s, schedule, utc(2026, 1, 6, 10)) == bob  # top layer
        assert oncall.schedule_on_call(s, schedule, utc(2026, 1, 6, 20)) == alice  # shows through


def test_an_inactive_user_keeps_their_turn_and_it_reaches_nobody(runtime: Runtime) -> None:
    alice = b.user(runtime, "alice")
    bob = b.user(runtime, "bob", active=False)
    sid = b.schedule(runtime, "primary", [b.layer([alice, bob])])
    with runtime.factory() as s:
        schedule = s.get_one(Schedule, sid)
        assert oncall.schedule_on_call(s, schedule, utc(2026, 1, 6)) == alice
        assert oncall.schedule_on_call(s, schedule, utc(2026, 1, 13)) is None
        shifts = oncall.schedule_shifts(s, schedule, utc(2026, 1, 5, 9), utc(2026, 1, 26, 9))
        # bob's week is missing: it is a gap, not alice's.
        assert [(x.user, x.start, x.end) for x in shifts] == [
            (alice, utc(2026, 1, 5, 9), utc(2026, 1, 12, 9)),
            (alice, utc(2026, 1, 19, 9), utc(2026, 1, 26, 9)),
        ]


def test_many_schedules_are_answered_in_a_fixed_number_of_queries(runtime: Runtime) -> None:
    users = [b.user(runtime, f"user{i}") for i in range(4)]
    ids = [
        b.schedule(runtime, f"s{i}", [b.layer(users, unit="days"), b.layer(users[:2], name="Top")])
        for i in range(30)
    ]
    b.override(runtime, ids[3], users[3], utc(2026, 1, 5), utc(2026, 1, 6))
    with runtime.factory() as s:
        schedules = list(s.scalars(sa.select(Schedule).order_by(Schedule.id)))
        with counted_queries(runtime) as statements:
            answers = oncall.schedules_on_call(s, schedules, utc(2026, 1, 5, 12))
        assert len(statements) == 3  # layers, overrides, active users
    assert answers[ids[3]] == users[3]
    assert answers[ids[0]] == users[0]
    assert set(answers) == set(ids)


def test_policy_levels_resolve_users_schedules_and_teams(runtime: Runtime) -> None:
    alice, bob, carol = (b.user(runtime, n) for n in ("alice", "bob", "carol"))
    gone = b.user(runtime, "gone", active=False)
    sid = b.schedule(runtime, "primary", [b.layer([bob, carol])])
    tid = b.team(runtime, "ops", [alice, carol, gone])
    pid = b.policy(
        runtime,
        "ops",
        [
            (10, [("schedule", sid)]),
            (20, [("user", alice), ("schedule", sid), ("user", gone)]),
            (30, [("team", tid)]),
        ],
    )
    with runtime.factory() as s:
        levels = oncall.policy_on_call(s, s.get_one(EscalationPolicy, pid), utc(2026, 1, 6))
    assert levels == [
        oncall.LevelOnCall(0, 10, [bob]),
        oncall.LevelOnCall(1, 20, [alice, bob]),
        oncall.LevelOnCall(2, 30, [alice, carol]),
    ]


def test_service_and_team_on_call(runtime: Runtime) -> None:
    alice, bob = b.user(runtime, "alice"), b.user(runtime, "bob")
    tid = b.team(runtime, "payments", [alice, bob])
    b.policy(runtime, "payments-main", [(15, [("user", alice)])], team_id=tid)
    b.policy(runtime, "shared", [(15, [("user", bob)])])
    b.policy(runtime, "unrelated", [(15, [("user", bob)])])
    svc = b.service(runtime, "checkout", policy_slug="shared", team_id=tid)
    bare = b.service(runtime, "bare")
    with runtime.factory() as s:
        at = utc(2026, 1, 6)
        assert oncall.service_on_call(s, s.get_one(Service, svc), at) == [
            oncall.LevelOnCall(0, 15, [bob])
        ]
        assert oncall.service_on_call(s, s.get_one(Service, bare), at) == []
        by_policy = oncall.team_on_call(s, s.get_one(Team, tid), at)
    assert by_policy == {
        "payments-main": [oncall.LevelOnCall(0, 15, [alice])],
        "shared": [oncall.LevelOnCall(0, 15, [bob])],
    }


def test_service_gaps_find_the_nights_a_restricted_layer_leaves_uncovered(
    runtime: Runtime,
) -> None:
    alice, bob = b.user(runtime, "alice"), b.user(runtime, "bob")
    days = b.schedule(
        runtime,
        "days",
        [
            b.layer(
                [alice, bob],
                "2026-01-05T09:00",
                unit="days",
                restrictions=[{"kind": "daily", "start": "09:00", "end": "17:00"}],
            )
        ],
        time_zone="Europe/Berlin",
    )
    b.policy(runtime, "days-only", [(10, [("schedule", days)]), (10, [("schedule", days)])])
    svc = b.service(runtime, "checkout", policy_slug="days-only")
    with runtime.factory() as s:
        gaps = oncall.service_gaps(s, s.get_one(Service, svc), utc(2026, 1, 5), utc(2026, 1, 8))
    # 09:00-17:00 Berlin is 08:00-16:00 UTC; everything else is uncovered.
    assert gaps == [
        (utc(2026, 1, 5), utc(2026, 1, 5, 8)),
        (utc(2026, 1, 5, 16), utc(2026, 1, 6, 8)),
        (utc(2026, 1, 6, 16), utc(2026, 1, 7, 8)),
        (utc(2026, 1, 7, 16), utc(2026, 1, 8)),
    ]


def test_service_gaps_take_the_union_of_all_levels(runtime: Runtime) -> None:
    alice, bob = b.user(runtime, "alice"), b.user(runtime, "bob")
    days = b.schedule(
        runtime,
        "days",
        [b.layer([alice], restrictions=[{"kind": "daily", "start": "08:00", "end": "20:00"}])],
    )
    nights = b.schedule(
        runtime,
        "nights",
        [b.layer([bob], restrictions=[{"kind": "daily", "start": "19:00", "end": "09:00"}])],
    )
    b.policy(runtime, "follow", [(10, [("schedule", days)]), (10, [("schedule", nights)])])
    svc = b.service(runtime, "checkout", policy_slug="follow")
    with runtime.factory() as s:
        gaps = oncall.service_gaps(s, s.get_one(Service, svc), utc(2026, 1, 6), utc(2026, 1, 9))
    assert gaps == []


def test_service_gaps_with_users_teams_and_without_a_policy(runtime: Runtime) -> None:
    alice = b.user(runtime, "alice")
    idle = b.user(runtime, "idle", active=False)
    empty_team = b.team(runtime, "empty", [idle])
    full_team = b.team(runtime, "full", [alice])
    b.policy(runtime, "to-alice", [(10, [("user", alice)])])
    b.policy(runtime, "to-idle", [(10, [("user", idle)]), (10, [("team", empty_team)])])
    b.policy(runtime, "to-team", [(10, [("team", full_team)])])
    window = (utc(2026, 1, 6), utc(2026, 1, 7))
    expected = {
        "to-alice": [],
        "to-idle": [window],
        "to-team": [],
        None: [window],
        "no-such-policy": [window],
    }
    for slug in expected:
        b.service(runtime, f"svc-{slug}", policy_slug=slug)
    with runtime.factory() as s:
        for slug, gaps in expected.items():
            svc = s.scalars(sa.select(Service).where(Service.slug == f"svc-{slug}")).one()
            assert oncall.service_gaps(s, svc, *window) == gaps, slug


def test_layer_end_and_dst_in_the_schedule_zone(runtime: Runtime) -> None:
    alice, bob = b.user(runtime, "alice"), b.user(runtime, "bob")
    sid = b.schedule(
        runtime,
        "ny",
        [b.layer([alice, bob], "2026-03-01T09:00", unit="weeks", end="2026-03-15T09:00")],
        time_zone="America/New_York",
    )
    with runtime.factory() as s:
        schedule = s.get_one(Schedule, sid)
        # The US moves to summer time on 8 March: the hand-off stays at 09:00 local, which is
        # 13:00 UTC from then on instead of 14:00.
        assert oncall.schedule_on_call(s, schedule, utc(2026, 3, 1, 14)) == alice
        assert oncall.schedule_on_call(s, schedule, utc(2026, 3, 8, 12, 59)) == alice
        assert oncall.schedule_on_call(s, schedule, utc(2026, 3, 8, 13)) == bob
        assert oncall.schedule_on_call(s, schedule, utc(2026, 3, 15, 12, 59)) == bob
        assert oncall.schedule_on_call(s, schedule, utc(2026, 3, 15, 13)) is None
