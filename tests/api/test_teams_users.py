"""Teams, their members, users and /me over the API."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.api.conftest import Tokens, assert_error, bearer, trigger, walk
from tests.conftest import Org
from tocsin.auth.service import verify_password
from tocsin.incidents.models import Incident
from tocsin.orgs.models import Service, User
from tocsin.runtime import Runtime

TEAMS = "/api/v1/teams"
USERS = "/api/v1/users"


def test_team_lifecycle_and_members(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    h = tokens.admin
    r = client.post(TEAMS, headers=h, json={"slug": "sre", "name": "SRE", "description": "on call"})
    assert r.status_code == 201, r.text
    assert r.json()["members"] == []
    r = client.post(f"{TEAMS}/sre/members", headers=h, json={"user": "alice", "role": "manager"})
    assert r.status_code == 201, r.text
    assert r.json()["members"] == [{"username": "alice", "name": "Alice", "role": "manager"}]
    client.post(f"{TEAMS}/sre/members", headers=h, json={"user": "olga"})
    assert_error(
        client.post(f"{TEAMS}/sre/members", headers=h, json={"user": "olga"}), 409, "already"
    )
    assert_error(client.post(f"{TEAMS}/sre/members", headers=h, json={"user": "zed"}), 404, "zed")
    assert_error(client.post(f"{TEAMS}/ops/members", headers=h, json={"user": "olga"}), 404, "ops")
    assert_error(
        client.post(f"{TEAMS}/sre/members", headers=h, json={"user": "olga", "role": "boss"}), 422
    )
    team = client.get(f"{TEAMS}/sre", headers=tokens.observer).json()
    assert [m["username"] for m in team["members"]] == ["alice", "olga"]
    assert client.get(f"{USERS}/alice", headers=tokens.observer).json()["teams"] == [
        "payments",
        "sre",
    ]

    assert client.delete(f"{TEAMS}/sre/members/olga", headers=h).status_code == 204
    assert_error(client.delete(f"{TEAMS}/sre/members/olga", headers=h), 404, "not a member")
    r = client.patch(f"{TEAMS}/sre", headers=h, json={"name": "Site Reliability", "slug": "site"})
    assert (r.json()["slug"], r.json()["name"]) == ("site", "Site Reliability")
    assert_error(
        client.patch(f"{TEAMS}/site", headers=h, json={"slug": "payments"}), 409, "payments"
    )
    assert_error(
        client.post(TEAMS, headers=h, json={"slug": "payments", "name": "P"}), 409, "payments"
    )
    assert [t["slug"] for t in walk(client, TEAMS, tokens.observer, limit=1)] == [
        "payments",
        "site",
    ]

    # Deleting a team leaves its services without an owner.
    assert client.delete(f"{TEAMS}/payments", headers=h).status_code == 204
    assert client.get("/api/v1/services/checkout", headers=h).json()["team"] is None
    with runtime.factory() as s:
        assert s.scalars(sa.select(Service.team_id)).one() is None
    assert_error(client.get(f"{TEAMS}/payments", headers=h), 404)


def test_user_lifecycle(client: TestClient, org: Org, tokens: Tokens, runtime: Runtime) -> None:
    h = tokens.admin
    body = {
        "username": "bob",
        "name": "Bob",
        "email": "Bob@Example.com",
        "role": "observer",
        "time_zone": "Europe/Paris",
        "password": "correct horse",
    }
    r = client.post(USERS, headers=h, json=body)
    assert r.status_code == 201, r.text
    bob = r.json()
    assert (bob["email"], bob["role"], bob["time_zone"]) == (
        "bob@example.com",
        "observer",
        "Europe/Paris",
    )
    assert bob["has_password"] is True and "password" not in r.text.replace("has_password", "")
    with runtime.factory() as s:
        stored = s.scalars(sa.select(User).where(User.username == "bob")).one()
        assert stored.password_hash and "correct horse" not in stored.password_hash
        assert verify_password(stored.password_hash, "correct horse")
    assert client.get(f"{USERS}/bob", headers=tokens.observer).json() == bob
    usernames = [u["username"] for u in walk(client, USERS, tokens.observer, limit=2)]
    assert usernames == ["alice", "olga", "adam", "bob"]

    r = client.patch(f"{USERS}/bob", headers=h, json={"role": "responder", "active": False})
    assert (r.json()["role"], r.json()["active"]) == ("responder", False)
    assert client.delete(f"{USERS}/bob", headers=h).status_code == 204
    assert_error(client.get(f"{USERS}/bob", headers=h), 404, "bob")


def test_deleting_a_user_unassigns_their_incidents(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    incident = trigger(runtime, org, "db-1")
    client.post(
        f"/api/v1/incidents/{incident.id}/reassign", headers=tokens.admin, json={"user": "olga"}
    )
    assert client.delete(f"{USERS}/olga", headers=tokens.admin).status_code == 204
    with runtime.factory() as s:
        assert s.get_one(Incident, incident.id).assignee_id is None
    # Olga's token went with her.
    assert_error(client.get("/api/v1/me", headers=tokens.observer), 401)


def test_duplicate_and_bad_users(client: TestClient, org: Org, tokens: Tokens) -> None:
    h = tokens.admin
    base = {"username": "bob", "name": "Bob", "email": "bob@example.com"}
    assert client.post(USERS, headers=h, json=base).status_code == 201
    assert_error(
        client.post(USERS, headers=h, json={**base, "email": "b2@example.com"}), 409, "bob"
    )
    assert_error(
        client.post(
            USERS, headers=h, json={**base, "username": "bob2", "email": "BOB@example.com"}
        ),
        409,
        "email",
    )
    assert_error(
        client.patch(f"{USERS}/bob", headers=h, json={"email": "alice@example.com"}), 409, "email"
    )
    carl = {"username": "carl", "name": "Carl", "email": "carl@example.com"}
    bad = [
        ({"username": "Carl Smith"}, "username"),
        ({"username": "c" * 65}, "username"),
        ({"email": "not-an-email"}, "email"),
        ({"role": "root"}, "role"),
        ({"time_zone": "Mars/Olympus"}, "time zone"),
        ({"password": "short"}, "password"),
        ({"name": 42}, "name"),
        ({"is_admin": True}, "is_admin"),
    ]
    for change, fragment in bad:
        assert_error(client.post(USERS, headers=h, json={**carl, **change}), 422, fragment)
    assert [u["username"] for u in walk(client, USERS, h)] == ["alice", "olga", "adam", "bob"]
    assert_error(client.patch(f"{USERS}/zed", headers=h, json={"name": "Zed"}), 404)
    assert_error(client.patch(f"{USERS}/bob", headers=h, json={"active": None}), 422, "null")


def test_users_edit_their_own_profile_only(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    me = tokens.observer  # olga
    r = client.patch(
        f"{USERS}/olga", headers=me, json={"name": "Olga K", "time_zone": "Asia/Tokyo"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["time_zone"]) == ("Olga K", "Asia/Tokyo")
    assert_error(client.patch(f"{USERS}/olga", headers=me, json={"role": "admin"}), 403, "role")
    assert_error(client.patch(f"{USERS}/olga", headers=me, json={"active": False}), 403, "active")
    assert_error(
        client.patch(f"{USERS}/alice", headers=me, json={"name": "Mallory"}), 403, "another user"
    )
    assert client.get(f"{USERS}/alice", headers=me).json()["name"] == "Alice"

    # A first password needs nothing more; changing it needs the current one.
    assert (
        client.patch(f"{USERS}/olga", headers=me, json={"password": "first-pass"}).status_code
        == 200
    )
    assert_error(
        client.patch(f"{USERS}/olga", headers=me, json={"password": "second-pass"}),
        403,
        "current_password",
    )
    wrong = {"password": "second-pass", "current_password": "guess"}
    assert_error(client.patch(f"{USERS}/olga", headers=me, json=wrong), 403, "current_password")
    right = {"password": "second-pass", "current_password": "first-pass"}
    assert client.patch(f"{USERS}/olga", headers=me, json=right).status_code == 200
    assert_error(client.patch(f"{USERS}/olga", headers=me, json={"password": None}), 403, "admin")
    login = client.post("/api/v1/auth/login", json={"username": "olga", "password": "second-pass"})
    assert login.status_code == 201, login.text

    # Admins cannot lock themselves out by accident.
    assert_error(
        client.patch(f"{USERS}/adam", headers=tokens.admin, json={"role": "observer"}), 409
    )
    assert_error(client.delete(f"{USERS}/adam", headers=tokens.admin), 409)


def test_me(client: TestClient, org: Org, tokens: Tokens, admin_headers: dict[str, str]) -> None:
    r = client.get("/api/v1/me", headers=tokens.responder)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["actor"], body["role"], body["user"]["username"]) == (
        "user:alice",
        "responder",
        "alice",
    )
    boot = client.get("/api/v1/me", headers=admin_headers).json()
    assert (boot["actor"], boot["role"], boot["user"]) == ("token:bootstrap", "admin", None)
    assert_error(client.get("/api/v1/me", headers=bearer("tcs_nonsense")), 401)
