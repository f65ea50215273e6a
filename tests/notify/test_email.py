"""Email channel against a real SMTP server (aiosmtpd) on loopback, plain, STARTTLS and TLS."""

from __future__ import annotations

import threading
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from tests.notify.certs import CertPaths
from tests.notify.messages import ACK_URL, INCIDENT_URL, RESOLVE_URL, page, run
from tests.notify.smtp_server import SmtpBehaviour, SmtpServer, free_port
from tocsin.clock import FakeClock
from tocsin.notify import EmailChannel, EmailConfig, Target

StartSmtp = Callable[..., SmtpServer]
ONCALL = Target("email", "oncall@example.com")


def plain_config(server: SmtpServer, **overrides: object) -> EmailConfig:
    settings: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "from_address": "pager@tocsin.example.com",
        "timeout": 10.0,
    }
    settings.update(overrides)
    return EmailConfig(**settings)  # type: ignore[arg-type]


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_multipart_page_arrives_with_links_and_escaped_html(smtp_server: StartSmtp) -> None:
    server = smtp_server()
    channel = EmailChannel(plain_config(server), FakeClock())

    result = run(channel.send(page(), ONCALL))

    assert result.outcome == "sent", result.detail
    [mail] = server.delivered
    assert mail.rcpt_tos == ["oncall@example.com"]
    assert mail.mail_from == "pager@tocsin.example.com"
    message = mail.parsed()
    assert message["Subject"] == "Disk full on db-1"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] == result.provider_message_id
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert '<script>alert("pwned")</script>' in text  # plain text carries it verbatim
    for url in (ACK_URL, RESOLVE_URL, INCIDENT_URL):
        assert url in text
        assert f'href="{url}"' in html
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in html
    assert "&amp; &lt;b&gt;bold&lt;/b&gt;" in html


def test_message_id_is_stable_across_retries(smtp_server: StartSmtp) -> None:
    server = smtp_server()
    channel = EmailChannel(plain_config(server), FakeClock())

    first = run(channel.send(page(), ONCALL))
    second = run(channel.send(page(), ONCALL))
    other = run(channel.send(page(idempotency_key="another-page"), ONCALL))

    ids = [m.parsed()["Message-ID"] for m in server.delivered]
    assert ids[0] == ids[1] == first.provider_message_id == second.provider_message_id
    assert ids[2] == other.provider_message_id != ids[0]
    assert ids[0].endswith("@tocsin.example.com>")


def test_header_injection_in_subject_goes_nowhere(smtp_server: StartSmtp) -> None:
    server = smtp_server()
    channel = EmailChannel(plain_config(server), FakeClock())
    hostile = page(subject="Disk full\r\nBcc: thief@evil.test\r\n\r\nforged body")

    result = run(channel.send(hostile, ONCALL))

    assert result.ok
    [mail] = server.delivered
    assert mail.rcpt_tos == ["oncall@example.com"]
    message = mail.parsed()
    assert message["Bcc"] is None
    assert message["Subject"] == "Disk full Bcc: thief@evil.test forged body"


def test_unsafe_links_are_not_rendered(smtp_server: StartSmtp) -> None:
    server = smtp_server()
    channel = EmailChannel(plain_config(server), FakeClock())

    run(channel.send(page(ack_url="javascript:alert(1)", resolve_url=None), ONCALL))

    text, html = parts(server.delivered[0].parsed())
    assert "javascript:" not in html and "javascript:" not in text
    assert "Resolve" not in text
    assert f'href="{INCIDENT_URL}"' in html


def test_starttls_with_auth(smtp_server: StartSmtp, certs: CertPaths) -> None:
    server = smtp_server(
        SmtpBehaviour(users={"pager": "smtp-pass-789"}), starttls=certs.server_context()
    )
    config = plain_config(
        server,
        security="starttls",
        username="pager",
        password="smtp-pass-789",
        ca_file=str(certs.ca_file),
    )

    result = run(EmailChannel(config, FakeClock()).send(page(), ONCALL))

    assert result.outcome == "sent", result.detail
    [mail] = server.delivered
    assert mail.over_tls and mail.login == "pager"


