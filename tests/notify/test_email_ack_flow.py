"""End to end through a real SMTP server: a page arrives by email, and its acknowledge link,
followed like a person would (GET, then the button's POST), acknowledges the incident."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Org
from tests.notify.paging_support import (
    add_method,
    add_rule,
    entries,
    incident,
    notifications,
    open_incident,
    page,
)
from tests.notify.smtp_server import SmtpServer
from tocsin.clock import FakeClock
from tocsin.runtime import Runtime
from tocsin.settings import Settings

BASE_URL = "http://testserver"


@pytest.fixture
def smtp(smtp_server: Callable[..., SmtpServer]) -> SmtpServer:
    return smtp_server()


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return replace(
        settings,
        base_url=BASE_URL,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_starttls=False,
        smtp_from="pager@tocsin.example.com",
    )


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None
    content: str = part.get_content()
    return content.replace("\r\n", "\n")


def test_an_emailed_page_is_acknowledged_through_its_link(
    runtime: Runtime, org: Org, client: TestClient, smtp: SmtpServer, clock: FakeClock
) -> None:
    method = add_method(runtime, org.user_id, "email", "alice@example.com")
    add_rule(runtime, org.user_id, method, 0)
    incident_id = open_incident(runtime, org, "Checkout latency <p99> above 2 s")
    page(runtime, incident_id, org.user_id)

    runtime.dispatcher.drain()

    [mail] = smtp.delivered
    assert mail.rcpt_tos == ["alice@example.com"]
    assert mail.mail_from == "pager@tocsin.example.com"
    message = mail.parsed()
    assert message["Subject"] == (
        f"Incident #{incident_id} (Checkout): Checkout latency <p99> above 2 s"
    )
    text = body(message, "plain")
    html = body(message, "html")
    assert "Why you: escalation level 1" in text
    assert "&lt;p99&gt;" in html and "<p99>" not in html
    [ack_url] = re.findall(r"^Acknowledge: (\S+)$", text, flags=re.MULTILINE)
    assert ack_url.startswith(f"{BASE_URL}/actions/")
    assert f'href="{ack_url}"' in html
    [row] = notifications(runtime)
    assert (row.state, row.provider_message_id) == ("sent", message["Message-ID"])
    sent = entries(runtime, incident_id)[-1]
    assert sent.kind == "notification.sent"
    assert "accepted by smtp server 127.0.0.1" in sent.message

    path = urlsplit(ack_url).path
    confirmation = client.get(path)
    assert confirmation.status_code == 200
    assert f"Acknowledge incident #{incident_id}?" in confirmation.text
    assert incident(runtime, incident_id).status == "triggered"

    clock.advance(90)
    result = client.post(path, data={"action": "ack"})

    assert result.status_code == 200
    assert f"Incident #{incident_id} acknowledged" in result.text
    acked = incident(runtime, incident_id)
    assert acked.status == "acknowledged"
    assert acked.acknowledged_by == "user:alice via link"
    assert acked.acknowledged_at == clock.now()
