"""Deciding pages: rules with delays, the no-rules fallback, idempotency, rendered messages."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from tests.conftest import Org
from tests.notify.paging_support import (
    add_method,
    add_rule,
    add_user,
    entries,
    notifications,
    open_incident,
    page,
    use_recording,
)
from tocsin.clock import FakeClock
from tocsin.notify import links
from tocsin.notify.models import ContactMethod, Notification
from tocsin.notify.pages import notify_user, send_test
from tocsin.runtime import Runtime
from tocsin.settings import Settings


def test_rules_make_one_row_per_contact_method_due_at_its_delay(
    runtime: Runtime, org: Org, clock: FakeClock
) -> None:
    push = add_method(runtime, org.user_id, "push", "ntfys://ntfy.sh/alice")
    sms = add_method(runtime, org.user_id, "sms", "twilio://AC1:tok@15551234567/15557654321")
    voice = add_method(runtime, org.user_id, "voice", "twilio://AC1:tok@15551234567/15550000000")
    add_rule(runtime, org.user_id, voice, 5)
    add_rule(runtime, org.user_id, push, 0)
    add_rule(runtime, org.user_id, sms, 2)
    add_rule(runtime, org.user_id, sms, 10, urgency="low")
    incident_id = open_incident(runtime, org)

    assert page(runtime, incident_id, org.user_id, level=1, loop=0) == 3

    rows = notifications(runtime)
    now = clock.now()
    assert [(r.contact_method_id, r.due_at - now) for r in rows] == [
        (push, timedelta(0)),
        (sms, timedelta(minutes=2)),
        (voice, timedelta(minutes=5)),
    ]
    assert [r.unique_key for r in rows] == [
        f"page:{incident_id}:1:0:{org.user_id}:{m}" for m in (push, sms, voice)
    ]
    assert {(r.state, r.purpose, r.level, r.loop, r.incident_id) for r in rows} == {
        ("pending", "page", 1, 0, incident_id)
    }
    [queued] = entries(runtime, incident_id)
    assert queued.kind == "notification.queued"
    assert queued.actor == "system:notify"
    assert "alice" in queued.message and "after 2 min" in queued.message


def test_low_urgency_incidents_follow_the_low_urgency_rules(runtime: Runtime, org: Org) -> None:
    push = add_method(runtime, org.user_id, "push", "ntfys://ntfy.sh/alice")
    email = add_method(runtime, org.user_id, "email", "alice@example.com")
    add_rule(runtime, org.user_id, push, 0)
    add_rule(runtime, org.user_id, email, 3, urgency="low")
    incident_id = open_incident(runtime, org, urgency="low")

    assert page(runtime, incident_id, org.user_id) == 1

    [row] = notifications(runtime)
    assert row.contact_method_id == email
    assert row.message["urgency"] == "low"
    assert row.message["subject"].startswith("[low]")


def test_a_user_without_rules_is_paged_on_every_enabled_method_at_once(
    runtime: Runtime, org: Org, clock: FakeClock
) -> None:
    email = add_method(runtime, org.user_id, "email", "alice@example.com")
    add_method(runtime, org.user_id, "sms", "twilio://x", enabled=False)
    hook = add_method(runtime, org.user_id, "webhook", "https://hooks.example.com/alice")
    incident_id = open_incident(runtime, org)

    assert page(runtime, incident_id, org.user_id) == 2

    rows = notifications(runtime)
    assert [r.contact_method_id for r in rows] == [email, hook]
    assert all(r.due_at == clock.now() and r.rule_id is None for r in rows)
    [queued] = entries(runtime, incident_id)
    assert "no notification rules" in queued.message


def test_rules_on_disabled_methods_are_left_out(runtime: Runtime, org: Org) -> None:
    email = add_method(runtime, org.user_id, "email", "alice@example.com")
    sms = add_method(runtime, org.user_id, "sms", "twilio://x", enabled=False)
    add_rule(runtime, org.user_id, sms, 0)
    add_rule(runtime, org.user_id, email, 1)
    incident_id = open_incident(runtime, org)

    assert page(runtime, incident_id, org.user_id) == 1
    assert [r.contact_method_id for r in notifications(runtime)] == [email]


def test_paging_twice_creates_nothing_new(runtime: Runtime, org: Org) -> None:
    email = add_method(runtime, org.user_id, "email", "alice@example.com")
    add_rule(runtime, org.user_id, email, 0)
    incident_id = open_incident(runtime, org)

    assert page(runtime, incident_id, org.user_id) == 1
    assert page(runtime, incident_id, org.user_id) == 0
    assert len(notifications(runtime)) == 1
    assert len(entries(runtime, incident_id)) == 1
    # Another level or loop is another page.
    assert page(runtime, incident_id, org.user_id, level=2) == 1
    assert page(runtime, incident_id, org.user_id, level=1, loop=1) == 1
    assert len(notifications(runtime)) == 3


def test_two_nodes_paging_at_once_create_each_row_once(
    runtime: Runtime, org: Org, settings: Settings, clock: FakeClock
) -> None:
    methods = [
        add_method(runtime, org.user_id, "webhook", f"https://hooks.example.com/{n}")
        for n in range(4)
    ]
    for delay, method in enumerate(methods):
        add_rule(runtime, org.user_id, method, delay)
    incident_ids = [open_incident(runtime, org, f"incident {n}") for n in range(5)]
    other = Runtime(settings, clock=clock)
    try:
        barrier = threading.Barrier(2)
        created: list[int] = []

        def node(rt: Runtime) -> None:
            barrier.wait()
            for incident_id in incident_ids:
                created.append(page(rt, incident_id, org.user_id))

        threads = [threading.Thread(target=node, args=(rt,)) for rt in (runtime, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        other.close()

    assert sum(created) == len(incident_ids) * len(methods)
    rows = notifications(runtime)
    assert len(rows) == len({r.unique_key for r in rows}) == 20
    for incident_id in incident_ids:
        assert [e.kind for e in entries(runtime, incident_id)] == ["notification.queued"]


def test_a_user_who_cannot_be_reached_is_on_the_timeline_once(runtime: Runtime, org: Org) -> None:
    incident_id = open_incident(runtime, org)

    assert page(runtime, incident_id, org.user_id) == 0
    assert page(runtime, incident_id, org.user_id, level=2) == 0

    [skipped] = entries(runtime, incident_id)
    assert skipped.kind == "notification.skipped"
    assert skipped.message == "alice has no enabled contact method and could not be paged"


def test_the_message_is_rendered_with_escaped_alert_text_and_signed_links(
    runtime: Runtime, org: Org, clock: FakeClock
) -> None:
    add_method(runtime, org.user_id, "email", "alice@example.com")
    hostile = '<script>alert("x")</script> & <b>db-1</b>'
    incident_id = open_incident(runtime, org, hostile)

    page(runtime, incident_id, org.user_id)

    [row] = notifications(runtime)
    message = row.message
    assert hostile in message["text"] and hostile in message["subject"]
    assert "<script>" not in message["html"] and "<b>" not in message["html"]
    assert "&lt;script&gt;" in message["html"]
    assert "escalation level 1" in message["text"]
    assert message["incident_url"].endswith(f"/api/v1/incidents/{incident_id}")
    for action in ("ack", "resolve"):
        url = message[f"{action}_url"]
        assert url.startswith(f"{links.settings().base_url}/actions/")
        claim = links.read_link(url.rsplit("/", 1)[1], now=clock.now(), action=action)
        assert (claim.incident_id, claim.user_id) == (incident_id, org.user_id)


def test_observers_are_told_but_get_no_action_links(runtime: Runtime, org: Org) -> None:
    watcher = add_user(runtime, "watcher", role="observer")
    add_method(runtime, watcher, "email", "watcher@example.com")
    incident_id = open_incident(runtime, org)

    page(runtime, incident_id, watcher)

    [row] = notifications(runtime)
    assert row.message["ack_url"] is None and row.message["resolve_url"] is None


def test_deactivated_users_are_not_paged(runtime: Runtime, org: Org) -> None:
    from tocsin.orgs.models import User

    add_method(runtime, org.user_id, "email", "alice@example.com")
    with runtime.factory() as s, s.begin():
        s.get_one(User, org.user_id).active = False
    incident_id = open_incident(runtime, org)

    assert page(runtime, incident_id, org.user_id) == 0
    assert [e.kind for e in entries(runtime, incident_id)] == ["notification.skipped"]


def test_notify_user_sends_once_per_key_through_the_first_step(
    runtime: Runtime, org: Org, clock: FakeClock
) -> None:
    push = add_method(runtime, org.user_id, "push", "ntfys://ntfy.sh/alice")
    email = add_method(runtime, org.user_id, "email", "alice@example.com")
    add_rule(runtime, org.user_id, push, 0, urgency="low")
    add_rule(runtime, org.user_id, email, 5, urgency="low")

    def notice() -> int:
        with runtime.factory() as s, s.begin():
            return notify_user(
                s,
                user_id=org.user_id,
                purpose="handoff",
                unique_key="handoff:primary:2026-01-05T17:00",
                subject="Your on-call shift starts at 17:00",
                text="Primary schedule, from 17:00 to 09:00.",
                now=clock.now(),
            )

    assert notice() == 1
    assert notice() == 0
    [row] = notifications(runtime)
    assert (row.purpose, row.contact_method_id, row.due_at) == ("handoff", push, clock.now())
    assert row.unique_key == f"handoff:primary:2026-01-05T17:00:{push}"

    channel = use_recording(runtime)
    runtime.dispatcher.drain()
    [attempt] = channel.attempts
    assert attempt.message.subject == "Your on-call shift starts at 17:00"
    assert attempt.message.urgency == "low"


def test_a_test_notification_is_sent_and_verifies_the_method(
    runtime: Runtime, org: Org, clock: FakeClock
) -> None:
    method_id = add_method(runtime, org.user_id, "webhook", "https://hooks.example.com/a")
    channel = use_recording(runtime)
    with runtime.factory() as s, s.begin():
        row = send_test(
            s,
            contact_method=s.get_one(ContactMethod, method_id),
            now=clock.now(),
            actor="user:alice",
        )
        test_id = row.id

    runtime.dispatcher.drain()

    [attempt] = channel.attempts
    assert "test notification" in attempt.message.text
    with runtime.factory() as s:
        assert s.get_one(Notification, test_id).state == "sent"
        assert s.get_one(ContactMethod, method_id).verified_at == clock.now()
        assert s.scalar(sa.select(sa.func.count()).select_from(Notification)) == 1
