"""schedules: layers of rotations in a time zone. Layers are set exactly as listed.

Overrides are operational (someone takes a shift for a colleague) and belong to the API: apply
never creates, changes or deletes them, except that deleting a schedule deletes its overrides.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import Session

from tocsin.config.located import Locator
from tocsin.config.models import OrgConfig, ScheduleSpec
from tocsin.config.plan import Change, Context, FieldChange, create_or_update, diff_fields
from tocsin.config.problems import Problem
from tocsin.config.sections.base import ExportNotes
from tocsin.config.sections.owner import slug_of, team_id, team_slugs, unknown_team
from tocsin.oncall.definitions import LayerIn, check_layers, restriction_in
from tocsin.oncall.models import Schedule
from tocsin.oncall.store import LayerView, layer_views, set_layers


def _layer(layer: LayerIn) -> dict[str, Any]:
    return layer.model_dump(mode="json", exclude_defaults=True)


def _stored_layer(view: LayerView) -> dict[str, Any]:
    """A stored layer in the files' shape, so that it compares with what the files say."""
    return _layer(
        LayerIn.model_validate(
            {
                "name": view.name,
                "members": view.members,
                "start": view.start,
                "rotation": {"length": view.rotation_length, "unit": view.rotation_unit},
                "restrictions": [restriction_in(r).model_dump() for r in view.restrictions],
                "end": view.end,
            }
        )
    )


def _desired(spec: ScheduleSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "time_zone": spec.time_zone,
        "team": spec.team,
        "layers": [_layer(layer) for layer in spec.layers],
    }


def _layer_changes(current: list[dict[str, Any]], desired: list[dict[str, Any]]) -> list[Any]:
    """Layer by layer, so a plan says which layer changes and how."""
    old = {layer["name"]: layer for layer in current}
    new = {layer["name"]: layer for layer in desired}
    out: list[FieldChange] = []
    for name, layer in new.items():
        before = old.get(name)
        if before is None:
            out.append(FieldChange(f"layers.{name}", None, layer))
            continue
        for key in sorted(set(before) | set(layer)):
            if before.get(key) != layer.get(key):
                out.append(FieldChange(f"layers.{name}.{key}", before.get(key), layer.get(key)))
    for name, layer in old.items():
        if name not in new:
            out.append(FieldChange(f"layers.{name}", layer, None))
    if not out and [n["name"] for n in current] != [n["name"] for n in desired]:
        out.append(
            FieldChange("layers", [n["name"] for n in current], [n["name"] for n in desired])
        )
    return out


class SchedulesSection:
    key = "schedules"
    kind = "schedule"
    id_field = "slug"

    def identity(self, item: Any) -> str:
        spec: ScheduleSpec = item
        return spec.slug

    def check(self, config: OrgConfig, at: Locator) -> list[Problem]:
        problems: list[Problem] = []
        teams = {t.slug for t in config.teams}
        users = {u.username for u in config.users}
        for index, schedule in enumerate(config.schedules):
            problems += unknown_team(at, self.key, index, schedule.team, teams)
            for position, layer in enumerate(schedule.layers):
                for member_index, member in enumerate(layer.members):
                    if member not in users:
                        problems.append(
                            at.problem(
                                "schedules",
                                index,
                                ("layers", position, "members", member_index),
                                f"unknown user {member!r}: no file lists it under 'users'",
                            )
                        )
            try:
                check_layers(schedule.time_zone, schedule.layers)
            except ValueError as exc:
                problems.append(at.problem("schedules", index, ("layers",), str(exc)))
        return problems

    def plan(self, session: Session, config: OrgConfig, ctx: Context) -> list[Change]:
        rows = {s.slug: s for s in session.scalars(sa.select(Schedule))}
        views = layer_views(session, list(rows.values()))
        teams = team_slugs(session)
        changes: list[Change] = []
        if ctx.prune:
            wanted = {s.slug for s in config.schedules}
            for slug in sorted(set(rows) - wanted):
                changes.append(
                    Change(
                        "schedule",
                        "delete",
                        slug,
                        note="also deletes its overrides",
                        target_id=rows[slug].id,
                    )
                )
        for spec in config.schedules:
            desired = _desired(spec)
            layers = desired.pop("layers")
            row = rows.get(spec.slug)
            current, current_layers = {}, []
            if row is not None:
                current = {
                    "name": row.name,
                    "description": row.description,
                    "time_zone": row.time_zone,
                    "team": slug_of(teams, row.team_id),
                }
                current_layers = [_stored_layer(v) for v in views[row.id]]
            fields = diff_fields(current, desired) + _layer_changes(current_layers, layers)
            changes += create_or_update(
                "schedule",
                spec.slug,
                fields,
                target_id=row.id if row is not None else None,
                desired={"spec": spec},
            )
        return changes

    def execute(self, session: Session, change: Change, ctx: Context) -> None:
        if change.action == "delete":
            session.delete(session.get_one(Schedule, change.target_id))
            return
        spec: ScheduleSpec = change.desired["spec"]
        owner = team_id(session, spec.team)
        if change.action == "create":
            row = Schedule(slug=spec.slug, created_at=ctx.now, name=spec.name, time_zone="UTC")
            session.add(row)
        else:
            row = session.get_one(Schedule, change.target_id)
        row.name = spec.name
        row.description = spec.description
        row.time_zone = spec.time_zone
        row.team_id = owner
        session.flush()
        set_layers(session, row, spec.layers)

    def export(self, session: Session, notes: ExportNotes) -> list[BaseModel]:
        rows = list(session.scalars(sa.select(Schedule).order_by(Schedule.slug)))
        views = layer_views(session, rows)
        teams = team_slugs(session)
        return [
            ScheduleSpec(
                slug=row.slug,
                name=row.name,
                description=row.description,
                time_zone=row.time_zone,
                team=slug_of(teams, row.team_id),
                layers=[LayerIn.model_validate(_stored_layer(v)) for v in views[row.id]],
            )
            for row in rows
        ]
