"""Who is on call, read from the database: schedules, escalation policies, services, teams.

The stored rows become the renderer's specs (tocsin.oncall.rendering) with user ids as the user
identifiers; every question loads what it needs in a few bulk queries (layers, the overrides
that can matter for the instant or window asked about, active users, team members), whatever
the number of schedules, and then answers with `on_call_at` or `render`.

Inactive users: a deactivated user keeps their place in rotations and overrides, and the time
they hold resolves to nobody. It shows as a gap (`service_gaps`, the rendered shifts) instead of
silently handing the turn to someone who does not expect it; fixing the rotation is the cure.
The same holds for a user target in an escalation level and for team members: only active users
are ever on call or paged. A user id that no longer exists counts as inactive.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tocsin.oncall.models import EscalationLevel, EscalationPolicy, Schedule, ScheduleLayer
from tocsin.oncall.models import ScheduleOverride as OverrideRow
from tocsin.oncall.rendering import (
    LayerSpec,
    Override,
    Restriction,
    RotationUnit,
    ScheduleSpec,
    Shift,
    on_call_at,
    render,
)
from tocsin.orgs.models import Service, Team, TeamMember, User

log = logging.getLogger(__name__)

Interval = tuple[datetime, datetime]
# Keeps IN lists well below every driver's limit on bound parameters.
_CHUNK = 5000


@dataclass(frozen=True)
class LevelOnCall:
    """Who one escalation level reaches: `user_ids` in target order, without repeats."""

    position: int
    delay_minutes: int
    user_ids: list[int]


# --------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------


def schedule_spec(
    session: Session,
    schedule: Schedule,
    start: datetime | None = None,
    end: datetime | None = None,
) -> ScheduleSpec:
    """The schedule as a renderer spec: layers in position order, user ids as identifiers.

    With a window, only the overrides that overlap [start, end) are included (all that can
    change the answer there); without one, all of them. Inactive users are still in the spec;
    `schedule_on_call` and `schedule_shifts` are the functions that drop them.
    """
    if start is None or end is None:
        overrides = list(
            session.scalars(
                sa.select(OverrideRow)
                .where(OverrideRow.schedule_id == schedule.id)
                .order_by(OverrideRow.id)
            )
        )
    else:
        overrides = _overrides(session, [schedule.id], start, end).get(schedule.id, [])
    return build_spec(schedule, _layers(session, [schedule.id])[schedule.id], overrides)


def build_spec(
    schedule: Schedule, layers: Sequence[ScheduleLayer], overrides: Sequence[OverrideRow]
) -> ScheduleSpec:
    """Rows to spec, without queries. Raises ValueError naming the schedule when a stored row
    does not make a valid spec."""
    try:
        specs = [
            _layer_spec(row) for row in sorted(layers, key=lambda r: r.position) if row.members
        ]
        return ScheduleSpec(
            name=schedule.name,
            time_zone=schedule.time_zone,
            layers=specs,
            overrides=[Override(o.user_id, o.start_at, o.end_at) for o in overrides],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"schedule {schedule.slug!r} cannot be rendered: {exc}") from exc


def _layer_spec(row: ScheduleLayer) -> LayerSpec:
    return LayerSpec(
        name=row.name,
        users=[int(u) for u in row.members],
        start=datetime.fromisoformat(row.start_local),
        rotation_length=row.rotation_length,
        rotation_unit=cast(RotationUnit, row.rotation_unit),
        restrictions=[_restriction(r) for r in row.restrictions or []],
        end=datetime.fromisoformat(row.end_local) if row.end_local else None,
    )


def _spec_or_none(
    schedule: Schedule, layers: Sequence[ScheduleLayer], overrides: Sequence[OverrideRow]
) -> ScheduleSpec | None:
    """One unreadable schedule must not stop questions about all the others (or an escalation
    from paging its other targets): it has nobody on call, which shows as a gap."""
    try:
        return build_spec(schedule, layers, overrides)
    except ValueError:
        log.warning(
            "schedule %s has nobody on call: it cannot be rendered", schedule.slug, exc_info=True
        )
        return None


def _restriction(stored: dict[str, Any]) -> Restriction:
    if stored.get("kind") == "weekly":
        return Restriction.weekly(
            stored["start_weekday"], stored["start"], stored["end_weekday"], stored["end"]
        )
    if stored.get("kind") == "daily":
        return Restriction.daily(stored["start"], stored["end"])
    raise ValueError(f"unknown restriction kind {stored.get('kind')!r}")


def schedule_on_call(session: Session, schedule: Schedule, at: datetime) -> int | None:
    """The active user on call at `at`, or None."""
    return schedules_on_call(session, [schedule], at)[schedule.id]


def schedules_on_call(
    session: Session, schedules: Sequence[Schedule], at: datetime
) -> dict[int, int | None]:
    """Who is on call at `at` in each schedule, by schedule id: three queries in all."""
    at = _utc(at)
    ids = [s.id for s in schedules]
    layers = _layers(session, ids)
    overrides = _overrides(session, ids, at, at)
    answers: dict[int, int | None] = {}
    for schedule in schedules:
        spec = _spec_or_none(schedule, layers[schedule.id], overrides.get(schedule.id, []))
        user = None if spec is None else on_call_at(spec, at)
        answers[schedule.id] = None if user is None else int(user)
    active = _active(session, (u for u in answers.values() if u is not None))
    return {sid: (u if u in active else None) for sid, u in answers.items()}


def schedule_shifts(
    session: Session, schedule: Schedule, start: datetime, end: datetime
) -> list[Shift]:
    """The final shifts over [start, end) (UTC); time held by inactive users is left out."""
    return schedules_shifts(session, [schedule], start, end)[schedule.id]


def schedules_shifts(
    session: Session, schedules: Sequence[Schedule], start: datetime, end: datetime
) -> dict[int, list[Shift]]:
    start, end = _utc(start), _utc(end)
    ids = [s.id for s in schedules]
    layers = _layers(session, ids)
    overrides = _overrides(session, ids, start, end)
    rendered: dict[int, list[Shift]] = {}
    for schedule in schedules:
        spec = _spec_or_none(schedule, layers[schedule.id], overrides.get(schedule.id, []))
        rendered[schedule.id] = [] if spec is None else render(spec, start, end)
    active = _active(session, (int(x.user) for shifts in rendered.values() for x in shifts))
    return {sid: [x for x in shifts if int(x.user) in active] for sid, shifts in rendered.items()}


# --------------------------------------------------------------------------------------------
# Policies, services, teams
# --------------------------------------------------------------------------------------------


def policy_by_slug(session: Session, slug: str | None) -> EscalationPolicy | None:
    if not slug:
        return None
    return session.scalars(
        sa.select(EscalationPolicy).where(EscalationPolicy.slug == slug)
    ).one_or_none()


def policy_levels(session: Session, policy: EscalationPolicy) -> list[EscalationLevel]:
    """The policy's levels, first level first, read fresh from the database."""
    return list(
        session.scalars(
            sa.select(EscalationLevel)
            .where(EscalationLevel.policy_id == policy.id)
            .order_by(EscalationLevel.position)
        )
    )


