"""Webhook channel against a real HTTP receiver on loopback that verifies signatures itself."""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.notify.certs import CertPaths
from tests.notify.loopback import LoopbackServer, Received, Reply, Responder
from tests.notify.messages import ACK_URL, HOSTILE, RESOLVE_URL, fail_dns, page, run
from tocsin.clock import FakeClock, SystemClock
from tocsin.notify import HttpConfig, Target, WebhookChannel

OLD_SECRET = "old-secret-0123456789abcdef"
NEW_SECRET = "new-secret-fedcba9876543210"
LOOPBACK = HttpConfig(allow_private_addresses=True, read_timeout=5.0)

Start = Callable[..., LoopbackServer]


def receiver_verifies(body: bytes, header: str, secret: str) -> bool:
    """Written the way docs/notifications.md tells receivers to, independent of the sender."""
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    signatures = [p.strip()[3:] for p in header.split(",") if p.strip().startswith("v1=")]
    return any(hmac.compare_digest(expected, s) for s in signatures)


def verifying(secret: str) -> Responder:
    def respond(request: Received) -> Reply:
        header = request.headers.get("X-Tocsin-Signature", "")
        ok = receiver_verifies(request.body, header, secret)
        return Reply(204) if ok else Reply(401, "bad signature")

    return respond


def test_delivers_signed_json_with_stable_id(http_server: Start) -> None:
    clock = FakeClock()
    server = http_server(verifying(NEW_SECRET))
    target = Target("webhook", f"{server.url}/hooks/tocsin", {"secret": NEW_SECRET})

    result = run(WebhookChannel(LOOPBACK, clock).send(page(), target))

    assert result.outcome == "sent", result.detail
    [request] = server.received
    assert (request.method, request.path) == ("POST", "/hooks/tocsin")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Tocsin-Webhook-Id"] == "incident-42/escalation-1/contact-7"
    timestamp = int(clock.now().timestamp())
    assert request.headers["X-Tocsin-Timestamp"] == str(timestamp)
    body = request.json()
    assert body["id"] == "incident-42/escalation-1/contact-7"
    assert body["timestamp"] == timestamp  # inside the signed bytes, so it cannot be replayed
    assert body["text"] == f"Summary: {HOSTILE}\nHost: db-1"  # JSON carries text verbatim
    assert body["links"] == {"ack": ACK_URL, "resolve": RESOLVE_URL}
    assert body["incident"]["id"] == "42"
    assert body["urgency"] == "high"


def test_retries_keep_the_id_and_sign_the_new_body(http_server: Start) -> None:
    clock = FakeClock()
    server = http_server(verifying(NEW_SECRET))
    target = Target("webhook", server.url, {"secret": NEW_SECRET})
    channel = WebhookChannel(LOOPBACK, clock)

    first = run(channel.send(page(), target))
    clock.advance(timedelta(minutes=2))
    second = run(channel.send(page(), target))

    assert first.ok and second.ok
    one, two = server.received
    assert one.headers["X-Tocsin-Webhook-Id"] == two.headers["X-Tocsin-Webhook-Id"]
    assert int(two.headers["X-Tocsin-Timestamp"]) - int(one.headers["X-Tocsin-Timestamp"]) == 120
    assert one.headers["X-Tocsin-Signature"] != two.headers["X-Tocsin-Signature"]


@pytest.mark.parametrize("receiver_secret", [OLD_SECRET, NEW_SECRET])
def test_rotation_sends_one_signature_per_secret(http_server: Start, receiver_secret: str) -> None:
    server = http_server(verifying(receiver_secret))
    target = Target("webhook", server.url, {"secrets": [NEW_SECRET, OLD_SECRET]})

    result = run(WebhookChannel(LOOPBACK).send(page(), target))

    assert result.outcome == "sent", result.detail
    header = server.received[0].headers["X-Tocsin-Signature"]
    assert len(header.split(",")) == 2
    assert all(part.startswith("v1=") for part in header.split(","))


