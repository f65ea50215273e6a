"""API test helpers: a token per role, and incidents made by the real event pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import Org
from tocsin.auth.service import create_token
from tocsin.clock import FakeClock
from tocsin.incidents.models import Incident
from tocsin.ingest.writer import AcceptedEvent
from tocsin.orgs.models import Integration, User
from tocsin.runtime import Runtime

Headers = dict[str, str]


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Tokens:
    observer: Headers
    responder: Headers  # alice, from the org fixture
    admin: Headers  # a human admin, unlike the bootstrap token


def add_user(rt: Runtime, username: str, role: str, now: Any) -> int:
    with rt.factory() as s, s.begin():
        user = User(
            username=username,
            name=username.title(),
            email=f"{username}@example.com",
            role=role,
            created_at=now,
        )
        s.add(user)
        s.flush()
        return user.id


def token_for(
    rt: Runtime, user_id: int | None, role: str, now: Any, *, expires_in: float | None = None
) -> str:
    with rt.factory() as s, s.begin():
        expires = now + timedelta(seconds=expires_in) if expires_in is not None else None
        _, token = create_token(
            s, name=f"{role}-token", role=role, user_id=user_id, now=now, expires_at=expires
        )
        return token


@pytest.fixture
def tokens(runtime: Runtime, org: Org, clock: FakeClock) -> Tokens:
    now = clock.now()
    olga = add_user(runtime, "olga", "observer", now)
    adam = add_user(runtime, "adam", "admin", now)
    return Tokens(
        observer=bearer(token_for(runtime, olga, "observer", now)),
        responder=bearer(token_for(runtime, org.user_id, "responder", now)),
        admin=bearer(token_for(runtime, adam, "admin", now)),
    )


def trigger(rt: Runtime, org: Org, dedup_key: str, **payload: Any) -> Incident:
    """Send a trigger through the writer and the processor; returns the alert's incident."""
    with rt.factory() as s:
        integ = s.scalars(sa.select(Integration).where(Integration.key == org.pd_key)).one()
    payload.setdefault("summary", f"disk full on {dedup_key}")
    payload.setdefault("severity", "critical")
    rt.writer.submit_sync([AcceptedEvent(integ.id, org.service_id, "trigger", dedup_key, payload)])
    rt.processor.drain()
    with rt.factory() as s:
        return s.scalars(sa.select(Incident).order_by(Incident.id.desc()).limit(1)).one()


def walk(client: Any, url: str, headers: Headers, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paginated collection, following next_cursor to the end."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        r = client.get(url, headers=headers, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def assert_error(response: Any, status: int, fragment: str = "") -> dict[str, Any]:
    """The response is ``status`` in the one error shape, its message mentioning ``fragment``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert fragment.lower() in body["error"]["message"].lower(), body
    error: dict[str, Any] = body["error"]
    return error