def targets_on_call(
    session: Session, target_lists: Sequence[Sequence[dict[str, Any]]], at: datetime
) -> list[list[int]]:
    """Resolve each list of level targets to active user ids at `at`: a user is that user, a
    schedule whoever is on call, a team all its active members. Bulk: one query per kind."""
    at = _utc(at)
    wanted: dict[str, set[int]] = {"user": set(), "schedule": set(), "team": set()}
    for targets in target_lists:
        for target in targets:
            kind, ident = _target(target)
            if kind in wanted:
                wanted[kind].add(ident)
    schedules = list(
        session.scalars(sa.select(Schedule).where(Schedule.id.in_(wanted["schedule"])))
        if wanted["schedule"]
        else []
    )
    on_call = schedules_on_call(session, schedules, at)
    members = team_members(session, wanted["team"])
    users = _active(session, wanted["user"])
    result: list[list[int]] = []
    for targets in target_lists:
        found: list[int] = []
        for target in targets:
            kind, ident = _target(target)
            if kind == "user":
                candidates = [ident] if ident in users else []
            elif kind == "schedule":
                person = on_call.get(ident)
                candidates = [] if person is None else [person]
            elif kind == "team":
                candidates = members.get(ident, [])
            else:
                candidates = []
            found.extend(u for u in candidates if u not in found)
        result.append(found)
    return result


def policy_on_call(session: Session, policy: EscalationPolicy, at: datetime) -> list[LevelOnCall]:
    levels = policy_levels(session, policy)
    reached = targets_on_call(session, [level.targets or [] for level in levels], at)
    return [
        LevelOnCall(level.position, level.delay_minutes, users)
        for level, users in zip(levels, reached, strict=True)
    ]


def service_on_call(session: Session, service: Service, at: datetime) -> list[LevelOnCall]:
    """The service's policy, level by level; [] when it has none (or names one that is gone)."""
    policy = policy_by_slug(session, service.escalation_policy)
    return [] if policy is None else policy_on_call(session, policy, at)


