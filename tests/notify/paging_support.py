"""Building blocks for the outbox tests: people, contact methods, rules, incidents, pages."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa

from tests.conftest import Org
from tocsin.incidents import service as incidents
from tocsin.incidents.models import Incident, TimelineEntry
from tocsin.notify.channels.base import Target
from tocsin.notify.channels.recording import RecordingChannel
from tocsin.notify.channels_config import ChannelSet
from tocsin.notify.models import ContactMethod, Notification, NotificationRule
from tocsin.notify.pages import page_user
from tocsin.orgs.models import Service, User
from tocsin.runtime import Runtime


def use_recording(rt: Runtime) -> RecordingChannel:
    channel = RecordingChannel()
    rt.dispatcher.channels = ChannelSet.every_kind(channel)
    return channel


def add_user(rt: Runtime, username: str, *, role: str = "responder") -> int:
    with rt.factory() as s, s.begin():
        user = User(
            username=username,
            name=username.title(),
            email=f"{username}@example.com",
            role=role,
            created_at=rt.clock.now(),
        )
        s.add(user)
        s.flush()
        return user.id


def add_method(
    rt: Runtime,
    user_id: int,
    kind: str,
    address: str,
    *,
    name: str | None = None,
    enabled: bool = True,
    options: dict[str, Any] | None = None,
) -> int:
    with rt.factory() as s, s.begin():
        method = ContactMethod(
            user_id=user_id,
            name=name or f"{kind} {hashlib.sha256(address.encode()).hexdigest()[:8]}",
            kind=kind,
            secret={"address": address, "options": options or {}},
            display=Target(kind, address).display_address(),  # type: ignore[arg-type]
            enabled=enabled,
            created_at=rt.clock.now(),
        )
        s.add(method)
        s.flush()
        return method.id


def add_rule(
    rt: Runtime, user_id: int, method_id: int, delay_minutes: int, *, urgency: str = "high"
) -> int:
    with rt.factory() as s, s.begin():
        rule = NotificationRule(
            user_id=user_id,
            urgency=urgency,
            delay_minutes=delay_minutes,
            contact_method_id=method_id,
        )
        s.add(rule)
        s.flush()
        return rule.id


def open_incident(
    rt: Runtime, org: Org, title: str = "Disk full on db-1", *, urgency: str | None = None
) -> int:
    with rt.factory() as s, s.begin():
        incident = incidents.open_incident(
            s,
            service=s.get_one(Service, org.service_id),
            title=title,
            severity="critical",
            now=rt.clock.now(),
            actor="integration:test",
            urgency=urgency,
        )
        return incident.id


def page(rt: Runtime, incident_id: int, user_id: int, *, level: int = 1, loop: int = 0) -> int:
    with rt.factory() as s, s.begin():
        return page_user(
            s,
            incident=s.get_one(Incident, incident_id),
            user_id=user_id,
            level=level,
            loop=loop,
            now=rt.clock.now(),
            reason=f"escalation level {level}",
        )


def acknowledge(rt: Runtime, incident_id: int, actor: str = "user:bob") -> None:
    with rt.factory() as s, s.begin():
        incidents.acknowledge(
            s,
            s.get_one(Incident, incident_id, with_for_update=True),
            now=rt.clock.now(),
            actor=actor,
        )


def resolve(rt: Runtime, incident_id: int, actor: str = "user:bob") -> None:
    with rt.factory() as s, s.begin():
        incidents.resolve(
            s,
            s.get_one(Incident, incident_id, with_for_update=True),
            now=rt.clock.now(),
            actor=actor,
        )


def notifications(rt: Runtime, **where: Any) -> list[Notification]:
    with rt.factory() as s:
        stmt = sa.select(Notification).order_by(Notification.id)
        for column, value in where.items():
            stmt = stmt.where(getattr(Notification, column) == value)
        return list(s.scalars(stmt))


def notification(rt: Runtime, notification_id: int) -> Notification:
    with rt.factory() as s:
        return s.get_one(Notification, notification_id)


def entries(rt: Runtime, incident_id: int, prefix: str = "notification.") -> list[TimelineEntry]:
    with rt.factory() as s:
        return list(
            s.scalars(
                sa.select(TimelineEntry)
                .where(
                    TimelineEntry.incident_id == incident_id,
                    TimelineEntry.kind.startswith(prefix),
                )
                .order_by(TimelineEntry.id)
            )
        )


def kinds(rt: Runtime, incident_id: int) -> list[str]:
    return [e.kind for e in entries(rt, incident_id)]


def incident(rt: Runtime, incident_id: int) -> Incident:
    with rt.factory() as s:
        return s.get_one(Incident, incident_id)