def test_wrong_secret_is_rejected_by_the_receiver_as_permanent(http_server: Start) -> None:
    server = http_server(verifying("receiver-expects-another-secret"))
    target = Target("webhook", server.url, {"secret": NEW_SECRET})

    result = run(WebhookChannel(LOOPBACK).send(page(), target))

    assert result.outcome == "permanent_failure"
    assert "401" in result.detail
    assert NEW_SECRET not in result.detail


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (500, "temporary_failure"),
        (503, "temporary_failure"),
        (429, "temporary_failure"),
        (410, "permanent_failure"),
        (404, "permanent_failure"),
        (400, "permanent_failure"),
    ],
)
def test_status_classification(http_server: Start, status: int, outcome: str) -> None:
    server = http_server(lambda _request: Reply(status, "nope", {"Retry-After": "7"}))

    result = run(WebhookChannel(LOOPBACK).send(page(), Target("webhook", server.url)))

    assert result.outcome == outcome
    assert str(status) in result.detail
    if status in (429, 503):
        assert result.retry_after == 7.0


def test_redirect_is_not_followed(http_server: Start) -> None:
    inner = http_server(lambda _request: Reply(204))
    server = http_server(lambda _request: Reply(307, "", {"Location": f"{inner.url}/x"}))

    result = run(WebhookChannel(LOOPBACK).send(page(), Target("webhook", server.url)))

    assert result.outcome == "permanent_failure"
    assert "redirect" in result.detail
    assert inner.received == []


def test_https_receiver_is_verified_against_the_url_host_name(
    http_server: Start, certs: CertPaths
) -> None:
    server = http_server(lambda _request: Reply(204), certs.server_context())
    url = f"https://localhost:{server.port}/hook"  # the certificate names localhost
    trusting = HttpConfig(allow_private_addresses=True, verify_tls=str(certs.ca_file))

    result = run(WebhookChannel(trusting).send(page(), Target("webhook", url)))

    assert result.outcome == "sent", result.detail
    assert len(server.received) == 1


def test_untrusted_certificate_is_temporary_and_nothing_is_sent(
    http_server: Start, certs: CertPaths
) -> None:
    server = http_server(lambda _request: Reply(204), certs.server_context())
    url = f"https://localhost:{server.port}/hook"

    result = run(WebhookChannel(LOOPBACK).send(page(), Target("webhook", url)))

    assert result.outcome == "temporary_failure"
    assert server.received == []


def test_slow_answer_after_the_request_was_sent_is_unknown(http_server: Start) -> None:
    release = threading.Event()
    server = http_server(lambda _request: Reply(200, hold=release))
    impatient = HttpConfig(allow_private_addresses=True, read_timeout=0.3)

    result = run(WebhookChannel(impatient).send(page(), Target("webhook", server.url)))
    release.set()

    assert result.outcome == "unknown"
    # The receiver did get the whole request: this is why the outcome is not "temporary".
    [request] = server.received
    assert request.json()["id"] == "incident-42/escalation-1/contact-7"


def test_connection_refused_is_temporary(http_server: Start) -> None:
    server = http_server(lambda _request: Reply(204))
    url = server.url
    server.stop()

    result = run(WebhookChannel(LOOPBACK).send(page(), Target("webhook", url)))

    assert result.outcome == "temporary_failure"
    assert "connect" in result.detail


def test_unresolvable_host_is_temporary(monkeypatch: pytest.MonkeyPatch) -> None:
    fail_dns(monkeypatch)
    target = Target("webhook", "https://no-such-host.invalid/hook")

    result = run(WebhookChannel(HttpConfig()).send(page(), target))

    assert result.outcome == "temporary_failure"
    assert "resolve" in result.detail


def test_private_address_is_refused_without_sending(http_server: Start) -> None:
    server = http_server(lambda _request: Reply(204))
    localhost_url = f"http://localhost:{server.port}/hook"

    for url in (server.url, localhost_url):
        result = run(WebhookChannel(HttpConfig()).send(page(), Target("webhook", url)))
        assert result.outcome == "permanent_failure"
        assert "not a public address" in result.detail
    assert server.received == []


