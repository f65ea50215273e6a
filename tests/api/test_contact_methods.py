"""Contact methods, notification rules and test notifications over the API: people manage
their own, admins anyone's; addresses and options go in and never come out again."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from tests.api.conftest import Tokens, assert_error, walk
from tests.api.test_authorization import snapshot
from tests.conftest import SECRET_KEY, Org
from tocsin import crypto
from tocsin.notify.models import ContactMethod, Notification, NotificationRule
from tocsin.orgs.models import User
from tocsin.runtime import Runtime

ALICE = "/api/v1/users/alice"
SIGNING_SECRET = "whsec-0123456789abcdef-signing"
HEADER_KEY = "api-key-5f3c9b0e7a"
TWILIO = (
    "twilio://AC" + "a" * 32 + ":" + "t0psecretauthtoken" + "b" * 14 + "@15551234567/15557654321"
)
WEBHOOK = "https://hooks.example.com/tocsin?token=url-embedded-credential"


def methods(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    return walk(client, f"{ALICE}/contact-methods", headers)


@pytest.fixture
def created(client: TestClient, tokens: Tokens) -> dict[str, dict[str, Any]]:
    bodies = [
        {"name": "work-email", "kind": "email", "address": "alice@example.com"},
        {
            "name": "pager-hook",
            "kind": "webhook",
            "address": WEBHOOK,
            "options": {"secret": SIGNING_SECRET, "headers": {"X-Api-Key": HEADER_KEY}},
        },
        {"name": "phone", "kind": "sms", "address": TWILIO},
    ]
    out = {}
    for body in bodies:
        r = client.post(f"{ALICE}/contact-methods", headers=tokens.responder, json=body)
        assert r.status_code == 201, r.text
        out[body["name"]] = r.json()
    return out


def test_secrets_go_in_and_never_come_out(
    client: TestClient, tokens: Tokens, created: dict[str, dict[str, Any]], runtime: Runtime
) -> None:
    email, hook, phone = created["work-email"], created["pager-hook"], created["phone"]
    assert (email["kind"], email["display"], email["options"]) == (
        "email",
        "alice@example.com",
        [],
    )
    assert (hook["display"], hook["options"]) == (
        "https://hooks.example.com/…",
        ["headers", "secret"],
    )
    assert phone["display"] == "twilio://…"
    for body in created.values():
        assert "address" not in body
        assert body["verified_at"] is None and body["enabled"] is True
    listed = client.get(f"{ALICE}/contact-methods", headers=tokens.responder)
    one = client.get(f"{ALICE}/contact-methods/{hook['id']}", headers=tokens.admin)
    for response in (listed, one):
        assert response.status_code == 200
        for secret in (SIGNING_SECRET, HEADER_KEY, "t0psecretauthtoken", "url-embedded-credential"):
            assert secret not in response.text
    assert [m["name"] for m in methods(client, tokens.responder)] == [
        "work-email",
        "pager-hook",
        "phone",
    ]
    # At rest the address and the options are encrypted.
    with runtime.factory() as s:
        raw = " ".join(s.execute(sa.text("SELECT secret FROM contact_methods")).scalars())
        stored = s.get(ContactMethod, hook["id"])
        assert stored is not None
        assert stored.secret == {
            "address": WEBHOOK,
            "options": {"secret": SIGNING_SECRET, "headers": {"X-Api-Key": HEADER_KEY}},
        }
    for secret in (SIGNING_SECRET, HEADER_KEY, "t0psecretauthtoken", "alice@example.com"):
        assert secret not in raw


def test_only_the_user_and_admins_see_and_change_contact_methods(
    client: TestClient, tokens: Tokens, created: dict[str, dict[str, Any]], runtime: Runtime
) -> None:
    email = created["work-email"]
    # olga (an observer) manages her own contact methods...
    r = client.post(
        "/api/v1/users/olga/contact-methods",
        headers=tokens.observer,
        json={"name": "mail", "kind": "email", "address": "olga@example.com"},
    )
    assert r.status_code == 201, r.text
    # ...but may neither read nor change alice's.
    before = snapshot(runtime)
    for method, url, body in [
        ("GET", f"{ALICE}/contact-methods", None),
        ("GET", f"{ALICE}/contact-methods/{email['id']}", None),
        ("POST", f"{ALICE}/contact-methods", {"name": "x", "kind": "email", "address": "x@y.io"}),
        ("PATCH", f"{ALICE}/contact-methods/{email['id']}", {"enabled": False}),
        ("DELETE", f"{ALICE}/contact-methods/{email['id']}", None),
        ("POST", f"{ALICE}/contact-methods/{email['id']}/test", None),
        ("GET", f"{ALICE}/notification-rules", None),
        ("POST", f"{ALICE}/notification-rules", {"urgency": "high", "contact_method": "phone"}),
    ]:
        r = client.request(method, url, headers=tokens.observer, json=body)
        assert_error(r, 403, "admin")
    assert snapshot(runtime) == before
    # An admin may do all of it.
    r = client.patch(
        f"{ALICE}/contact-methods/{email['id']}", headers=tokens.admin, json={"enabled": False}
    )
    assert r.json()["enabled"] is False
    assert_error(client.get("/api/v1/users/zed/contact-methods", headers=tokens.admin), 404, "zed")
    r = client.get(f"/api/v1/users/olga/contact-methods/{email['id']}", headers=tokens.admin)
    assert_error(r, 404, "olga has no contact method")


@pytest.mark.parametrize(
    ("body", "fragment", "never_shown"),
    [
        ({"name": "m", "kind": "email", "address": "not-an-address"}, "email address", None),
        ({"name": "m", "kind": "fax", "address": "+15551234567"}, "kind", None),
        ({"name": "m", "kind": "webhook", "address": "ftp://files.example.com/x"}, "http", None),
        (
            {"name": "m", "kind": "webhook", "address": WEBHOOK, "options": {"secret": "short"}},
            "16",
            "short",
        ),
        (
            {"name": "m", "kind": "sms", "address": "twilio://AC-bad:hunter2secret@1/2"},
            "twilio",
            "hunter2secret",
        ),
        (
            {"name": "m", "kind": "slack", "address": "https://evil.example.com/hook"},
            "hooks.slack.com",
            None,
        ),
        (
            {"name": "m", "kind": "email", "address": "a@example.com", "options": {"x": 1}},
            "unknown option",
            None,
        ),
        (
            {"name": "m", "kind": "email", "address": "a@example.com", "colour": "red"},
            "colour",
            None,
        ),
        ({"name": "no spaces", "kind": "email", "address": "a@example.com"}, "name", None),
        ({"name": "m", "kind": "email", "address": ""}, "address", None),
    ],
)
def test_contact_methods_that_cannot_work_are_refused(
    client: TestClient,
    tokens: Tokens,
    org: Org,
    runtime: Runtime,
    body: dict[str, Any],
    fragment: str,
    never_shown: str | None,
) -> None:
    before = snapshot(runtime)
    r = client.post(f"{ALICE}/contact-methods", headers=tokens.responder, json=body)
    assert_error(r, 422, fragment)
    if never_shown:
        assert never_shown not in r.text
    assert snapshot(runtime) == before


def test_changes_to_an_address_need_a_new_test(
    client: TestClient, tokens: Tokens, created: dict[str, dict[str, Any]], runtime: Runtime
) -> None:
    h = tokens.responder
    hook = created["pager-hook"]
    url = f"{ALICE}/contact-methods/{hook['id']}"
    with runtime.factory() as s, s.begin():
        row = s.get(ContactMethod, hook["id"])
        assert row is not None
        row.verified_at = runtime.clock.now()
    assert client.patch(url, headers=h, json={"name": "hook"}).json()["verified_at"] is not None
    r = client.patch(url, headers=h, json={"options": {"secret": "a-brand-new-secret-0123"}})
    assert r.status_code == 200, r.text
    assert (r.json()["verified_at"], r.json()["options"]) == (None, ["secret"])
    with runtime.factory() as s:
        stored = s.get(ContactMethod, hook["id"])
        assert stored is not None
        assert stored.secret["address"] == WEBHOOK  # kept
    r = client.patch(url, headers=h, json={"address": "https://other.example.com/in"})
    assert r.json()["display"] == "https://other.example.com/…"
    assert_error(client.patch(url, headers=h, json={"address": "mailto:x"}), 422, "http")
    assert_error(client.patch(url, headers=h, json={"name": "phone"}), 409, "phone")
    assert_error(client.patch(url, headers=h, json={"enabled": None}), 422, "null")
    assert_error(
        client.post(
            f"{ALICE}/contact-methods",
            headers=h,
            json={"name": "phone", "kind": "email", "address": "a@example.com"},
        ),
        409,
        "already has",
    )


def test_notification_rules(
    client: TestClient, tokens: Tokens, created: dict[str, dict[str, Any]], runtime: Runtime
) -> None:
    h = tokens.responder
    url = f"{ALICE}/notification-rules"
    for rule in [
        {"urgency": "high", "delay_minutes": 5, "contact_method": "phone"},
        {"urgency": "high", "contact_method": "pager-hook"},
        {"urgency": "low", "delay_minutes": 0, "contact_method": "work-email"},
        {"urgency": "high", "delay_minutes": 2, "contact_method": "work-email"},
    ]:
        r = client.post(url, headers=h, json=rule)
        assert r.status_code == 201, r.text
    listed = [(r["urgency"], r["delay_minutes"], r["contact_method"]) for r in walk(client, url, h)]
    assert listed == [
        ("high", 0, "pager-hook"),
        ("high", 2, "work-email"),
        ("high", 5, "phone"),
        ("low", 0, "work-email"),
    ]
    before = snapshot(runtime)
    duplicate = {"urgency": "high", "delay_minutes": 5, "contact_method": "phone"}
    assert_error(client.post(url, headers=h, json=duplicate), 409, "already has this rule")
    missing = {"urgency": "high", "contact_method": "pigeon"}
    assert_error(client.post(url, headers=h, json=missing), 404, "pigeon")
    for bad in [
        {"urgency": "medium", "contact_method": "phone"},
        {"urgency": "high", "delay_minutes": -1, "contact_method": "phone"},
        {"urgency": "high", "delay_minutes": 1441, "contact_method": "phone"},
    ]:
        assert_error(client.post(url, headers=h, json=bad), 422)
    assert snapshot(runtime) == before

    # Deleting a contact method takes its rules with it.
    phone = created["phone"]["id"]
    assert client.delete(f"{ALICE}/contact-methods/{phone}", headers=h).status_code == 204
    assert [r["contact_method"] for r in walk(client, url, h)] == [
        "pager-hook",
        "work-email",
        "work-email",
    ]
    first = walk(client, url, h)[0]["id"]
    assert client.delete(f"{url}/{first}", headers=h).status_code == 204
    assert_error(client.delete(f"{url}/{first}", headers=h), 404)
    with runtime.factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(NotificationRule)) == 2


def test_a_test_notification_is_queued(
    client: TestClient, tokens: Tokens, created: dict[str, dict[str, Any]], runtime: Runtime
) -> None:
    email = created["work-email"]
    # Disabled methods can be tested too: that is how one is checked before it is enabled.
    client.patch(
        f"{ALICE}/contact-methods/{email['id']}", headers=tokens.responder, json={"enabled": False}
    )
    r = client.post(f"{ALICE}/contact-methods/{email['id']}/test", headers=tokens.responder)
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["contact_method"], body["state"]) == ("work-email", "pending")
    with runtime.factory() as s:
        row = s.get(Notification, body["id"])
        assert row is not None
        assert (row.purpose, row.contact_method_id, row.incident_id) == ("test", email["id"], None)
        assert "user:alice" in str(row.message)
    r = client.post(f"{ALICE}/contact-methods/999999/test", headers=tokens.responder)
    assert_error(r, 404, "no contact method")


def test_hand_off_notice_settings(
    client: TestClient, tokens: Tokens, org: Org, runtime: Runtime
) -> None:
    url = f"{ALICE}/notification-settings"
    assert client.get(url, headers=tokens.responder).json() == {"handoff_notice_minutes": 60}
    r = client.patch(url, headers=tokens.responder, json={"handoff_notice_minutes": 15})
    assert r.json() == {"handoff_notice_minutes": 15}
    # null turns notices off; an admin may change anyone's.
    r = client.patch(url, headers=tokens.admin, json={"handoff_notice_minutes": None})
    assert r.json() == {"handoff_notice_minutes": None}
    with runtime.factory() as s:
        assert (
            s.scalars(sa.select(User.handoff_notice_minutes).where(User.id == org.user_id)).one()
            is None
        )
    before = snapshot(runtime)
    assert_error(
        client.patch(url, headers=tokens.observer, json={"handoff_notice_minutes": 5}), 403
    )
    for bad in (0, 10_081, "soon"):
        r = client.patch(url, headers=tokens.responder, json={"handoff_notice_minutes": bad})
        assert_error(r, 422, "handoff_notice_minutes")
    assert snapshot(runtime) == before


def test_a_node_with_the_wrong_secret_key_says_so(
    client: TestClient, tokens: Tokens, created: dict[str, dict[str, Any]]
) -> None:
    crypto.configure(Fernet.generate_key().decode())
    try:
        r = client.get(f"{ALICE}/contact-methods", headers=tokens.responder)
    finally:
        crypto.configure(SECRET_KEY)
    assert_error(r, 503, "TOCSIN_SECRET_KEY")
    assert SIGNING_SECRET not in r.text and "twilio" not in r.text
