"""escalation_policies: who is paged, level after level. Levels are set exactly as listed;
targets name users, schedules and teams defined in the files."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import Session

from tocsin.config.located import Locator
from tocsin.config.models import EscalationPolicySpec, LevelSpec, OrgConfig, TargetSpec
from tocsin.config.plan import Change, Context, FieldChange, create_or_update, diff_fields
from tocsin.config.problems import Problem
from tocsin.config.sections.base import ExportNotes
from tocsin.config.sections.owner import slug_of, team_id, team_slugs, unknown_team
from tocsin.oncall.models import EscalationPolicy
from tocsin.oncall.store import LevelDef, TargetRef, level_defs, set_levels

_SECTION_OF = {"user": "users", "schedule": "schedules", "team": "teams"}


def _levels(spec: EscalationPolicySpec) -> list[dict[str, Any]]:
    return [
        {
            "delay_minutes": level.delay_minutes,
            "targets": [dict([t.ref()]) for t in level.targets],
        }
        for level in spec.levels
    ]


def _stored_levels(levels: list[LevelDef]) -> list[dict[str, Any]]:
    return [
        {
            "delay_minutes": level.delay_minutes,
            "targets": [{t.type: t.name} for t in level.targets],
        }
        for level in levels
    ]


def _desired(spec: EscalationPolicySpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "team": spec.team,
        "repeat": spec.repeat,
        "levels": _levels(spec),
    }


def _level_changes(current: list[dict[str, Any]], desired: list[dict[str, Any]]) -> list[Any]:
    out: list[FieldChange] = []
    for number in range(1, max(len(current), len(desired)) + 1):
        old = current[number - 1] if number <= len(current) else None
        new = desired[number - 1] if number <= len(desired) else None
        if old != new:
            out.append(FieldChange(f"levels[{number}]", old, new))
    return out


class EscalationPoliciesSection:
    key = "escalation_policies"
    kind = "escalation policy"
    id_field = "slug"

    def identity(self, item: Any) -> str:
        spec: EscalationPolicySpec = item
        return spec.slug

    def check(self, config: OrgConfig, at: Locator) -> list[Problem]:
        problems: list[Problem] = []
        defined = {
            "user": {u.username for u in config.users},
            "schedule": {s.slug for s in config.schedules},
            "team": {t.slug for t in config.teams},
        }
        for index, policy in enumerate(config.escalation_policies):
            problems += unknown_team(at, self.key, index, policy.team, defined["team"])
            for number, level in enumerate(policy.levels):
                seen: set[tuple[str, str]] = set()
                for position, target in enumerate(level.targets):
                    kind, name = target.ref()
                    where = ("levels", number, "targets", position, kind)
                    if name not in defined[kind]:
                        problems.append(
                            at.problem(
                                "escalation_policies",
                                index,
                                where,
                                f"unknown {kind} {name!r}: no file lists it under "
                                f"'{_SECTION_OF[kind]}'",
                            )
                        )
                    if (kind, name) in seen:
                        problems.append(
                            at.problem(
                                "escalation_policies",
                                index,
                                where,
                                f"{kind} {name!r} is listed twice in this level",
                            )
                        )
                    seen.add((kind, name))
        return problems

    def plan(self, session: Session, config: OrgConfig, ctx: Context) -> list[Change]:
        rows = {p.slug: p for p in session.scalars(sa.select(EscalationPolicy))}
        stored = level_defs(session, list(rows.values()))
        teams = team_slugs(session)
        changes: list[Change] = []
        if ctx.prune:
            wanted = {p.slug for p in config.escalation_policies}
            for slug in sorted(set(rows) - wanted):
                changes.append(Change("escalation policy", "delete", slug, target_id=rows[slug].id))
        for spec in config.escalation_policies:
            desired = _desired(spec)
            levels = desired.pop("levels")
            row = rows.get(spec.slug)
            current, current_levels = {}, []
            if row is not None:
                current = {
                    "name": row.name,
                    "description": row.description,
                    "team": slug_of(teams, row.team_id),
                    "repeat": row.repeat,
                }
                current_levels = _stored_levels(stored[row.id])
            fields = diff_fields(current, desired) + _level_changes(current_levels, levels)
            changes += create_or_update(
                "escalation policy",
                spec.slug,
                fields,
                target_id=row.id if row is not None else None,
                desired={"spec": spec},
            )
        return changes

    def execute(self, session: Session, change: Change, ctx: Context) -> None:
        if change.action == "delete":
            session.delete(session.get_one(EscalationPolicy, change.target_id))
            return
        spec: EscalationPolicySpec = change.desired["spec"]
        if change.action == "create":
            row = EscalationPolicy(slug=spec.slug, name=spec.name, created_at=ctx.now)
            session.add(row)
        else:
            row = session.get_one(EscalationPolicy, change.target_id)
        row.name = spec.name
        row.description = spec.description
        row.repeat = spec.repeat
        row.team_id = team_id(session, spec.team)
        session.flush()
        set_levels(
            session,
            row,
            [
                LevelDef(level.delay_minutes, [TargetRef(*t.ref()) for t in level.targets])
                for level in spec.levels
            ],
        )

    def export(self, session: Session, notes: ExportNotes) -> list[BaseModel]:
        rows = list(session.scalars(sa.select(EscalationPolicy).order_by(EscalationPolicy.slug)))
        stored = level_defs(session, rows)
        teams = team_slugs(session)
        return [
            EscalationPolicySpec(
                slug=row.slug,
                name=row.name,
                description=row.description,
                team=slug_of(teams, row.team_id),
                repeat=row.repeat,
                levels=[
                    LevelSpec(
                        delay_minutes=level.delay_minutes,
                        targets=[
                            TargetSpec.model_validate({t.type: t.name}) for t in level.targets
                        ],
                    )
                    for level in stored[row.id]
                ],
            )
            for row in rows
        ]
