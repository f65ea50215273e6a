"""Hand-off notices: each user is told about a shift once, their own notice time before it
starts, in their own time zone; continuing shifts, inactive users and users who opted out get
nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.oncall import org_builders as b
from tests.oncall.helpers import utc
from tests.oncall.paging import FakeOutbox, notices, outbox
from tocsin.clock import FakeClock
from tocsin.db.engine import transaction
from tocsin.oncall.handoff import notice_key, send_handoff_notices
from tocsin.runtime import Runtime

__all__ = ["outbox"]


def scan(rt: Runtime, at: datetime) -> int:
    with transaction(rt.factory) as s:
        return send_handoff_notices(s, at)


def daily_rotation(rt: Runtime, members: list[int], **kw: object) -> int:
    return b.schedule(rt, "primary", [b.layer(members, "2026-01-05T10:00", unit="days", **kw)])


def test_a_notice_before_the_shift_in_the_users_time_zone(
    runtime: Runtime, outbox: FakeOutbox
) -> None:
    alice = b.user(runtime, "alice", handoff_notice_minutes=60)
    bob = b.user(runtime, "bob", time_zone="America/New_York", handoff_notice_minutes=30)
    sid = daily_rotation(runtime, [alice, bob])
    assert scan(runtime, utc(2026, 1, 5, 8, 59)) == 0
    assert scan(runtime, utc(2026, 1, 5, 9)) == 1  # exactly 60 minutes before
    alice_key = notice_key(sid, alice, utc(2026, 1, 5, 10))
    assert alice_key == f"handoff:{sid}:{alice}:2026-01-05T10:00:00+00:00"
    notice = notices(runtime)[alice_key]
    assert notice["subject"] == "You are on call for Primary from Mon 5 Jan 2026 10:00 UTC"
    assert notice["text"] == (
        "Your on-call shift for Primary starts Mon 5 Jan 2026 10:00 UTC until "
        "Tue 6 Jan 2026 10:00 UTC (the Primary layer)."
    )
    assert scan(runtime, utc(2026, 1, 6, 9, 29)) == 0
    assert scan(runtime, utc(2026, 1, 6, 9, 30)) == 1
    bob_notice = notices(runtime)[notice_key(sid, bob, utc(2026, 1, 6, 10))]
    assert bob_notice["subject"] == "You are on call for Primary from Tue 6 Jan 2026 05:00 EST"


def test_the_periodic_scan_tells_each_user_once_per_shift(
    runtime: Runtime, clock: FakeClock, outbox: FakeOutbox
) -> None:
    alice = b.user(runtime, "alice", handoff_notice_minutes=60)
    bob = b.user(runtime, "bob", handoff_notice_minutes=30)
    sid = daily_rotation(runtime, [alice, bob])
    while clock.now() < utc(2026, 1, 6, 10, 30):
        while runtime.worker.run_once():
            pass
        clock.advance(timedelta(minutes=5))
    sent = notices(runtime)
    assert {key: notice["at"] for key, notice in sent.items()} == {
        # The first scan after start-up runs at 09:05 (scans are every 5 minutes).
        notice_key(sid, alice, utc(2026, 1, 5, 10)): "2026-01-05T09:05:00+00:00",
        notice_key(sid, bob, utc(2026, 1, 6, 10)): "2026-01-06T09:30:00+00:00",
    }
    # Later scans saw the same shifts again and handed over the same keys: no second notice.
    assert len(outbox.notice_calls) > len(sent)
    assert set(outbox.notice_calls) == set(sent)


def test_a_shift_that_continues_the_same_persons_time_is_no_hand_off(
    runtime: Runtime, outbox: FakeOutbox
) -> None:
    alice = b.user(runtime, "alice", handoff_notice_minutes=60)
    bob = b.user(runtime, "bob", handoff_notice_minutes=60)
    sid = daily_rotation(runtime, [alice, bob])
    # alice stays on for two more hours; bob takes over at 12:00 instead of 10:00.
    b.override(runtime, sid, alice, utc(2026, 1, 6, 10), utc(2026, 1, 6, 12))
    scan(runtime, utc(2026, 1, 6, 9, 30))
    scan(runtime, utc(2026, 1, 6, 11, 30))
    assert set(notices(runtime)) == {notice_key(sid, bob, utc(2026, 1, 6, 12))}


def test_inactive_users_and_users_without_notices_are_not_told(
    runtime: Runtime, outbox: FakeOutbox
) -> None:
    carol = b.user(runtime, "carol", active=False)
    dave = b.user(runtime, "dave", handoff_notice_minutes=None)
    b.user(runtime, "erin", handoff_notice_minutes=120)  # not on any schedule
    daily_rotation(runtime, [carol, dave])
    for hour in (8, 9, 10):
        scan(runtime, utc(2026, 1, 5, hour))
        scan(runtime, utc(2026, 1, 6, hour))
    assert notices(runtime) == {}


def test_every_night_of_a_restricted_layer_is_a_shift(runtime: Runtime, outbox: FakeOutbox) -> None:
    alice = b.user(runtime, "alice", time_zone="Europe/Berlin", handoff_notice_minutes=60)
    sid = daily_rotation(
        runtime, [alice], restrictions=[{"kind": "daily", "start": "22:00", "end": "06:00"}]
    )
    for day in (5, 6):
        scan(runtime, utc(2026, 1, day, 21, 15))
    sent = notices(runtime)
    assert set(sent) == {
        notice_key(sid, alice, utc(2026, 1, 5, 22)),
        notice_key(sid, alice, utc(2026, 1, 6, 22)),
    }
    assert sent[notice_key(sid, alice, utc(2026, 1, 5, 22))]["subject"] == (
        "You are on call for Primary from Mon 5 Jan 2026 23:00 CET"
    )


def test_a_notice_of_zero_minutes_comes_with_the_first_scan_after_the_start(
    runtime: Runtime, outbox: FakeOutbox
) -> None:
    alice = b.user(runtime, "alice", handoff_notice_minutes=0)
    sid = daily_rotation(runtime, [alice])
    assert scan(runtime, utc(2026, 1, 5, 9, 58)) == 0
    assert scan(runtime, utc(2026, 1, 5, 10, 3)) == 1
    assert set(notices(runtime)) == {notice_key(sid, alice, utc(2026, 1, 5, 10))}
    # Far later, the start is outside the look-back: nothing is announced late.
    assert scan(runtime, utc(2026, 1, 5, 11)) == 0
