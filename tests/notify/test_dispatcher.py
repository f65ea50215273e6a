"""The outbox sender: delays, retries with backoff, fallback, unknown outcomes, the sweep,
cancellation, timeline entries and metrics."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.conftest import Org
from tests.notify.paging_support import (
    acknowledge,
    add_method,
    add_rule,
    entries,
    kinds,
    notification,
    notifications,
    open_incident,
    page,
    resolve,
    use_recording,
)
from tocsin.clock import FakeClock
from tocsin.notify.channels.base import DeliveryResult
from tocsin.notify.channels.recording import RecordingChannel
from tocsin.notify.channels_config import ChannelSet
from tocsin.notify.dispatcher import Dispatcher
from tocsin.observability.metrics import REGISTRY
from tocsin.runtime import Runtime
from tocsin.settings import Settings

PUSH = "ntfys://ntfy.sh/alice-secret-topic"
SMS = "twilio://AC1:authtoken@15551234567/15557654321"
VOICE = "twilio://AC1:authtoken@15551234567/15550000000"


@pytest.fixture
def channel(runtime: Runtime) -> RecordingChannel:
    return use_recording(runtime)


@pytest.fixture
def chain(runtime: Runtime, org: Org) -> dict[str, int]:
    """Alice: push now, SMS after 2 minutes, voice after 5."""
    methods = {
        "push": add_method(runtime, org.user_id, "push", PUSH),
        "sms": add_method(runtime, org.user_id, "sms", SMS),
        "voice": add_method(runtime, org.user_id, "voice", VOICE),
    }
    for name, delay in (("push", 0), ("sms", 2), ("voice", 5)):
        add_rule(runtime, org.user_id, methods[name], delay)
    return methods


def addresses(channel: RecordingChannel) -> list[str]:
    return [a.target.address for a in channel.attempts]


def states(runtime: Runtime) -> list[str]:
    return [n.state for n in notifications(runtime)]


def test_each_rule_goes_out_at_its_delay(
    runtime: Runtime, org: Org, clock: FakeClock, channel: RecordingChannel, chain: dict[str, int]
) -> None:
    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)

    assert runtime.dispatcher.run_once() == 1
    assert addresses(channel) == [PUSH]
    assert runtime.dispatcher.run_once() == 0
    clock.advance(timedelta(minutes=2))
    runtime.dispatcher.drain()
    assert addresses(channel) == [PUSH, SMS]
    clock.advance(timedelta(minutes=3))
    runtime.dispatcher.drain()
    assert addresses(channel) == [PUSH, SMS, VOICE]

    assert states(runtime) == ["sent", "sent", "sent"]
    sent = entries(runtime, incident_id)[1:]
    assert [e.kind for e in sent] == ["notification.sent"] * 3
    assert sent[0].data["outcome"] == "sent" and sent[0].data["user"] == "alice"
    assert sent[0].actor == "system:notify"
    message = channel.attempts[0].message
    assert message.idempotency_key == f"page:{incident_id}:1:0:{org.user_id}:{chain['push']}"
    assert message.ack_url and message.resolve_url and message.incident_id == str(incident_id)


def test_acknowledging_cancels_the_pages_still_waiting(
    runtime: Runtime, org: Org, clock: FakeClock, channel: RecordingChannel, chain: dict[str, int]
) -> None:
    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)
    runtime.dispatcher.drain()
    clock.advance(60)
    acknowledge(runtime, incident_id)
    clock.advance(timedelta(minutes=10))

    runtime.dispatcher.drain()

    assert addresses(channel) == [PUSH]
    assert states(runtime) == ["sent", "cancelled", "cancelled"]
    cancelled = [e for e in entries(runtime, incident_id) if e.kind == "notification.cancelled"]
    assert len(cancelled) == 2
    assert "acknowledged by user:bob" in cancelled[0].message


def test_a_page_into_an_already_acknowledged_incident_still_goes_out(
    runtime: Runtime, org: Org, clock: FakeClock, channel: RecordingChannel, chain: dict[str, int]
) -> None:
    incident_id = open_incident(runtime, org)
    acknowledge(runtime, incident_id)
    clock.advance(30)
    page(runtime, incident_id, org.user_id)  # a responder request after the acknowledgement

    runtime.dispatcher.drain()

    assert addresses(channel) == [PUSH]


def test_resolving_cancels_waiting_pages(
    runtime: Runtime, org: Org, clock: FakeClock, channel: RecordingChannel, chain: dict[str, int]
) -> None:
    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)
    resolve(runtime, incident_id)
    clock.advance(timedelta(minutes=10))

    runtime.dispatcher.drain()

    assert channel.attempts == []
    assert states(runtime) == ["cancelled"] * 3


def test_temporary_failures_back_off_then_fail_and_fall_back(
    settings: Settings, org: Org, clock: FakeClock, runtime: Runtime, chain: dict[str, int]
) -> None:
    channel = RecordingChannel()
    dispatcher = Dispatcher(
        runtime.factory,
        clock,
        settings=replace(settings, notify_max_attempts=3),
        channels=ChannelSet.every_kind(channel),
    )
    channel.fail_address(PUSH, "temporary_failure", "503 from provider")
    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)
    push_id = notifications(runtime)[0].id

    dispatcher.drain()
    row = notification(runtime, push_id)
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.due_at == clock.now() + timedelta(seconds=30)

    clock.advance(29)
    assert dispatcher.drain() == 0
    clock.advance(1)
    dispatcher.drain()
    row = notification(runtime, push_id)
    assert (row.state, row.attempts) == ("pending", 2)
    assert row.due_at == clock.now() + timedelta(seconds=60)

    clock.advance(60)
    dispatcher.drain()  # third and last attempt fails; SMS is paged at once instead of at +2 min

    assert addresses(channel) == [PUSH, PUSH, PUSH, SMS]
    assert states(runtime) == ["failed", "sent", "pending"]
    assert notification(runtime, push_id).attempts == 3
    assert kinds(runtime, incident_id) == [
        "notification.queued",
        "notification.retry",
        "notification.retry",
        "notification.failed",
        "notification.fallback",
        "notification.sent",
    ]
    failed = entries(runtime, incident_id)[3]
    assert "gave up after 3 attempts" in failed.message
    assert failed.data["detail"] == "503 from provider"


def test_backoff_is_capped(
    settings: Settings, org: Org, clock: FakeClock, runtime: Runtime, chain: dict[str, int]
) -> None:
    channel = RecordingChannel()
    dispatcher = Dispatcher(
        runtime.factory,
        clock,
        settings=replace(settings, notify_max_attempts=20),
        channels=ChannelSet.every_kind(channel),
    )
    channel.fail_address(PUSH, "temporary_failure")
    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)
    resolve_after = []
    for _ in range(8):
        dispatcher.drain()
        push = notifications(runtime)[0]
        resolve_after.append((push.due_at - clock.now()).total_seconds())
        clock.set(push.due_at)
    assert resolve_after == [30, 60, 120, 240, 480, 600, 600, 600]


def test_retry_after_from_the_provider_is_honoured(
    runtime: Runtime, org: Org, clock: FakeClock, channel: RecordingChannel, chain: dict[str, int]
) -> None:
    channel.fail_next("temporary_failure", retry_after=300, detail="429 rate limited")
    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)

    runtime.dispatcher.run_once()

    push = notifications(runtime)[0]
    assert push.due_at == clock.now() + timedelta(seconds=300)
    assert "retrying in 300 s" in entries(runtime, incident_id)[-1].message


def test_a_permanent_failure_pages_the_next_method_now(
    runtime: Runtime, org: Org, clock: FakeClock, channel: RecordingChannel, chain: dict[str, int]
) -> None:
    channel.fail_address(PUSH, "permanent_failure", "404 unknown topic")
    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)

    runtime.dispatcher.drain()

    assert addresses(channel) == [PUSH, SMS]
    assert states(runtime) == ["failed", "sent", "pending"]
    sms = notifications(runtime)[1]
    assert sms.sent_at == clock.now()
    fallback = entries(runtime, incident_id)[2]
    assert fallback.kind == "notification.fallback"
    assert "sms" in fallback.message and "push" in fallback.message


def test_fallback_moves_past_methods_that_fail_too(
    runtime: Runtime, org: Org, clock: FakeClock, channel: RecordingChannel, chain: dict[str, int]
) -> None:
    channel.fail_address(PUSH, "permanent_failure")
    channel.fail_address(SMS, "permanent_failure")
    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)

    runtime.dispatcher.drain()

    assert addresses(channel) == [PUSH, SMS, VOICE]
    assert states(runtime) == ["failed", "failed", "sent"]
    # Nothing left to fall back to after the last method: no more attempts.
    channel.fail_address(VOICE, "permanent_failure")
    clock.advance(timedelta(hours=1))
    assert runtime.dispatcher.drain() == 0


def test_fallback_creates_the_next_row_when_rules_changed_since_the_page(
    runtime: Runtime, org: Org, clock: FakeClock, channel: RecordingChannel
) -> None:
    push = add_method(runtime, org.user_id, "push", PUSH)
    add_rule(runtime, org.user_id, push, 0)
    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)
    email = add_method(runtime, org.user_id, "email", "alice@example.com")
    add_rule(runtime, org.user_id, email, 10)
    channel.fail_address(PUSH, "permanent_failure")

    runtime.dispatcher.drain()

    rows = notifications(runtime)
    assert [(r.contact_method_id, r.state) for r in rows] == [(push, "failed"), (email, "sent")]
    assert rows[1].unique_key == f"page:{incident_id}:1:0:{org.user_id}:{email}"
    assert rows[1].message["ack_url"] == rows[0].message["ack_url"]


def test_an_unknown_outcome_is_not_resent_and_falls_back(
    runtime: Runtime, org: Org, clock: FakeClock, channel: RecordingChannel, chain: dict[str, int]
) -> None:
    channel.fail_next("unknown", detail="no answer after the request was sent")
    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)

    runtime.dispatcher.drain()
    clock.advance(timedelta(hours=1))
    runtime.dispatcher.drain()

    push_key = notifications(runtime)[0].unique_key
    assert len(channel.attempts_for(push_key)) == 1
    assert states(runtime) == ["unknown", "sent", "sent"]
    unknown = entries(runtime, incident_id)[1]
    assert unknown.kind == "notification.unknown"
    assert "not resent" in unknown.message
    assert entries(runtime, incident_id)[2].kind == "notification.fallback"


def test_a_channel_that_raises_counts_as_unknown(
    runtime: Runtime, org: Org, channel: RecordingChannel, chain: dict[str, int]
) -> None:
    channel.script(RuntimeError("library bug"))
    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)

    runtime.dispatcher.run_once()

    assert notifications(runtime)[0].state == "unknown"


def test_a_row_left_sending_past_its_deadline_is_swept_to_unknown(
    runtime: Runtime,
    org: Org,
    clock: FakeClock,
    settings: Settings,
    channel: RecordingChannel,
    chain: dict[str, int],
) -> None:
    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)
    # A node claims the push and dies before it records anything.
    dying = Dispatcher(
        runtime.factory, clock, settings=settings, channels=ChannelSet.every_kind(channel)
    )
    [task], settled = dying.claim()
    assert settled == 0
    push = notifications(runtime)[0]
    assert push.state == "sending" and push.lease_owner == "test-node"
    assert push.deadline_at == clock.now() + timedelta(seconds=settings.notify_send_timeout_seconds)

    clock.advance(settings.notify_send_timeout_seconds - 1)
    runtime.dispatcher.drain()
    assert notifications(runtime)[0].state == "sending"
    clock.advance(2)
    runtime.dispatcher.drain()

    assert states(runtime) == ["unknown", "sent", "pending"]
    assert addresses(channel) == [SMS]  # the push was never resent
    unknown = entries(runtime, incident_id)[1]
    assert unknown.kind == "notification.unknown"
    assert "send deadline" in unknown.message
    # The dead node's late outcome is fenced off and changes nothing.
    dying.record(task, DeliveryResult.sent("late"))
    assert notifications(runtime)[0].state == "unknown"


def test_timeline_entries_never_show_secrets(
    runtime: Runtime, org: Org, channel: RecordingChannel
) -> None:
    hook = add_method(
        runtime,
        org.user_id,
        "webhook",
        "https://hooks.example.com/x",
        options={"secret": "signing-secret-0123456789"},
    )
    sms = add_method(runtime, org.user_id, "sms", SMS)
    add_rule(runtime, org.user_id, hook, 0)
    add_rule(runtime, org.user_id, sms, 1)
    channel.fail_address("https://hooks.example.com/x", "permanent_failure", "410 gone")
    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)

    runtime.dispatcher.drain()

    text = repr([(e.message, e.data) for e in entries(runtime, incident_id)])
    assert "signing-secret" not in text and "authtoken" not in text


def test_a_kind_without_a_channel_fails_and_falls_back(
    runtime: Runtime, org: Org, channel: RecordingChannel
) -> None:
    email = add_method(runtime, org.user_id, "email", "alice@example.com")
    push = add_method(runtime, org.user_id, "push", PUSH)
    add_rule(runtime, org.user_id, email, 0)
    add_rule(runtime, org.user_id, push, 5)
    runtime.dispatcher.channels = ChannelSet(
        {"push": channel}, {"email": "email delivery is not configured on this server"}
    )
    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)

    runtime.dispatcher.drain()

    assert states(runtime) == ["failed", "sent"]
    failed = entries(runtime, incident_id)[1]
    assert "email delivery is not configured" in failed.message


def test_a_disabled_method_fails_its_waiting_page_and_falls_back(
    runtime: Runtime, org: Org, channel: RecordingChannel, chain: dict[str, int]
) -> None:
    from tocsin.notify.models import ContactMethod

    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id)
    with runtime.factory() as s, s.begin():
        s.get_one(ContactMethod, chain["push"]).enabled = False

    runtime.dispatcher.drain()

    assert addresses(channel) == [SMS]
    assert "contact method is disabled" in entries(runtime, incident_id)[1].message


def test_outcomes_are_counted_by_channel(
    runtime: Runtime, org: Org, channel: RecordingChannel, chain: dict[str, int]
) -> None:
    def count(kind: str, outcome: str) -> float:
        labels = {"channel": kind, "outcome": outcome}
        return REGISTRY.get_sample_value("tocsin_notifications_total", labels) or 0.0

    before = (count("push", "permanent_failure"), count("sms", "sent"))
    channel.fail_address(PUSH, "permanent_failure")
    page(runtime, open_incident(runtime, org), org.user_id)

    runtime.dispatcher.drain()

    assert count("push", "permanent_failure") == before[0] + 1
    assert count("sms", "sent") == before[1] + 1


def test_the_dispatcher_thread_sends_without_being_driven(
    runtime: Runtime, org: Org, channel: RecordingChannel, chain: dict[str, int]
) -> None:
    runtime.dispatcher.start()
    try:
        page(runtime, open_incident(runtime, org), org.user_id)
        deadline = time.monotonic() + 20
        while not channel.attempts and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        runtime.dispatcher.stop()
    assert addresses(channel) == [PUSH]
    assert states(runtime)[0] == "sent"


def test_a_retriggered_incidents_old_pages_are_cancelled(
    runtime: Runtime, org: Org, clock: FakeClock, channel: RecordingChannel, chain: dict[str, int]
) -> None:
    from tocsin.incidents import service as incidents
    from tocsin.incidents.models import Incident

    incident_id = open_incident(runtime, org)
    page(runtime, incident_id, org.user_id, loop=0)
    runtime.dispatcher.drain()
    acknowledge(runtime, incident_id)
    clock.advance(60)
    with runtime.factory() as s, s.begin():
        incidents.retrigger(
            s,
            s.get_one(Incident, incident_id),
            now=clock.now(),
            actor="system:engine",
            reason="acknowledgement timed out",
        )
        # The new escalation loop pages again.
    page(runtime, incident_id, org.user_id, loop=1)
    clock.advance(timedelta(minutes=10))

    runtime.dispatcher.drain()

    rows = notifications(runtime)
    assert [(r.loop, r.state) for r in rows] == [
        (0, "sent"),
        (0, "cancelled"),
        (0, "cancelled"),
        (1, "sent"),
        (1, "sent"),
        (1, "sent"),
    ]
    assert "re-triggered or reassigned" in (rows[1].detail or "")
