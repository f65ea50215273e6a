"""Writing and reading schedule layers and escalation levels by name: what the REST API and
the configuration files both do. Rows keep user, schedule and team ids; people use names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tocsin.oncall.definitions import LayerIn, stored_restriction
from tocsin.oncall.models import (
    EscalationLevel,
    EscalationPolicy,
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
)
from tocsin.orgs.models import Team, User

TARGET_TYPES = ("user", "schedule", "team")


class UnknownName(LookupError):
    """A name that refers to nothing: the message says which, and of what kind."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"no {kind} named {name!r}" if kind == "user" else f"no {kind} {name!r}")
        self.kind = kind
        self.name = name


# ---- names and ids --------------------------------------------------------------------------


def user_ids(session: Session, usernames: Iterable[str]) -> dict[str, int]:
    """Username -> id for every name; UnknownName for the first that does not exist."""
    wanted = list(dict.fromkeys(usernames))
    found: dict[str, int] = {}
    if wanted:
        rows = session.execute(sa.select(User.username, User.id).where(User.username.in_(wanted)))
        found = {name: uid for name, uid in rows}
    for name in wanted:
        if name not in found:
            raise UnknownName("user", name)
    return found


def usernames(session: Session, ids: Iterable[int]) -> dict[int, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.execute(sa.select(User.id, User.username).where(User.id.in_(wanted)))
    return {uid: name for uid, name in rows}


def _slugs(session: Session, model: Any, ids: Iterable[int]) -> dict[int, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.execute(sa.select(model.id, model.slug).where(model.id.in_(wanted)))
    return {row_id: slug for row_id, slug in rows}


def _ids_by_slug(session: Session, model: Any, kind: str, slugs: Iterable[str]) -> dict[str, int]:
    wanted = list(dict.fromkeys(slugs))
    found: dict[str, int] = {}
    if wanted:
        rows = session.execute(sa.select(model.slug, model.id).where(model.slug.in_(wanted)))
        found = {slug: row_id for slug, row_id in rows}
    for slug in wanted:
        if slug not in found:
            raise UnknownName(kind, slug)
    return found


# ---- schedule layers ------------------------------------------------------------------------


def set_layers(session: Session, schedule: Schedule, layers: Sequence[LayerIn]) -> None:
    """Make the schedule's layers exactly ``layers``, bottom first. A layer keeps its row (and
    id) when its name stays, so a rename of something else does not churn it."""
    ids = user_ids(session, (m for layer in layers for m in layer.members))
    existing = {row.name: row for row in schedule.layers}
    wanted = {layer.name for layer in layers}
    for name, row in existing.items():
        if name not in wanted:
            schedule.layers.remove(row)
    session.flush()
    for position, layer in enumerate(layers):
        row = existing.get(layer.name) or ScheduleLayer(name=layer.name, schedule=schedule)
        session.add(row)
        row.position = position
        row.start_local = layer.start
        row.end_local = layer.end
        row.rotation_length = layer.rotation.length
        row.rotation_unit = layer.rotation.unit
        row.members = [ids[m] for m in layer.members]
        row.restrictions = [stored_restriction(r) for r in layer.restrictions]
    session.flush()
    session.expire(schedule, ["layers"])


@dataclass(frozen=True)
class LayerView:
    """A stored layer with usernames; members whose user is gone are left out."""

    name: str
    members: list[str]
    start: str
    rotation_length: int
    rotation_unit: str
    restrictions: list[dict[str, Any]]
    end: str | None


def layer_views(session: Session, schedules: Sequence[Schedule]) -> dict[int, list[LayerView]]:
    rows = [layer for s in schedules for layer in s.layers]
    names = usernames(session, (m for layer in rows for m in layer.members))
    out: dict[int, list[LayerView]] = {s.id: [] for s in schedules}
    for s in schedules:
        for layer in sorted(s.layers, key=lambda r: r.position):
            out[s.id].append(
                LayerView(
                    name=layer.name,
                    members=[names[m] for m in layer.members if m in names],
                    start=layer.start_local,
                    rotation_length=layer.rotation_length,
                    rotation_unit=layer.rotation_unit,
                    restrictions=list(layer.restrictions or []),
                    end=layer.end_local,
                )
            )
    return out


def schedules_of_user(session: Session, user_id: int) -> list[Schedule]:
    """Schedules in which the user takes turns or has an override."""
    ids = {
        layer.schedule_id
        for layer in session.scalars(sa.select(ScheduleLayer))
        if user_id in (layer.members or [])
    }
    ids.update(
        session.scalars(
            sa.select(ScheduleOverride.schedule_id).where(ScheduleOverride.user_id == user_id)
        )
    )
    if not ids:
        return []
    return list(
        session.scalars(sa.select(Schedule).where(Schedule.id.in_(ids)).order_by(Schedule.id))
    )


# ---- escalation levels ----------------------------------------------------------------------


@dataclass(frozen=True)
class TargetRef:
    """A level's target by name: ("user", "alice"), ("schedule", "primary"), ("team", "sre")."""

    type: str
    name: str


@dataclass(frozen=True)
class LevelDef:
    delay_minutes: int
    targets: Sequence[TargetRef]


def resolve_targets(session: Session, refs: Iterable[TargetRef]) -> dict[TargetRef, int]:
    """Every target's id; UnknownName for the first that does not exist."""
    refs = list(refs)
    users = user_ids(session, (r.name for r in refs if r.type == "user"))
    schedules = _ids_by_slug(
        session, Schedule, "schedule", (r.name for r in refs if r.type == "schedule")
    )
    teams = _ids_by_slug(session, Team, "team", (r.name for r in refs if r.type == "team"))
    by_type = {"user": users, "schedule": schedules, "team": teams}
    return {r: by_type[r.type][r.name] for r in refs}


def set_levels(session: Session, policy: EscalationPolicy, levels: Sequence[LevelDef]) -> None:
    """Make the policy's levels exactly ``levels``, first level first (position 0)."""
    ids = resolve_targets(session, (t for level in levels for t in level.targets))
    rows = sorted(policy.levels, key=lambda r: r.position)
    for row in rows[len(levels) :]:
        policy.levels.remove(row)
    session.flush()
    for position, level in enumerate(levels):
        row = rows[position] if position < len(rows) else EscalationLevel(policy=policy)
        session.add(row)
        row.position = position
        row.delay_minutes = level.delay_minutes
        row.targets = [{"type": t.type, "id": ids[t]} for t in level.targets]
    session.flush()
    session.expire(policy, ["levels"])


def level_defs(session: Session, policies: Sequence[EscalationPolicy]) -> dict[int, list[LevelDef]]:
    """Stored levels with names; targets whose user, schedule or team is gone are left out."""
    levels = [level for p in policies for level in p.levels]
    ids: dict[str, set[int]] = {t: set() for t in TARGET_TYPES}
    for level in levels:
        for target in level.targets or []:
            if target.get("type") in ids:
                ids[target["type"]].add(int(target["id"]))
    names: dict[str, Mapping[int, str]] = {
        "user": usernames(session, ids["user"]),
        "schedule": _slugs(session, Schedule, ids["schedule"]),
        "team": _slugs(session, Team, ids["team"]),
    }
    out: dict[int, list[LevelDef]] = {p.id: [] for p in policies}
    for policy in policies:
        for level in sorted(policy.levels, key=lambda r: r.position):
            refs = [
                TargetRef(t["type"], names[t["type"]][int(t["id"])])
                for t in level.targets or []
                if t.get("type") in names and int(t["id"]) in names[t["type"]]
            ]
            out[policy.id].append(LevelDef(level.delay_minutes, refs))
    return out


def policies_targeting(session: Session, kind: str, target_id: int) -> list[str]:
    """Slugs of the policies with a level that targets this user, schedule or team."""
    found = []
    for policy in session.scalars(sa.select(EscalationPolicy).order_by(EscalationPolicy.slug)):
        for level in policy.levels:
            if any(
                t.get("type") == kind and int(t.get("id", 0)) == target_id
                for t in level.targets or []
            ):
                found.append(policy.slug)
                break
    return found
