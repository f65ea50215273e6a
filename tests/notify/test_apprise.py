"""Apprise channel through Apprise's json:// and form:// schemas against a real loopback server."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import parse_qs

import pytest

from tests.notify.loopback import LoopbackServer, Reply, Responder
from tests.notify.messages import ACK_URL, HOSTILE, page, run
from tocsin.notify import AppriseChannel, AppriseConfig, Target, get_channel

Start = Callable[[Responder], LoopbackServer]
LOOPBACK = AppriseConfig(allow_private_addresses=True, timeout=10)


def json_url(server: LoopbackServer, path: str = "/notify", userinfo: str = "") -> str:
    return f"json://{userinfo}127.0.0.1:{server.port}{path}"


def test_json_schema_delivers_title_body_and_links(http_server: Start) -> None:
    server = http_server(lambda request: Reply(200, {"ok": True}))

    result = run(AppriseChannel(LOOPBACK).send(page(), Target("apprise", json_url(server))))

    assert result.outcome == "sent", result.detail
    [request] = server.received
    assert (request.method, request.path) == ("POST", "/notify")
    body = request.json()
    assert body["title"] == "Disk full on db-1"
    assert HOSTILE in body["message"]
    assert f"Acknowledge: {ACK_URL}" in body["message"]
    assert body["type"] == "failure"  # high urgency


def test_low_urgency_is_a_warning(http_server: Start) -> None:
    server = http_server(lambda request: Reply(200))

    run(AppriseChannel(LOOPBACK).send(page(urgency="low"), Target("apprise", json_url(server))))

    assert server.received[0].json()["type"] == "warning"


def test_form_schema_and_sms_kind(http_server: Start) -> None:
    server = http_server(lambda request: Reply(200))
    target = Target("sms", f"form://127.0.0.1:{server.port}/sms")

    result = run(get_channel("sms")(LOOPBACK).send(page(), target))

    assert result.outcome == "sent", result.detail
    form = parse_qs(server.received[0].body.decode())
    assert form["title"] == ["Disk full on db-1"]


@pytest.mark.parametrize("status", [500, 401, 404])
def test_any_failure_is_temporary_because_apprise_gives_no_reason(
    http_server: Start, status: int
) -> None:
    server = http_server(lambda request: Reply(status))

    result = run(AppriseChannel(LOOPBACK).send(page(), Target("apprise", json_url(server))))

    assert result.outcome == "temporary_failure"
    assert "no reason" in result.detail


def test_the_url_never_reaches_results_or_logs(
    http_server: Start, caplog: pytest.LogCaptureFixture
) -> None:
    server = http_server(lambda request: Reply(500))
    target = Target("apprise", json_url(server, "/hook-path-secret", "bob:apprise-pass-654@"))
    caplog.set_level(logging.DEBUG)

    result = run(AppriseChannel(LOOPBACK).send(page(), target))

    assert result.outcome == "temporary_failure"
    assert server.received[0].headers["Authorization"].startswith("Basic ")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in ("apprise-pass-654", "hook-path-secret", target.address):
        assert secret not in result.detail
        assert secret not in logged
        assert secret not in repr(target)


def test_private_address_is_refused_without_sending(http_server: Start) -> None:
    server = http_server(lambda request: Reply(200))

    result = run(AppriseChannel().send(page(), Target("apprise", json_url(server))))

    assert result.outcome == "permanent_failure"
    assert "not a public address" in result.detail
    assert server.received == []


def test_redirects_are_not_followed(http_server: Start) -> None:
    inner = http_server(lambda request: Reply(200))
    server = http_server(lambda request: Reply(302, "", {"Location": f"{inner.url}/x"}))

    result = run(AppriseChannel(LOOPBACK).send(page(), Target("apprise", json_url(server))))

    assert result.outcome == "temporary_failure"
    assert inner.received == []


@pytest.mark.parametrize(
    ("address", "complaint"),
    [
        ("nosuchservice://whatever", "does not recognise"),
        ("not a url", "Apprise URL"),
        ("json://a.example.com/x, json://b.example.com/y", "exactly one"),
        ("tgram://", "does not recognise|cannot use"),
    ],
)
def test_invalid_urls_are_explained(address: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        AppriseChannel().validate_target(Target("apprise", address))


def test_scheme_allow_list() -> None:
    channel = AppriseChannel(AppriseConfig(allowed_schemes=frozenset({"tgram"})))

    with pytest.raises(ValueError, match="not enabled"):
        channel.validate_target(Target("apprise", "json://example.com/hook"))


@pytest.mark.parametrize(
    ("kind", "address"),
    [
        ("sms", "twilio://AC" + "a" * 32 + ":" + "b" * 32 + "@15551234567/15557654321"),
        ("push", "ntfys://ntfy.sh/tocsin-oncall"),
        ("push", "pover://" + "u" * 30 + "@" + "a" * 30),
    ],
)
def test_long_tail_urls_validate(kind: str, address: str) -> None:
    get_channel(kind)().validate_target(Target(kind, address))


def test_malformed_credentials_are_reported_without_quoting_them() -> None:
    target = Target("sms", "twilio://ACbad-sid:tok-777@1555/1666")

    with pytest.raises(ValueError, match="cannot use this twilio") as raised:
        AppriseChannel().validate_target(target)
    assert "tok-777" not in str(raised.value)
