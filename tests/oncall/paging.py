"""A recording stand-in for the notification outbox, for the escalation and hand-off tests.

Pages are written as rows in the caller's transaction, one row per call and never
deduplicated: a step that committed twice would show twice, and a step whose transaction
rolled back leaves nothing. Notices are deduplicated by their unique key, as the outbox does.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tocsin.engine.effects import claim_effect
from tocsin.engine.models import Effect
from tocsin.incidents.models import Incident
from tocsin.oncall import escalation, handoff
from tocsin.orgs.models import User
from tocsin.runtime import Runtime

_PAGE = "fake-page:"
_NOTICE = "fake-notice:"
_sequence = itertools.count()


@dataclass
class FakeOutbox:
    # Users whose next page raises, as a delivery layer that fails mid-step would.
    fail_once: set[int] = field(default_factory=set)
    notice_calls: list[str] = field(default_factory=list)

    def page(
        self,
        session: Session,
        *,
        incident: Incident,
        user_id: int,
        level: int,
        loop: int,
        now: datetime,
        reason: str,
    ) -> int:
        if user_id in self.fail_once:
            self.fail_once.discard(user_id)
            raise RuntimeError("the outbox refused the page")
        session.add(
            Effect(
                key=f"{_PAGE}{uuid.uuid4().hex}",
                created_at=now,
                data={
                    "seq": next(_sequence),
                    "incident_id": incident.id,
                    "user_id": user_id,
                    "level": level,
                    "loop": loop,
                    "reason": reason,
                    "at": now.isoformat(),
                },
            )
        )
        return 1

    def notice(
        self,
        session: Session,
        *,
        user_id: int,
        unique_key: str,
        subject: str,
        text: str,
        now: datetime,
    ) -> int:
        self.notice_calls.append(unique_key)
        created = claim_effect(
            session,
            f"{_NOTICE}{unique_key}",
            now=now,
            data={"user_id": user_id, "subject": subject, "text": text, "at": now.isoformat()},
        )
        return int(created)


@pytest.fixture
def outbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOutbox]:
    fake = FakeOutbox()
    monkeypatch.setattr(escalation, "send_page", fake.page)
    monkeypatch.setattr(handoff, "send_notice", fake.notice)
    yield fake


def pages(rt: Runtime, incident_id: int | None = None) -> list[tuple[str, int, int]]:
    """(username, level, loop) of every page made, in order."""
    return [(p["username"], p["level"], p["loop"]) for p in page_rows(rt, incident_id)]


def page_rows(rt: Runtime, incident_id: int | None = None) -> list[dict[str, Any]]:
    with rt.factory() as s:
        rows = [e.data for e in s.scalars(sa.select(Effect).where(Effect.key.like(f"{_PAGE}%")))]
        names = dict(s.execute(sa.select(User.id, User.username)).all())
    rows = [r for r in rows if incident_id is None or r["incident_id"] == incident_id]
    rows.sort(key=lambda r: r["seq"])
    return [{**r, "username": names[r["user_id"]]} for r in rows]


def notices(rt: Runtime) -> dict[str, dict[str, Any]]:
    """Notices handed over, by unique key."""
    with rt.factory() as s:
        rows = s.scalars(sa.select(Effect).where(Effect.key.like(f"{_NOTICE}%"))).all()
    return {e.key[len(_NOTICE) :]: e.data for e in rows}