def test_credentials_in_the_url_and_headers_stay_out_of_results(http_server: Start) -> None:
    server = http_server(lambda _request: Reply(401, "who are you"))
    url = f"http://hookuser:url-password-123@127.0.0.1:{server.port}/hook"
    target = Target("webhook", url, {"headers": {"X-Api-Key": "header-token-456"}})

    result = run(WebhookChannel(LOOPBACK).send(page(), target))

    assert result.outcome == "permanent_failure"
    assert server.received[0].headers["X-Api-Key"] == "header-token-456"
    assert server.received[0].headers["Authorization"].startswith("Basic ")
    for secret in ("url-password-123", "header-token-456"):
        assert secret not in result.detail
        assert secret not in repr(target)


@pytest.mark.parametrize(
    ("address", "options", "complaint"),
    [
        ("ftp://example.com/hook", {}, "http:// or https://"),
        ("javascript:alert(1)", {}, "http:// or https://"),
        ("https://", {}, "no host"),
        ("https://example.com/a b", {}, "whitespace"),
        ("https://example.com/hook", {"secret": "short"}, "16+"),
        ("https://example.com/hook", {"secrets": []}, "non-empty list"),
        ("https://example.com/hook", {"headers": {"X-Tocsin-Signature": "x"}}, "set by Tocsin"),
        ("https://example.com/hook", {"headers": {"X-Evil": "a\r\nInjected: 1"}}, "printable"),
        ("https://example.com/hook", {"sekret": NEW_SECRET}, "unknown option"),
    ],
)
def test_invalid_targets_are_explained(
    address: str, options: dict[str, object], complaint: str
) -> None:
    channel = WebhookChannel(HttpConfig())
    target = Target("webhook", address, options)

    with pytest.raises(ValueError, match=re.escape(complaint)):
        channel.validate_target(target)
    result = run(channel.send(page(), target))
    assert result.outcome == "permanent_failure"
    assert complaint in result.detail


def test_non_ascii_idempotency_key_becomes_a_stable_header_safe_id(http_server: Start) -> None:
    server = http_server(lambda _request: Reply(204))
    message = page(idempotency_key="incident-42/контакт\r\n7")
    channel = WebhookChannel(LOOPBACK)

    run(channel.send(message, Target("webhook", server.url)))
    run(channel.send(message, Target("webhook", server.url)))

    ids = {r.headers["X-Tocsin-Webhook-Id"] for r in server.received}
    assert len(ids) == 1
    assert ids.pop().startswith("sha256:")


def documented_verifier() -> Callable[[bytes, str], Any]:
    """The receiver example from docs/notifications.md, run as written."""
    doc = (Path(__file__).parents[2] / "docs" / "notifications.md").read_text()
    section = doc.split("#### Verifying a webhook", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/notifications.md", "exec"), namespace)
    verifier: Callable[[bytes, str], Any] = namespace["verify_tocsin_webhook"]
    return verifier


def test_the_documented_receiver_accepts_real_pages_and_rejects_tampering(
    http_server: Start,
) -> None:
    verify_documented = documented_verifier()
    verdicts: list[Any] = []

    def respond(request: Received) -> Reply:
        header = request.headers.get("X-Tocsin-Signature", "")
        verdicts.append(verify_documented(request.body, header))
        verdicts.append(verify_documented(request.body.replace(b"db-1", b"db-2"), header))
        return Reply(204)

    server = http_server(respond)
    target = Target("webhook", server.url, {"secrets": [NEW_SECRET, OLD_SECRET]})

    result = run(WebhookChannel(LOOPBACK, SystemClock()).send(page(), target))

    assert result.ok
    accepted, tampered = verdicts
    assert accepted is not None and accepted["id"] == "incident-42/escalation-1/contact-7"
    assert tampered is None
