"""Tokens and login: who may mint what, revocation, expiry, and the one login failure."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.api.conftest import Tokens, add_user, assert_error, bearer, token_for, walk
from tests.conftest import Org
from tocsin.auth.models import ApiToken
from tocsin.auth.service import hash_password, token_digest
from tocsin.clock import FakeClock
from tocsin.orgs.models import User
from tocsin.runtime import Runtime

URL = "/api/v1/tokens"


def test_mint_for_yourself_and_use_it(
    client: TestClient, org: Org, tokens: Tokens, clock: FakeClock
) -> None:
    r = client.post(
        URL,
        headers=tokens.responder,
        json={"name": "laptop", "role": "observer", "expires_in_days": 30},
    )
    assert r.status_code == 201, r.text
    minted = r.json()
    assert minted["token"].startswith("tcs_") and minted["token"].startswith(minted["prefix"])
    assert (minted["user"], minted["role"], minted["name"]) == ("alice", "observer", "laptop")
    assert minted["expires_at"].startswith("2026-02-04T09:00:00")
    me = client.get("/api/v1/me", headers=bearer(minted["token"])).json()
    assert (me["actor"], me["role"]) == ("user:alice", "observer")
    # The secret is shown once: listings never carry it.
    listed = walk(client, URL, tokens.responder)
    assert minted["id"] in [t["id"] for t in listed]
    assert minted["token"] not in client.get(URL, headers=tokens.admin).text
    assert all("token" not in t for t in listed)


def test_no_token_above_your_role(client: TestClient, org: Org, tokens: Tokens) -> None:
    r = client.post(URL, headers=tokens.responder, json={"name": "x", "role": "admin"})
    assert_error(r, 403, "responder")
    r = client.post(URL, headers=tokens.observer, json={"name": "x", "role": "responder"})
    assert_error(r, 403, "observer")
    r = client.post(URL, headers=tokens.observer, json={"name": "mine", "role": "observer"})
    assert r.status_code == 201, r.text


def test_nobody_but_an_admin_mints_for_another_user(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    for headers in (tokens.responder, tokens.observer):
        r = client.post(
            URL, headers=headers, json={"name": "x", "role": "observer", "user": "adam"}
        )
        assert_error(r, 403, "only an admin")
    r = client.post(
        URL, headers=tokens.responder, json={"name": "x", "role": "observer", "user": "olga"}
    )
    assert_error(r, 403, "only an admin")
    with runtime.factory() as s:
        owners = set(s.scalars(sa.select(ApiToken.user_id)))
    assert len(owners) == 3  # only the fixtures' tokens exist

    # Naming yourself is fine.
    r = client.post(
        URL, headers=tokens.responder, json={"name": "self", "role": "responder", "user": "alice"}
    )
    assert r.status_code == 201, r.text
    # An admin may, but never above the user's own role.
    r = client.post(
        URL, headers=tokens.admin, json={"name": "for-olga", "role": "observer", "user": "olga"}
    )
    assert (r.status_code, r.json()["user"]) == (201, "olga")
    r = client.post(URL, headers=tokens.admin, json={"name": "x", "role": "admin", "user": "olga"})
    assert_error(r, 422, "olga has the observer role")
    r = client.post(
        URL, headers=tokens.admin, json={"name": "x", "role": "observer", "user": "zed"}
    )
    assert_error(r, 404, "zed")


def test_service_tokens(
    client: TestClient,
    org: Org,
    tokens: Tokens,
    admin_headers: dict[str, str],
    runtime: Runtime,
    clock: FakeClock,
) -> None:
    r = client.post(URL, headers=admin_headers, json={"name": "ci-bot", "role": "responder"})
    assert r.status_code == 201, r.text
    bot = bearer(r.json()["token"])
    assert r.json()["user"] is None
    assert client.get("/api/v1/me", headers=bot).json()["actor"] == "token:ci-bot"
    # A non-admin service token cannot mint: it could pose as any token name.
    assert_error(client.post(URL, headers=bot, json={"name": "other", "role": "observer"}), 403)
    # It sees and revokes only itself.
    assert [t["name"] for t in walk(client, URL, bot)] == ["ci-bot"]
    assert client.delete(f"{URL}/{r.json()['id']}", headers=bot).status_code == 204
    assert_error(client.get("/api/v1/me", headers=bot), 401)


def test_list_and_revoke(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime, clock: FakeClock
) -> None:
    mine = client.post(
        URL, headers=tokens.responder, json={"name": "spare", "role": "responder"}
    ).json()
    spare = bearer(mine["token"])
    admin_view = walk(client, URL, tokens.admin)
    assert {t["user"] for t in admin_view} == {"alice", "olga", "adam"}
    own_view = walk(client, URL, tokens.responder)
    assert {t["user"] for t in own_view} == {"alice"} and len(own_view) == 2

    # Another user's token is invisible: it looks exactly like a missing one.
    olga_token = next(t for t in admin_view if t["user"] == "olga")
    assert_error(client.delete(f"{URL}/{olga_token['id']}", headers=tokens.responder), 404)
    assert client.get("/api/v1/me", headers=tokens.observer).status_code == 200

    clock.advance(5)
    assert client.delete(f"{URL}/{mine['id']}", headers=tokens.responder).status_code == 204
    assert client.delete(f"{URL}/{mine['id']}", headers=tokens.responder).status_code == 204
    revoked = next(t for t in walk(client, URL, tokens.responder) if t["id"] == mine["id"])
    assert revoked["revoked_at"].startswith("2026-01-05T09:00:05")
    err = assert_error(client.get("/api/v1/incidents", headers=spare), 401, "revoked")
    assert err["code"] == "unauthorized"
    # Admins revoke anyone's.
    assert client.delete(f"{URL}/{olga_token['id']}", headers=tokens.admin).status_code == 204
    assert_error(client.get("/api/v1/me", headers=tokens.observer), 401)
    assert_error(client.delete(f"{URL}/99999", headers=tokens.admin), 404)


def test_expired_token_is_401(
    client: TestClient, org: Org, runtime: Runtime, clock: FakeClock
) -> None:
    token = bearer(token_for(runtime, org.user_id, "responder", clock.now(), expires_in=60))
    assert client.get("/api/v1/incidents", headers=token).status_code == 200
    clock.advance(61)
    assert_error(client.get("/api/v1/incidents", headers=token), 401, "expired")


def test_token_is_capped_by_its_users_current_role(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    client.patch("/api/v1/users/alice", headers=tokens.admin, json={"role": "observer"})
    assert_error(
        client.post("/api/v1/teams", headers=tokens.responder, json={"slug": "x", "name": "X"}), 403
    )
    assert client.get("/api/v1/me", headers=tokens.responder).json()["role"] == "observer"
    client.patch("/api/v1/users/alice", headers=tokens.admin, json={"active": False})
    assert_error(client.get("/api/v1/me", headers=tokens.responder), 401)


def test_bad_token_requests(client: TestClient, org: Org, tokens: Tokens) -> None:
    h = tokens.responder
    assert_error(client.post(URL, headers=h, json={"name": "x", "role": "root"}), 422, "role")
    assert_error(client.post(URL, headers=h, json={"name": "", "role": "observer"}), 422, "name")
    assert_error(
        client.post(URL, headers=h, json={"name": "x" * 201, "role": "observer"}), 422, "name"
    )
    assert_error(
        client.post(URL, headers=h, json={"name": "x", "role": "observer", "expires_in_days": 0}),
        422,
        "expires_in_days",
    )
    assert_error(
        client.post(
            URL, headers=h, json={"name": "x", "role": "observer", "expires_in_days": 99999}
        ),
        422,
    )
    assert_error(client.post(URL, headers=h, json={"role": "observer"}), 422, "name")
    assert_error(client.delete(f"{URL}/abc", headers=h), 422)
    assert len(walk(client, URL, h)) == 1


def test_login(client: TestClient, org: Org, runtime: Runtime, clock: FakeClock) -> None:
    with runtime.factory() as s, s.begin():
        s.get_one(User, org.user_id).password_hash = hash_password("open sesame")
    add_user(runtime, "nopass", "responder", clock.now())
    r = client.post("/api/v1/auth/login", json={"username": "alice", "password": "open sesame"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["user"], body["role"], body["name"]) == ("alice", "responder", "login")
    assert body["expires_at"].startswith("2026-01-12T09:00:00")
    me = client.get("/api/v1/me", headers=bearer(body["token"])).json()
    assert me["actor"] == "user:alice"
    with runtime.factory() as s:
        stored = s.scalars(sa.select(ApiToken).where(ApiToken.id == body["id"])).one()
        assert stored.token_hash == token_digest(body["token"])

    wrong = client.post("/api/v1/auth/login", json={"username": "alice", "password": "guess"})
    unknown = client.post("/api/v1/auth/login", json={"username": "mallory", "password": "guess"})
    no_password = client.post("/api/v1/auth/login", json={"username": "nopass", "password": ""})
    assert_error(no_password, 422)
    no_password = client.post("/api/v1/auth/login", json={"username": "nopass", "password": "x"})
    for failed in (wrong, unknown, no_password):
        assert_error(failed, 401)
    assert wrong.json() == unknown.json() == no_password.json()
    assert wrong.json()["error"]["message"] == "invalid username or password"

    with runtime.factory() as s, s.begin():
        s.get_one(User, org.user_id).active = False
    inactive = client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": "open sesame"}
    )
    assert inactive.json() == wrong.json()
    assert_error(client.post("/api/v1/auth/login", json={"username": "alice"}), 422, "password")
