"""Builders for the on-call service and escalation tests: users, teams, schedules, policies and
services written straight into the database, the way the configuration would store them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tocsin.notify.models import ContactMethod
from tocsin.oncall.models import (
    EscalationLevel,
    EscalationPolicy,
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
)
from tocsin.orgs.models import Service, Team, TeamMember, User
from tocsin.runtime import Runtime

T0 = datetime(2026, 1, 1)


def user(
    rt: Runtime,
    username: str,
    *,
    active: bool = True,
    time_zone: str = "UTC",
    handoff_notice_minutes: int | None = 60,
) -> int:
    with rt.factory() as s, s.begin():
        row = User(
            username=username,
            name=username.title(),
            email=f"{username}@example.com",
            active=active,
            time_zone=time_zone,
            handoff_notice_minutes=handoff_notice_minutes,
            created_at=rt.clock.now(),
        )
        s.add(row)
        s.flush()
        if handoff_notice_minutes is None:
            # An INSERT of None takes the column default; only an UPDATE stores "off".
            row.handoff_notice_minutes = None
        return row.id


def team(rt: Runtime, slug: str, members: list[int]) -> int:
    with rt.factory() as s, s.begin():
        row = Team(slug=slug, name=slug.title(), created_at=rt.clock.now())
        s.add(row)
        s.flush()
        s.add_all([TeamMember(team_id=row.id, user_id=m) for m in members])
        return row.id


def layer(
    members: list[int],
    start: str = "2026-01-05T09:00",
    *,
    name: str = "Primary",
    length: int = 1,
    unit: str = "weeks",
    restrictions: list[dict[str, Any]] | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "members": members,
        "start_local": start,
        "end_local": end,
        "rotation_length": length,
        "rotation_unit": unit,
        "restrictions": restrictions or [],
    }


def schedule(
    rt: Runtime, slug: str, layers: list[dict[str, Any]], *, time_zone: str = "UTC"
) -> int:
    with rt.factory() as s, s.begin():
        row = Schedule(slug=slug, name=slug.title(), time_zone=time_zone, created_at=rt.clock.now())
        s.add(row)
        s.flush()
        for position, fields in enumerate(layers):
            s.add(ScheduleLayer(schedule_id=row.id, position=position, **fields))
        return row.id


def override(rt: Runtime, schedule_id: int, user_id: int, start: datetime, end: datetime) -> None:
    with rt.factory() as s, s.begin():
        s.add(
            ScheduleOverride(
                schedule_id=schedule_id,
                user_id=user_id,
                start_at=start,
                end_at=end,
                created_at=rt.clock.now(),
            )
        )


def policy(
    rt: Runtime,
    slug: str,
    levels: list[tuple[int, list[tuple[str, int]]]],
    *,
    repeat: int = 0,
    team_id: int | None = None,
) -> int:
    """levels: [(delay_minutes, [("user" | "schedule" | "team", id), ...]), ...]"""
    with rt.factory() as s, s.begin():
        row = EscalationPolicy(
            slug=slug, name=slug.title(), repeat=repeat, team_id=team_id, created_at=rt.clock.now()
        )
        s.add(row)
        s.flush()
        for position, (delay, targets) in enumerate(levels):
            s.add(
                EscalationLevel(
                    policy_id=row.id,
                    position=position,
                    delay_minutes=delay,
                    targets=[{"type": kind, "id": ident} for kind, ident in targets],
                )
            )
        return row.id


def service(
    rt: Runtime,
    slug: str,
    *,
    policy_slug: str | None = None,
    urgency: str = "high",
    team_id: int | None = None,
    support_hours: dict[str, Any] | None = None,
    **fields: Any,
) -> int:
    with rt.factory() as s, s.begin():
        row = Service(
            slug=slug,
            name=slug.title(),
            team_id=team_id,
            escalation_policy=policy_slug,
            urgency=urgency,
            support_hours=support_hours,
            grouping={"type": "none"},
            created_at=rt.clock.now(),
            **fields,
        )
        s.add(row)
        s.flush()
        return row.id


def get(session: Session, model: type[Any], ident: int) -> Any:
    return session.get_one(model, ident)


def email_method(rt: Runtime, user_id: int) -> int:
    """An enabled e-mail contact method; a user without notification rules is paged on it."""
    with rt.factory() as s, s.begin():
        row = ContactMethod(
            user_id=user_id,
            name="work email",
            kind="email",
            secret={"address": f"user{user_id}@example.com", "options": {}},
            display=f"user{user_id}@example.com",
            enabled=True,
            created_at=rt.clock.now(),
        )
        s.add(row)
        s.flush()
        return row.id
