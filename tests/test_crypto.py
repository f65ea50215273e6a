"""Secrets at rest: encrypted with the configured key, unreadable without it."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from tests.conftest import SECRET_KEY
from tocsin import crypto
from tocsin.notify.models import ContactMethod
from tocsin.runtime import Runtime


def test_key_file_is_created_once_with_owner_only_permissions(tmp_path: Path) -> None:
    key = crypto.load_or_create_key(tmp_path, None)
    assert crypto.load_or_create_key(tmp_path, None) == key
    assert (tmp_path / crypto.KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert crypto.load_or_create_key(tmp_path, "configured") == "configured"


def test_contact_secrets_are_not_stored_in_clear(runtime: Runtime, org: object) -> None:
    secret_url = "twilio://AC123:hunter2-secret@+15550001/+15550002"
    with runtime.factory() as s, s.begin():
        s.add(
            ContactMethod(
                user_id=1,
                name="sms",
                kind="apprise",
                secret={"address": secret_url, "options": {}},
                display="+1555***002",
                created_at=runtime.clock.now(),
            )
        )
    with runtime.engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT secret FROM contact_methods")).scalar_one()
    assert "hunter2" not in raw and "twilio" not in raw
    with runtime.factory() as s:
        assert s.scalars(sa.select(ContactMethod)).one().secret["address"] == secret_url
    crypto.configure(Fernet.generate_key().decode())
    try:
        with runtime.factory() as s, pytest.raises(crypto.SecretsUnavailable):
            s.scalars(sa.select(ContactMethod)).one()
    finally:
        crypto.configure(SECRET_KEY)


def test_link_signatures_verify_only_unchanged_messages() -> None:
    crypto.configure(SECRET_KEY)
    signature = crypto.sign(b"ack:42:alice:1767600000")
    assert crypto.verify(b"ack:42:alice:1767600000", signature)
    assert not crypto.verify(b"resolve:42:alice:1767600000", signature)
