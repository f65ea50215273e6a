"""The channel interface: messages, targets, results, the registry and the outbound URL policy."""

from __future__ import annotations

import ipaddress
from typing import ClassVar

import pytest

from tests.notify.messages import fail_dns, page, run
from tocsin.notify import (
    AppriseChannel,
    DeliveryResult,
    EmailChannel,
    EmailConfig,
    MatrixChannel,
    Message,
    OutboundLookupFailed,
    SlackChannel,
    Target,
    UnsafeOutboundUrl,
    WebhookChannel,
    check_outbound_url,
    get_channel,
    register,
    registered_kinds,
)
from tocsin.notify.channels.base import Channel, scrub
from tocsin.notify.channels.outbound import is_public_address


def test_every_kind_has_a_channel() -> None:
    assert registered_kinds() == [
        "apprise", "email", "matrix", "push", "slack", "sms", "voice", "webhook",
    ]  # fmt: skip
    assert get_channel("email") is EmailChannel
    assert get_channel("webhook") is WebhookChannel
    assert get_channel("slack") is SlackChannel
    assert get_channel("matrix") is MatrixChannel
    for kind in ("apprise", "sms", "voice", "push"):
        assert get_channel(kind) is AppriseChannel


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="registered kinds: apprise, email"):
        get_channel("pigeon")


def test_a_kind_cannot_be_taken_twice() -> None:
    class Impostor(Channel):
        kind: ClassVar[str] = "email"

        def validate_target(self, target: Target) -> None:
            return None

        async def deliver(self, message: Message, target: Target) -> DeliveryResult:
            return DeliveryResult.sent("never")

    with pytest.raises(ValueError, match="already served by EmailChannel"):
        register(Impostor)
    assert get_channel("email") is EmailChannel


def test_message_needs_a_key_and_a_known_urgency() -> None:
    with pytest.raises(ValueError, match="idempotency_key"):
        page(idempotency_key=" ")
    with pytest.raises(ValueError, match="urgency"):
        page(urgency="critical")


def test_target_kind_must_be_known() -> None:
    with pytest.raises(ValueError, match="unknown target kind 'fax'"):
        Target("fax", "+15551234567")  # type: ignore[arg-type]


def test_result_outcome_must_be_known() -> None:
    with pytest.raises(ValueError, match="unknown outcome"):
        DeliveryResult("maybe", "?")  # type: ignore[arg-type]


def test_target_repr_hides_credentials() -> None:
    apprise = Target("sms", "twilio://ACsid:authtoken123@15551234567/15557654321")
    hook = Target(
        "webhook", "https://user:pw-555@hooks.example.com:8443/x?key=k-666", {"secret": "s"}
    )

    assert "authtoken123" not in repr(apprise)
    assert repr(apprise) == "Target(kind='sms', address='twilio://…', options=[])"
    assert "pw-555" not in repr(hook) and "k-666" not in repr(hook)
    assert "hooks.example.com:8443" in repr(hook)


def test_scrub_removes_known_secrets_and_token_patterns() -> None:
    text = scrub("failed for s3cr3t-value with Bearer abc.def and token=xyz", ["s3cr3t-value"])
    assert "s3cr3t-value" not in text and "abc.def" not in text and "xyz" not in text


def test_a_channel_for_another_kind_refuses_the_target() -> None:
    result = run(EmailChannel(EmailConfig()).send(page(), Target("slack", "C0123")))
    assert result.outcome == "permanent_failure"
    assert "cannot deliver to a slack target" in result.detail


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
        "fc00::1", "ff02::1", "::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::",
    ],
)  # fmt: skip
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.8/",
        "http://2130706433/",  # 127.0.0.1 written as one number
        "http://0x7f.1/",
    ],
)
def test_check_outbound_url_refuses_internal_destinations(url: str) -> None:
    with pytest.raises(UnsafeOutboundUrl, match="not a public address"):
        run(check_outbound_url(url, allow_private=False))


def test_check_outbound_url_allows_them_when_told_to() -> None:
    addresses = run(check_outbound_url("http://127.0.0.1:9/", allow_private=True))
    assert addresses == [ipaddress.ip_address("127.0.0.1")]


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://127.0.0.1:25/", "http:// or https://"),
        ("http:///path", "no host"),
        ("http://example.com:99999/", "invalid port"),
        ("http://exa mple.com/", "whitespace"),
    ],
)
def test_check_outbound_url_rejects_malformed_urls(url: str, complaint: str) -> None:
    with pytest.raises(UnsafeOutboundUrl, match=complaint):
        run(check_outbound_url(url, allow_private=True))


def test_unresolvable_name_is_a_lookup_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    fail_dns(monkeypatch)
    with pytest.raises(OutboundLookupFailed, match="cannot resolve"):
        run(check_outbound_url("https://no-such-host.invalid/", allow_private=False))
