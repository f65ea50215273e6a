"""Slack channel through slack_sdk against a fake Slack on loopback.

The fake checks the documented request shapes: chat.postMessage is a POST to /api/chat.postMessage
with `Authorization: Bearer <token>` and a JSON body (`application/json; charset=utf-8`) holding
channel, text and blocks; it answers `{"ok": true, "channel", "ts"}` or `{"ok": false, "error"}`,
and HTTP 429 with Retry-After when rate limited. Incoming webhooks take the same JSON and answer
a plain-text "ok" or an HTTP error with a short reason.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tests.notify.loopback import LoopbackServer, Received, Reply, Responder
from tests.notify.messages import ACK_URL, INCIDENT_URL, RESOLVE_URL, page, run
from tocsin.notify import SlackChannel, SlackConfig, Target

Start = Callable[[Responder], LoopbackServer]
BOT_TOKEN = "xoxb-1111-2222-bottoken"
WEBHOOK_PATH = "/services/T000/B000/webhooksecretXYZ"


def fake_slack_api(answer: Callable[[dict[str, Any]], Reply]) -> Responder:
    """Checks the request the way Slack would before answering."""

    def respond(request: Received) -> Reply:
        if request.method != "POST" or request.path != "/api/chat.postMessage":
            return Reply(404, {"ok": False, "error": "unknown_method"})
        if request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        content_type = (request.headers.get("Content-Type") or "").replace(" ", "").lower()
        if content_type != "application/json;charset=utf-8":
            return Reply(200, {"ok": False, "error": "invalid_post_type"})
        body = json.loads(request.body)
        if not body.get("channel") or not (body.get("text") or body.get("blocks")):
            return Reply(200, {"ok": False, "error": "invalid_arguments"})
        return answer(body)

    return respond


def posted(channel: str = "C0123ABCD") -> Callable[[dict[str, Any]], Reply]:
    return lambda body: Reply(200, {"ok": True, "channel": channel, "ts": "1503435956.000247"})


def api_channel(server: LoopbackServer, **overrides: Any) -> SlackChannel:
    settings: dict[str, Any] = {"bot_token": BOT_TOKEN, "api_base_url": f"{server.url}/api/"}
    settings.update(overrides)
    return SlackChannel(SlackConfig(**settings))


def webhook_channel(server: LoopbackServer, **overrides: Any) -> SlackChannel:
    settings: dict[str, Any] = {"webhook_hosts": ("127.0.0.1",), "allow_private_addresses": True}
    settings.update(overrides)
    return SlackChannel(SlackConfig(**settings))


def buttons(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [actions] = [b for b in body["blocks"] if b["type"] == "actions"]
    return {e["action_id"]: e for e in actions["elements"]}


def test_post_message_with_block_kit_buttons(http_server: Start) -> None:
    server = http_server(fake_slack_api(posted()))

    result = run(api_channel(server).send(page(), Target("slack", "C0123ABCD")))

    assert result.outcome == "sent", result.detail
    assert result.provider_message_id == "C0123ABCD/1503435956.000247"
    body = server.received[0].json()
    assert body["channel"] == "C0123ABCD"
    assert body["text"] == "Disk full on db-1"
    header, section, context = body["blocks"][:3]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "Disk full on db-1"}}
    assert section["text"]["type"] == "mrkdwn"
    # Escaped: the alert text cannot ping the channel or smuggle in its own link.
    assert "<!channel>" not in section["text"]["text"]
    assert "&lt;!channel&gt;" in section["text"]["text"]
    assert "&lt;http://evil.test|click&gt;" in section["text"]["text"]
    assert "high" in context["elements"][0]["text"]
    found = buttons(body)
    assert found["tocsin_ack"]["url"] == ACK_URL
    assert found["tocsin_ack"]["style"] == "primary"
    assert found["tocsin_resolve"]["url"] == RESOLVE_URL
    assert found["tocsin_incident"]["url"] == INCIDENT_URL
    assert found["tocsin_ack"]["text"] == {"type": "plain_text", "text": "Acknowledge"}


def test_target_token_overrides_the_default(http_server: Start) -> None:
    server = http_server(fake_slack_api(posted()))
    channel = api_channel(server, bot_token="xoxb-default-is-wrong")

    result = run(channel.send(page(), Target("slack", "#alerts", {"bot_token": BOT_TOKEN})))

    assert result.ok
    assert server.received[0].json()["channel"] == "#alerts"


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        ("channel_not_found", "permanent_failure"),
        ("not_in_channel", "permanent_failure"),
        ("is_archived", "permanent_failure"),
        ("invalid_blocks", "permanent_failure"),
        ("service_unavailable", "temporary_failure"),
        ("fatal_error", "unknown"),
    ],
)
def test_api_errors(http_server: Start, error: str, outcome: str) -> None:
    server = http_server(fake_slack_api(lambda body: Reply(200, {"ok": False, "error": error})))

    result = run(api_channel(server).send(page(), Target("slack", "C0123ABCD")))

    assert result.outcome == outcome
    assert error in result.detail


def test_bad_token_is_permanent_and_not_echoed(http_server: Start) -> None:
    server = http_server(fake_slack_api(posted()))
    channel = api_channel(server, bot_token="xoxb-revoked-token-999")

    result = run(channel.send(page(), Target("slack", "C0123ABCD")))

    assert result.outcome == "permanent_failure"
    assert "invalid_auth" in result.detail
    assert "xoxb-revoked-token-999" not in result.detail


def test_rate_limit_is_temporary_with_retry_after(http_server: Start) -> None:
    limited = Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"})
    server = http_server(fake_slack_api(lambda body: limited))

    result = run(api_channel(server).send(page(), Target("slack", "C0123ABCD")))

    assert result.outcome == "temporary_failure"
    assert result.retry_after == 30.0
    assert len(server.received) == 1  # slack_sdk's own retry is off: the outbox owns retries


def test_server_error_is_temporary(http_server: Start) -> None:
    server = http_server(fake_slack_api(lambda body: Reply(503, "<html>upstream down</html>")))

    result = run(api_channel(server).send(page(), Target("slack", "C0123ABCD")))

    assert result.outcome == "temporary_failure"


def test_no_answer_after_sending_is_unknown(http_server: Start) -> None:
    release = threading.Event()
    server = http_server(fake_slack_api(lambda body: Reply(200, {"ok": True}, hold=release)))

    result = run(api_channel(server, timeout=1).send(page(), Target("slack", "C0123ABCD")))
    release.set()

    assert result.outcome == "unknown"
    assert len(server.received) == 1


def test_unreachable_api_is_temporary(http_server: Start) -> None:
    server = http_server(fake_slack_api(posted()))
    channel = api_channel(server)
    server.stop()

    result = run(channel.send(page(), Target("slack", "C0123ABCD")))

    assert result.outcome == "temporary_failure"


def test_incoming_webhook(http_server: Start) -> None:
    server = http_server(lambda request: Reply(200, "ok"))
    target = Target("slack", f"{server.url}{WEBHOOK_PATH}")

    result = run(webhook_channel(server).send(page(), target))

    assert result.outcome == "sent", result.detail
    [request] = server.received
    assert (request.method, request.path) == ("POST", WEBHOOK_PATH)
    body = request.json()
    assert body["text"] == "Disk full on db-1"
    assert buttons(body)["tocsin_resolve"]["url"] == RESOLVE_URL


@pytest.mark.parametrize(
    ("status", "reason", "outcome"),
    [
        (400, "invalid_payload", "permanent_failure"),
        (403, "action_prohibited", "permanent_failure"),
        (404, "channel_not_found", "permanent_failure"),
        (410, "channel_is_archived", "permanent_failure"),
        (500, "rollup_error", "temporary_failure"),
        (429, "rate_limited", "temporary_failure"),
    ],
)
def test_incoming_webhook_errors(
    http_server: Start, status: int, reason: str, outcome: str
) -> None:
    server = http_server(lambda request: Reply(status, reason, {"Retry-After": "5"}))
    target = Target("slack", f"{server.url}{WEBHOOK_PATH}")

    result = run(webhook_channel(server).send(page(), target))

    assert result.outcome == outcome
    assert reason in result.detail
    assert "webhooksecretXYZ" not in result.detail  # the URL is the credential


def test_incoming_webhook_on_a_private_address_is_refused(http_server: Start) -> None:
    server = http_server(lambda request: Reply(200, "ok"))
    channel = webhook_channel(server, allow_private_addresses=False)

    result = run(channel.send(page(), Target("slack", f"https://127.0.0.1:{server.port}/x")))

    assert result.outcome == "permanent_failure"
    assert "not a public address" in result.detail
    assert server.received == []


@pytest.mark.parametrize(
    ("address", "options", "complaint"),
    [
        ("https://evil.example.com/services/T/B/X", {}, "hooks.slack.com"),
        ("http://hooks.slack.com/services/T/B/X", {}, "https"),
        ("https://hooks.slack.com/services/T/B/X", {"bot_token": "xoxb-1"}, "no bot_token"),
        ("alerts channel", {}, "channel id"),
        ("C0123ABCD", {}, "bot token"),
        ("C0123ABCD", {"token": "xoxb-1"}, "unknown option"),
    ],
)
def test_invalid_targets_are_explained(
    address: str, options: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        SlackChannel(SlackConfig()).validate_target(Target("slack", address, options))
