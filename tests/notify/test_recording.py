"""The in-memory channel that tests of the outbox will use in place of real providers."""

from __future__ import annotations

import pytest

from tests.notify.messages import page, run
from tocsin.notify import DeliveryResult, RecordingChannel, Target

ALICE = Target("email", "alice@example.com")
BOB = Target("sms", "twilio://sid:token@1555/1666")


def test_records_every_attempt_and_answers_sent() -> None:
    channel = RecordingChannel()

    result = run(channel.send(page(), ALICE))

    assert result.ok and result.provider_message_id == "recording-1"
    [attempt] = channel.attempts
    assert attempt.message == page() and attempt.target == ALICE and attempt.result == result


def test_scripted_results_come_in_order_then_success_resumes() -> None:
    channel = RecordingChannel()
    channel.fail_next("temporary_failure", times=2, retry_after=30)
    channel.script(DeliveryResult.unknown("no answer"))

    outcomes = [run(channel.send(page(), ALICE)).outcome for _ in range(4)]

    assert outcomes == ["temporary_failure", "temporary_failure", "unknown", "sent"]
    assert channel.attempts[0].result.retry_after == 30
    assert len(channel.attempts_for(page().idempotency_key)) == 4


def test_a_failing_address_fails_until_healed() -> None:
    channel = RecordingChannel()
    channel.fail_address(BOB.address, "permanent_failure")

    assert run(channel.send(page(), BOB)).outcome == "permanent_failure"
    assert run(channel.send(page(), ALICE)).ok
    channel.heal_address(BOB.address)
    assert run(channel.send(page(), BOB)).ok


def test_an_exception_becomes_unknown_like_a_real_channel_bug() -> None:
    channel = RecordingChannel()
    channel.script(RuntimeError("provider library blew up"))

    result = run(channel.send(page(), ALICE))

    assert result.outcome == "unknown"
    assert "RuntimeError" in result.detail
    assert len(channel.attempts) == 1


def test_delivered_once_counts_a_retried_page_once() -> None:
    channel = RecordingChannel()
    for _ in range(3):
        run(channel.send(page(), ALICE))
    run(channel.send(page(idempotency_key="other"), ALICE))

    assert channel.delivered_once() == [
        (page().idempotency_key, ALICE.address),
        ("other", ALICE.address),
    ]
    assert len(channel.sent) == 4


def test_kinds_can_be_limited_and_targets_are_validated() -> None:
    channel = RecordingChannel(kinds=["email"])

    assert run(channel.send(page(), BOB)).outcome == "permanent_failure"
    assert run(channel.send(page(), Target("email", " "))).outcome == "permanent_failure"
    assert channel.attempts == []


@pytest.mark.parametrize("outcome", ["sent", "temporary_failure", "permanent_failure", "unknown"])
def test_every_outcome_can_be_scripted(outcome: str) -> None:
    channel = RecordingChannel()
    channel.script(DeliveryResult(outcome, "scripted"))  # type: ignore[arg-type]

    assert run(channel.send(page(), ALICE)).outcome == outcome
