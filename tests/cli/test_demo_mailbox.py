"""The demo's local mailbox keeps every page and shows its acknowledge link."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest

from tocsin.cli.demo_mailbox import DemoMailbox


def test_mail_is_kept_and_its_link_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mailbox = DemoMailbox(tmp_path / "mailbox")
    assert mailbox.start()
    try:
        message = EmailMessage()
        message["From"] = "tocsin@localhost"
        message["To"] = "alice@example.com"
        message["Subject"] = "Incident #7 (Checkout): 500s"
        message.set_content("Acknowledge: http://127.0.0.1:8080/actions/abc.def\n")
        with smtplib.SMTP(mailbox.host, mailbox.port) as client:
            client.send_message(message)
    finally:
        mailbox.stop()
    [saved] = sorted((tmp_path / "mailbox").glob("*.eml"))
    assert b"Incident #7" in saved.read_bytes()
    out = capsys.readouterr().out
    assert "to alice@example.com: Incident #7 (Checkout): 500s" in out
    assert "acknowledge: http://127.0.0.1:8080/actions/abc.def" in out
