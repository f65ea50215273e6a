"""One-click action links: signing, expiry, tampering, purpose; GET confirms, POST acts."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.conftest import SECRET_KEY, Org
from tests.notify.paging_support import add_user, entries, incident, open_incident, resolve
from tocsin import crypto
from tocsin.clock import FakeClock
from tocsin.notify import links
from tocsin.notify.links import (
    ExpiredLink,
    MalformedLink,
    TamperedLink,
    WrongPurpose,
    read_link,
    sign_link,
)
from tocsin.orgs.models import User
from tocsin.runtime import Runtime

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=24)


@pytest.fixture(autouse=True)
def _key() -> None:
    crypto.configure(SECRET_KEY)


def token(action: links.Action = "ack", *, incident_id: int = 42, user_id: int = 7) -> str:
    return sign_link(incident_id=incident_id, action=action, user_id=user_id, expires_at=LATER)


def test_a_signed_link_reads_back() -> None:
    claim = read_link(token("resolve"), now=NOW, action="resolve")
    assert (claim.incident_id, claim.action, claim.user_id) == (42, "resolve", 7)
    assert claim.expires_at == LATER


def test_a_link_expires() -> None:
    read_link(token(), now=LATER - timedelta(seconds=1))
    with pytest.raises(ExpiredLink, match="expired at 2026-01-06 09:00 UTC"):
        read_link(token(), now=LATER)


def test_an_ack_link_cannot_resolve() -> None:
    with pytest.raises(WrongPurpose, match="can only acknowledge the incident, not resolve it"):
        read_link(token("ack"), now=NOW, action="resolve")


@pytest.mark.parametrize(
    "change",
    [
        {"a": "resolve"},  # turn an ack link into a resolve link
        {"u": 1},  # act as someone else
        {"i": 43},  # another incident
        {"e": int((LATER + timedelta(days=365)).timestamp())},  # live longer
    ],
)
def test_changing_any_field_breaks_the_signature(change: dict[str, object]) -> None:
    encoded, signature = token().split(".")
    payload = orjson.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    payload.update(change)
    forged = base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()
    with pytest.raises(TamperedLink):
        read_link(f"{forged}.{signature}", now=NOW)


def test_a_changed_signature_is_refused() -> None:
    encoded, signature = token().split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(TamperedLink):
        read_link(f"{encoded}.{flipped}", now=NOW)


def test_a_link_from_a_server_with_another_key_is_refused() -> None:
    other = token()
    crypto.configure("0" * 43 + "=")
    try:
        with pytest.raises(TamperedLink, match="different secret key"):
            read_link(other, now=NOW)
    finally:
        crypto.configure(SECRET_KEY)


@pytest.mark.parametrize("bad", ["", "abc", "a.b.c", "é.x", "x" * 600, "x.y"])
def test_malformed_links_are_refused(bad: str) -> None:
    with pytest.raises((MalformedLink, TamperedLink)):
        read_link(bad, now=NOW)


def test_a_signed_payload_that_is_not_a_link_is_malformed() -> None:
    encoded = base64.urlsafe_b64encode(b"[1, 2]").rstrip(b"=").decode()
    signature = crypto.sign(b"tocsin.action-link.v1:" + encoded.encode())
    with pytest.raises(MalformedLink):
        read_link(f"{encoded}.{signature}", now=NOW)


# -- the pages ------------------------------------------------------------------------------


def link_path(runtime: Runtime, org: Org, action: links.Action, **kw: int) -> tuple[int, str]:
    incident_id = kw.get("incident_id") or open_incident(runtime, org, '<b>Disk</b> "full"')
    url = links.action_url(
        incident_id=incident_id,
        action=action,
        user_id=kw.get("user_id", org.user_id),
        now=runtime.clock.now(),
    )
    return incident_id, url.removeprefix(links.settings().base_url)


def test_get_shows_a_confirmation_and_does_not_act(
    runtime: Runtime, org: Org, client: TestClient
) -> None:
    incident_id, path = link_path(runtime, org, "ack")

    for _ in range(3):  # link scanners fetch links, sometimes repeatedly
        response = client.get(path)
        assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    body = response.text
    assert f"Acknowledge incident #{incident_id}?" in body
    assert '<form method="post">' in body and 'name="action" value="ack"' in body
    assert "&lt;b&gt;Disk&lt;/b&gt; &#34;full&#34;" in body and "<b>Disk</b>" not in body
    assert "<script" not in body and "http" not in body.split("<body>")[1]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert incident(runtime, incident_id).status == "triggered"


def test_post_acknowledges_as_the_user_via_link(
    runtime: Runtime, org: Org, client: TestClient, clock: FakeClock
) -> None:
    incident_id, path = link_path(runtime, org, "ack")

    response = client.post(path, data={"action": "ack"})

    assert response.status_code == 200
    assert f"Incident #{incident_id} acknowledged" in response.text
    acked = incident(runtime, incident_id)
    assert acked.status == "acknowledged"
    assert acked.acknowledged_by == "user:alice via link"
    assert acked.acknowledged_at == clock.now()
    [entry] = entries(runtime, incident_id, "incident.acknowledged")
    assert entry.actor == "user:alice via link"


def test_acting_again_says_it_is_already_done(
    runtime: Runtime, org: Org, client: TestClient
) -> None:
    _, path = link_path(runtime, org, "ack")
    client.post(path, data={"action": "ack"})

    again = client.post(path, data={"action": "ack"})
    shown = client.get(path)

    for response in (again, shown):
        assert response.status_code == 200
        assert "already acknowledged (by user:alice via link)" in response.text
        assert "<form" not in response.text


def test_a_resolve_link_resolves(runtime: Runtime, org: Org, client: TestClient) -> None:
    incident_id, path = link_path(runtime, org, "resolve")

    assert 'value="resolve"' in client.get(path).text
    response = client.post(path, data={"action": "resolve"})

    assert response.status_code == 200
    assert incident(runtime, incident_id).resolved_by == "user:alice via link"


def test_a_resolved_incident_needs_nothing(runtime: Runtime, org: Org, client: TestClient) -> None:
    incident_id, path = link_path(runtime, org, "ack")
    resolve(runtime, incident_id)

    response = client.post(path, data={"action": "ack"})

    assert response.status_code == 200
    assert "already resolved (by user:bob)" in response.text


def test_posting_another_action_with_an_ack_link_is_refused(
    runtime: Runtime, org: Org, client: TestClient
) -> None:
    incident_id, path = link_path(runtime, org, "ack")

    response = client.post(path, data={"action": "resolve"})

    assert response.status_code == 400
    assert "can only acknowledge the incident, not resolve it" in response.text
    assert incident(runtime, incident_id).status == "triggered"


def test_an_expired_link_is_a_410_page(
    runtime: Runtime, org: Org, client: TestClient, clock: FakeClock
) -> None:
    incident_id, path = link_path(runtime, org, "ack")
    clock.advance(timedelta(minutes=runtime.settings.action_link_ttl_minutes))

    for response in (client.get(path), client.post(path, data={"action": "ack"})):
        assert response.status_code == 410
        assert "This link has expired" in response.text
    assert incident(runtime, incident_id).status == "triggered"


def test_a_tampered_link_is_a_403_page(runtime: Runtime, org: Org, client: TestClient) -> None:
    incident_id, path = link_path(runtime, org, "ack")
    encoded, signature = path.removeprefix("/actions/").split(".")
    forged = "/actions/" + encoded + "." + signature[::-1]

    for response in (client.get(forged), client.post(forged, data={"action": "ack"})):
        assert response.status_code == 403
        assert "altered" in response.text
    assert client.get("/actions/not-a-token").status_code == 400
    assert incident(runtime, incident_id).status == "triggered"


def test_a_deactivated_users_link_stops_working(
    runtime: Runtime, org: Org, client: TestClient
) -> None:
    incident_id, path = link_path(runtime, org, "ack")
    with runtime.factory() as s, s.begin():
        s.get_one(User, org.user_id).active = False

    response = client.post(path, data={"action": "ack"})

    assert response.status_code == 403
    assert incident(runtime, incident_id).status == "triggered"


def test_an_observers_link_cannot_act(runtime: Runtime, org: Org, client: TestClient) -> None:
    watcher = add_user(runtime, "watcher", role="observer")
    incident_id, path = link_path(runtime, org, "ack", user_id=watcher)

    assert client.post(path, data={"action": "ack"}).status_code == 403
    assert incident(runtime, incident_id).status == "triggered"


def test_a_deleted_incident_is_a_404_page(runtime: Runtime, org: Org, client: TestClient) -> None:
    _, path = link_path(runtime, org, "ack", incident_id=999)

    response = client.get(path)

    assert response.status_code == 404
    assert "Incident not found" in response.text
