"""Alert fatigue: a burst of pages to one user is bundled into one digest per contact method."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

from tests.conftest import Org
from tests.notify.paging_support import (
    add_method,
    add_rule,
    entries,
    notifications,
    open_incident,
    page,
    resolve,
    use_recording,
)
from tocsin.clock import FakeClock
from tocsin.notify.channels.recording import RecordingChannel
from tocsin.notify.channels_config import ChannelSet
from tocsin.notify.dispatcher import Dispatcher
from tocsin.runtime import Runtime
from tocsin.settings import Settings

EMAIL = "alice@example.com"


def throttle(runtime: Runtime, settings: Settings, max_pages: int, minutes: int = 10) -> None:
    runtime.dispatcher.settings = replace(
        settings, digest_max_pages=max_pages, digest_window_minutes=minutes
    )


def burst(runtime: Runtime, org: Org, count: int) -> list[int]:
    ids = [open_incident(runtime, org, f"incident {n}") for n in range(count)]
    for incident_id in ids:
        page(runtime, incident_id, org.user_id)
    return ids


def test_a_burst_sends_the_first_pages_and_bundles_the_rest_into_a_digest(
    runtime: Runtime, org: Org, clock: FakeClock, settings: Settings
) -> None:
    add_method(runtime, org.user_id, "email", EMAIL)
    channel = use_recording(runtime)
    throttle(runtime, settings, 2)
    start = clock.now()
    ids = burst(runtime, org, 5)

    runtime.dispatcher.drain()

    assert [a.message.incident_id for a in channel.attempts] == [str(i) for i in ids[:2]]
    pages = notifications(runtime, purpose="page")
    assert [p.state for p in pages] == ["sent", "sent", "bundled", "bundled", "bundled"]
    [digest] = notifications(runtime, purpose="digest")
    assert digest.state == "pending"
    assert digest.due_at == start + timedelta(minutes=10)
    assert {p.digest_id for p in pages[2:]} == {digest.id}
    [held] = [e for e in entries(runtime, ids[2]) if e.kind == "notification.bundled"]
    assert "2 incidents already paged them within 10 min" in held.message

    clock.advance(timedelta(minutes=10))
    runtime.dispatcher.drain()

    assert len(channel.attempts) == 3
    sent = channel.attempts[2].message
    assert sent.subject == "3 more incidents for you (digest)"
    assert sent.idempotency_key == digest.unique_key
    for n, incident_id in enumerate(ids[2:], start=2):
        assert f"#{incident_id} [triggered, high] incident {n}" in sent.text
        ack_url = pages[n].message["ack_url"]
        assert f"Acknowledge: {ack_url}" in sent.text
        assert sent.html is not None and f'href="{ack_url}"' in sent.html
        assert entries(runtime, incident_id)[-1].kind == "notification.sent"
        assert entries(runtime, incident_id)[-1].data["purpose"] == "digest"
    assert notifications(runtime, purpose="digest")[0].state == "sent"


def test_pages_of_an_incident_already_paging_the_user_are_not_held_back(
    runtime: Runtime, org: Org, clock: FakeClock, settings: Settings
) -> None:
    push = add_method(runtime, org.user_id, "push", "ntfys://ntfy.sh/alice")
    sms = add_method(runtime, org.user_id, "sms", "twilio://AC1:tok@1555/1556")
    add_rule(runtime, org.user_id, push, 0)
    add_rule(runtime, org.user_id, sms, 2)
    channel = use_recording(runtime)
    throttle(runtime, settings, 1)
    first, second = burst(runtime, org, 2)

    runtime.dispatcher.drain()
    clock.advance(timedelta(minutes=2))
    runtime.dispatcher.drain()

    assert [(a.message.incident_id, a.target.kind) for a in channel.attempts] == [
        (str(first), "push"),
        (str(first), "sms"),
    ]
    digests = notifications(runtime, purpose="digest")
    assert [d.contact_method_id for d in digests] == [push, sms]  # one per contact method

    clock.advance(timedelta(minutes=8))
    runtime.dispatcher.drain()

    digest_sends = channel.attempts[2:]
    assert sorted(a.target.kind for a in digest_sends) == ["push", "sms"]
    assert all(f"#{second} " in a.message.text for a in digest_sends)


def test_a_digest_whose_incidents_were_all_handled_is_not_sent(
    runtime: Runtime, org: Org, clock: FakeClock, settings: Settings
) -> None:
    add_method(runtime, org.user_id, "email", EMAIL)
    channel = use_recording(runtime)
    throttle(runtime, settings, 1)
    ids = burst(runtime, org, 3)
    runtime.dispatcher.drain()
    for incident_id in ids[1:]:
        resolve(runtime, incident_id)

    clock.advance(timedelta(minutes=10))
    runtime.dispatcher.drain()

    assert len(channel.attempts) == 1
    [digest] = notifications(runtime, purpose="digest")
    assert digest.state == "cancelled"


def test_after_the_window_pages_go_out_at_once_again(
    runtime: Runtime, org: Org, clock: FakeClock, settings: Settings
) -> None:
    add_method(runtime, org.user_id, "email", EMAIL)
    channel = use_recording(runtime)
    throttle(runtime, settings, 1, minutes=5)
    burst(runtime, org, 1)
    runtime.dispatcher.drain()

    clock.advance(timedelta(minutes=5, seconds=1))
    burst(runtime, org, 1)
    runtime.dispatcher.drain()

    assert len(channel.attempts) == 2
    assert notifications(runtime, purpose="digest") == []


def test_zero_turns_throttling_off(runtime: Runtime, org: Org, settings: Settings) -> None:
    add_method(runtime, org.user_id, "email", EMAIL)
    channel = use_recording(runtime)
    throttle(runtime, settings, 0)
    burst(runtime, org, 12)

    runtime.dispatcher.drain()

    assert len(channel.attempts) == 12
    assert notifications(runtime, purpose="digest") == []


def test_two_nodes_count_the_same_pages(
    runtime: Runtime, org: Org, clock: FakeClock, settings: Settings
) -> None:
    add_method(runtime, org.user_id, "email", EMAIL)
    channel = RecordingChannel()
    limited = replace(settings, digest_max_pages=3, notify_batch=1)
    burst(runtime, org, 10)
    other = Runtime(settings, clock=clock)
    try:
        dispatchers = [
            Dispatcher(rt.factory, clock, settings=limited, channels=ChannelSet.every_kind(channel))
            for rt in (runtime, other)
        ]
        barrier = threading.Barrier(2)

        def run(dispatcher: Dispatcher) -> None:
            barrier.wait()
            dispatcher.drain()

        threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        for dispatcher in dispatchers:
            dispatcher.stop()
    finally:
        other.close()

    assert len(channel.attempts) == 3
    states = [n.state for n in notifications(runtime, purpose="page")]
    assert states.count("sent") == 3 and states.count("bundled") == 7
    assert len(notifications(runtime, purpose="digest")) == 1