def team_on_call(session: Session, team: Team, at: datetime) -> dict[str, list[LevelOnCall]]:
    """By policy slug: the policies the team owns and those its services escalate through."""
    slugs = set(
        session.scalars(sa.select(EscalationPolicy.slug).where(EscalationPolicy.team_id == team.id))
    )
    slugs.update(
        s
        for s in session.scalars(
            sa.select(Service.escalation_policy).where(Service.team_id == team.id)
        )
        if s
    )
    policies = session.scalars(
        sa.select(EscalationPolicy)
        .where(EscalationPolicy.slug.in_(slugs))
        .order_by(EscalationPolicy.slug)
    )
    return {p.slug: policy_on_call(session, p, at) for p in policies}


def service_gaps(
    session: Session, service: Service, start: datetime, end: datetime
) -> list[Interval]:
    """The periods in [start, end) in which the first loop of the service's policy would
    reach nobody at any level (UTC). Without a policy the whole window is a gap.

    Coverage is the union over all levels' targets: an active user target covers always, a
    team target covers when the team has an active member, a schedule covers its shifts.
    """
    start, end = _utc(start), _utc(end)
    if end <= start:
        return []
    policy = policy_by_slug(session, service.escalation_policy)
    if policy is None:
        return [(start, end)]
    targets = [t for level in policy_levels(session, policy) for t in level.targets or []]
    kinds: dict[str, set[int]] = {"user": set(), "schedule": set(), "team": set()}
    for target in targets:
        kind, ident = _target(target)
        if kind in kinds:
            kinds[kind].add(ident)
    if _active(session, kinds["user"]) or any(team_members(session, kinds["team"]).values()):
        return []
    schedules = list(
        session.scalars(sa.select(Schedule).where(Schedule.id.in_(kinds["schedule"])))
        if kinds["schedule"]
        else []
    )
    covered = _union(
        (shift.start, shift.end)
        for shifts in schedules_shifts(session, schedules, start, end).values()
        for shift in shifts
    )
    return _complement(covered, start, end)


# --------------------------------------------------------------------------------------------
# Bulk loading
# --------------------------------------------------------------------------------------------


def team_members(session: Session, team_ids: Iterable[int]) -> dict[int, list[int]]:
    """Active members of each team, by team id (user ids in id order)."""
    ids = sorted(set(team_ids))
    found: dict[int, list[int]] = {t: [] for t in ids}
    for chunk in _chunks(ids):
        rows = session.execute(
            sa.select(TeamMember.team_id, TeamMember.user_id)
            .join(User, User.id == TeamMember.user_id)
            .where(TeamMember.team_id.in_(chunk), User.active.is_(True))
            .order_by(TeamMember.team_id, TeamMember.user_id)
        )
        for team_id, user_id in rows:
            found[team_id].append(user_id)
    return found


def active_users(session: Session, user_ids: Iterable[int]) -> set[int]:
    """The ids among `user_ids` of users that exist and are active."""
    return _active(session, user_ids)


def _active(session: Session, user_ids: Iterable[int]) -> set[int]:
    ids = sorted(set(user_ids))
    found: set[int] = set()
    for chunk in _chunks(ids):
        found.update(
            session.scalars(sa.select(User.id).where(User.id.in_(chunk), User.active.is_(True)))
        )
    return found


def _layers(session: Session, schedule_ids: Sequence[int]) -> dict[int, list[ScheduleLayer]]:
    found: dict[int, list[ScheduleLayer]] = {sid: [] for sid in schedule_ids}
    for chunk in _chunks(sorted(set(schedule_ids))):
        for row in session.scalars(
            sa.select(ScheduleLayer)
            .where(ScheduleLayer.schedule_id.in_(chunk))
            .order_by(ScheduleLayer.schedule_id, ScheduleLayer.position)
        ):
            found[row.schedule_id].append(row)
    return found


def _overrides(
    session: Session, schedule_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, list[OverrideRow]]:
    """Overrides overlapping [start, end), or covering `start` when the window is an instant;
    in creation order, so a later override wins where two overlap."""
    starts_before = OverrideRow.start_at <= start if start == end else OverrideRow.start_at < end
    found: dict[int, list[OverrideRow]] = {}
    for chunk in _chunks(sorted(set(schedule_ids))):
        for row in session.scalars(
            sa.select(OverrideRow)
            .where(OverrideRow.schedule_id.in_(chunk), OverrideRow.end_at > start, starts_before)
            .order_by(OverrideRow.id)
        ):
            found.setdefault(row.schedule_id, []).append(row)
    return found


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


def _target(target: dict[str, Any]) -> tuple[str, int]:
    try:
        return str(target["type"]), int(target["id"])
    except (KeyError, TypeError, ValueError):
        return "invalid", 0


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instants must be timezone-aware")
    return instant.astimezone(UTC)


def _union(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def _complement(covered: list[Interval], start: datetime, end: datetime) -> list[Interval]:
    gaps: list[Interval] = []
    cursor = start
    for a, b in covered:
        if a > cursor:
            gaps.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < end:
        gaps.append((cursor, end))
    return gaps