def test_wrong_password_is_permanent_and_not_echoed(
    smtp_server: StartSmtp, certs: CertPaths
) -> None:
    server = smtp_server(
        SmtpBehaviour(users={"pager": "right-password"}), starttls=certs.server_context()
    )
    config = plain_config(
        server,
        security="starttls",
        username="pager",
        password="wrong-password-321",
        ca_file=str(certs.ca_file),
    )

    result = run(EmailChannel(config, FakeClock()).send(page(), ONCALL))

    assert result.outcome == "permanent_failure"
    assert "535" in result.detail
    assert "wrong-password-321" not in result.detail
    assert server.delivered == []


def test_untrusted_certificate_is_not_accepted(smtp_server: StartSmtp, certs: CertPaths) -> None:
    server = smtp_server(starttls=certs.server_context())
    config = plain_config(server, security="starttls")  # system CAs do not know our test CA

    result = run(EmailChannel(config, FakeClock()).send(page(), ONCALL))

    assert result.outcome == "temporary_failure"
    assert server.delivered == []


def test_no_starttls_offered_means_nothing_is_sent_in_clear_text(smtp_server: StartSmtp) -> None:
    server = smtp_server()  # offers no STARTTLS
    config = plain_config(server, security="starttls", username="pager", password="pw-in-clear")

    result = run(EmailChannel(config, FakeClock()).send(page(), ONCALL))

    assert result.outcome == "temporary_failure"
    assert "STARTTLS" in result.detail
    assert server.delivered == []


def test_implicit_tls(smtp_server: StartSmtp, certs: CertPaths) -> None:
    server = smtp_server(implicit_tls=certs.server_context())
    config = plain_config(server, security="tls", ca_file=str(certs.ca_file))

    result = run(EmailChannel(config, FakeClock()).send(page(), ONCALL))

    assert result.outcome == "sent", result.detail
    assert server.delivered[0].over_tls


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("550 5.1.1 <oncall@example.com>: user unknown", "permanent_failure"),
        ("452 4.2.2 mailbox full", "temporary_failure"),
    ],
)
def test_refused_recipient(smtp_server: StartSmtp, reply: str, outcome: str) -> None:
    server = smtp_server(SmtpBehaviour(rcpt_reply=reply))

    result = run(EmailChannel(plain_config(server), FakeClock()).send(page(), ONCALL))

    assert result.outcome == outcome
    assert reply[:3] in result.detail
    assert server.delivered == []


def test_no_answer_after_data_is_unknown(smtp_server: StartSmtp) -> None:
    release = threading.Event()
    server = smtp_server(SmtpBehaviour(data_hold=release))

    result = run(EmailChannel(plain_config(server, timeout=0.5), FakeClock()).send(page(), ONCALL))
    release.set()

    assert result.outcome == "unknown"


def test_unreachable_server_is_temporary() -> None:
    config = EmailConfig(
        host="127.0.0.1", port=free_port(), security="none", from_address="pager@example.com"
    )

    result = run(EmailChannel(config, FakeClock()).send(page(), ONCALL))

    assert result.outcome == "temporary_failure"


@pytest.mark.parametrize(
    "address",
    [
        "not-an-email",
        "oncall@",
        "@example.com",
        "on call@example.com",
        "oncall@exa mple.com",
        "oncall@example",
        "oncall@example.com\r\nBcc: x@evil.test",
        "a..b@example.com",
        "<oncall@example.com>",
    ],
)
def test_invalid_addresses_are_explained(address: str) -> None:
    channel = EmailChannel(EmailConfig(from_address="pager@example.com"))

    with pytest.raises(ValueError, match=r"email address|invalid domain|local part"):
        channel.validate_target(Target("email", address))


def test_international_domain_is_accepted_as_idna() -> None:
    EmailChannel(EmailConfig()).validate_target(Target("email", "oncall@bücher.example"))


def test_credentials_need_tls_unless_explicitly_allowed() -> None:
    with pytest.raises(ValueError, match="clear text"):
        EmailConfig(security="none", username="u", password="p")
    EmailConfig(security="none", username="u", password="p", allow_plaintext_auth=True)
    assert "hunter2-pass" not in repr(EmailConfig(username="u", password="hunter2-pass"))
