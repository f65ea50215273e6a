"""Matrix channel against a real Synapse homeserver (see tests/notify/synapse.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from tests.notify.messages import ACK_URL, RESOLVE_URL, page, run
from tests.notify.synapse import Homeserver, MatrixUser
from tocsin.notify import HttpConfig, MatrixChannel, MatrixConfig, Target

LOOPBACK = HttpConfig(allow_private_addresses=True)


@dataclass(frozen=True)
class Room:
    room_id: str
    bot: MatrixUser
    responder: MatrixUser


@pytest.fixture
def room(synapse: Homeserver) -> Room:
    """A fresh private room: the paging bot and an on-call responder who joined it."""
    suffix = uuid.uuid4().hex[:8]
    bot, responder = synapse.register(f"bot{suffix}"), synapse.register(f"oncall{suffix}")
    room_id = synapse.create_room(bot, invite=[responder])
    synapse.join(responder, room_id)
    return Room(room_id, bot, responder)


def channel_for(synapse: Homeserver, token: str) -> MatrixChannel:
    return MatrixChannel(MatrixConfig(synapse.url, token, LOOPBACK))


def test_page_arrives_as_formatted_message(synapse: Homeserver, room: Room) -> None:
    channel = channel_for(synapse, room.bot.access_token)

    result = run(channel.send(page(), Target("matrix", room.room_id)))

    assert result.outcome == "sent", result.detail
    [event] = synapse.messages(room.responder, room.room_id)
    assert event["event_id"] == result.provider_message_id
    assert event["sender"] == room.bot.user_id
    content = event["content"]
    assert content["msgtype"] == "m.text"
    assert content["format"] == "org.matrix.custom.html"
    assert content["body"].startswith("Disk full on db-1\n")
    assert '<script>alert("pwned")</script>' in content["body"]
    assert f"Acknowledge: {ACK_URL}" in content["body"]
    html = content["formatted_body"]
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert f'href="{RESOLVE_URL}"' in html


def test_retry_with_the_same_key_is_deduplicated_by_the_homeserver(
    synapse: Homeserver, room: Room
) -> None:
    channel = channel_for(synapse, room.bot.access_token)
    target = Target("matrix", room.room_id)

    first = run(channel.send(page(), target))
    retried = run(channel.send(page(), target))
    other = run(channel.send(page(idempotency_key="another-page"), target))

    assert first.ok and retried.ok and other.ok
    assert retried.provider_message_id == first.provider_message_id
    events = synapse.messages(room.responder, room.room_id)
    assert [e["event_id"] for e in events] == [first.provider_message_id, other.provider_message_id]


def test_target_options_override_the_default_account(synapse: Homeserver, room: Room) -> None:
    channel = MatrixChannel(MatrixConfig(http=LOOPBACK))
    target = Target(
        "matrix",
        room.room_id,
        {"homeserver_url": synapse.url, "access_token": room.bot.access_token},
    )

    result = run(channel.send(page(), target))

    assert result.outcome == "sent", result.detail


def test_bot_outside_the_room_is_permanent(synapse: Homeserver, room: Room) -> None:
    outsider = synapse.register(f"outsider{uuid.uuid4().hex[:8]}")
    channel = channel_for(synapse, outsider.access_token)

    result = run(channel.send(page(), Target("matrix", room.room_id)))

    assert result.outcome == "permanent_failure"
    assert "403" in result.detail and "M_FORBIDDEN" in result.detail
    assert synapse.messages(room.responder, room.room_id) == []


def test_bad_token_is_permanent_and_not_echoed(synapse: Homeserver, room: Room) -> None:
    channel = channel_for(synapse, "syt_not_a_real_token_4242")

    result = run(channel.send(page(), Target("matrix", room.room_id)))

    assert result.outcome == "permanent_failure"
    assert "401" in result.detail and "M_UNKNOWN_TOKEN" in result.detail
    assert "syt_not_a_real_token_4242" not in result.detail


def test_homeserver_on_a_private_address_is_refused_by_default(synapse: Homeserver) -> None:
    channel = MatrixChannel(MatrixConfig(synapse.url, "token"))

    result = run(channel.send(page(), Target("matrix", "!room:tocsin.test")))

    assert result.outcome == "permanent_failure"
    assert "not a public address" in result.detail


@pytest.mark.parametrize(
    ("address", "options", "complaint"),
    [
        ("#alerts:example.org", {}, "room id"),
        ("!has space:example.org", {}, "room id"),
        ("!a/b:example.org", {}, "room id"),
        ("!room:example.org", {"homeserver_url": "ftp://example.org"}, "http"),
        ("!room:example.org", {"room": "x"}, "unknown option"),
    ],
)
def test_invalid_targets_are_explained(
    address: str, options: dict[str, str], complaint: str
) -> None:
    channel = MatrixChannel(MatrixConfig("https://matrix.example.org", "token"))

    with pytest.raises(ValueError, match=complaint):
        channel.validate_target(Target("matrix", address, options))


def test_missing_account_is_explained() -> None:
    with pytest.raises(ValueError, match="homeserver"):
        MatrixChannel().validate_target(Target("matrix", "!room:example.org"))
    with pytest.raises(ValueError, match="access token"):
        MatrixChannel(MatrixConfig("https://m.example.org")).validate_target(
            Target("matrix", "!room:example.org")
        )
