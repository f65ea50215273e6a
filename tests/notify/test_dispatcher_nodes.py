"""Two nodes dispatching one outbox send every notification exactly once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import replace

from tests.conftest import Org
from tests.notify.paging_support import add_method, add_rule, notifications, open_incident, page
from tocsin.clock import FakeClock
from tocsin.notify.channels.base import DeliveryResult, Message, Target
from tocsin.notify.channels.recording import RecordingChannel
from tocsin.notify.channels_config import ChannelSet
from tocsin.notify.dispatcher import Dispatcher
from tocsin.runtime import Runtime
from tocsin.settings import Settings


class MeetingChannel(RecordingChannel):
    """Holds each node's first send until the other node is sending too (or 5 s passed), so
    the two nodes really claim and send at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: set[str] = set()
        self.both = threading.Event()

    async def deliver(self, message: Message, target: Target) -> DeliveryResult:
        node = threading.current_thread().name
        if node not in self.nodes:
            self.nodes.add(node)
            if len(self.nodes) >= 2:
                self.both.set()
            await asyncio.to_thread(self.both.wait, 5)
        return await super().deliver(message, target)


def test_two_runtimes_send_each_notification_once(
    runtime: Runtime, org: Org, clock: FakeClock, settings: Settings
) -> None:
    email = add_method(runtime, org.user_id, "email", "alice@example.com")
    hook = add_method(runtime, org.user_id, "webhook", "https://hooks.example.com/alice")
    add_rule(runtime, org.user_id, email, 0)
    add_rule(runtime, org.user_id, hook, 0)
    for n in range(30):
        page(runtime, open_incident(runtime, org, f"incident {n}"), org.user_id)
    channel = MeetingChannel()
    node_settings = replace(settings, notify_batch=4, digest_max_pages=0)
    other = Runtime(replace(settings, node_name="other-node"), clock=clock)
    try:
        dispatchers = [
            Dispatcher(
                rt.factory,
                clock,
                settings=replace(node_settings, node_name=rt.settings.node_name),
                channels=ChannelSet.every_kind(channel),
            )
            for rt in (runtime, other)
        ]
        threads = [
            threading.Thread(target=d.drain, name=f"node-{n}") for n, d in enumerate(dispatchers)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 120
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for dispatcher in dispatchers:
            dispatcher.stop()
    finally:
        other.close()

    rows = notifications(runtime)
    assert len(rows) == 60
    attempts = Counter(a.message.idempotency_key for a in channel.attempts)
    assert sorted(attempts) == sorted(r.unique_key for r in rows)
    assert set(attempts.values()) == {1}
    assert {r.state for r in rows} == {"sent"}
    assert {r.lease_owner for r in rows} == {"test-node", "other-node"}


def test_two_runtimes_fall_back_and_throttle_without_getting_in_each_others_way(
    runtime: Runtime, org: Org, clock: FakeClock, settings: Settings
) -> None:
    push = add_method(runtime, org.user_id, "push", "ntfys://ntfy.sh/broken")
    email = add_method(runtime, org.user_id, "email", "alice@example.com")
    add_rule(runtime, org.user_id, push, 0)
    add_rule(runtime, org.user_id, email, 0)
    hook = add_method(runtime, org.user_id, "webhook", "https://hooks.example.com/a")
    add_rule(runtime, org.user_id, hook, 1)
    for n in range(20):
        page(runtime, open_incident(runtime, org, f"incident {n}"), org.user_id)
    channel = MeetingChannel()
    channel.fail_address("ntfys://ntfy.sh/broken", "permanent_failure")
    # Throttling on (every first attempt takes the user's lock) but not limiting.
    node_settings = replace(settings, notify_batch=3, digest_max_pages=100)
    other = Runtime(replace(settings, node_name="other-node"), clock=clock)
    errors: list[BaseException] = []
    try:
        dispatchers = [
            Dispatcher(
                rt.factory,
                clock,
                settings=replace(node_settings, node_name=rt.settings.node_name),
                channels=ChannelSet.every_kind(channel),
            )
            for rt in (runtime, other)
        ]

        def run(dispatcher: Dispatcher) -> None:
            try:
                dispatcher.drain()
            except BaseException as exc:  # a deadlock would surface here
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=(d,), name=f"node-{n}")
            for n, d in enumerate(dispatchers)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 120
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for dispatcher in dispatchers:
            dispatcher.stop()
    finally:
        other.close()

    assert errors == []
    by_method: dict[int | None, list[str]] = {}
    for row in notifications(runtime):
        by_method.setdefault(row.contact_method_id, []).append(row.state)
    assert by_method[push] == ["failed"] * 20
    assert by_method[email] == ["sent"] * 20
    # The webhook rule comes after the email rule, which did not fail: it waits for its delay.
    assert by_method[hook] == ["pending"] * 20
    attempts = Counter(a.message.idempotency_key for a in channel.attempts)
    assert set(attempts.values()) == {1}
