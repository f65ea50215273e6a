"""teams: groups of users that own services. Membership is set exactly as listed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import Session

from tocsin.config.located import Locator
from tocsin.config.models import OrgConfig, TeamSpec
from tocsin.config.plan import Change, Context, FieldChange, diff_fields
from tocsin.config.problems import Problem
from tocsin.config.sections.base import ExportNotes
from tocsin.orgs.models import Team, TeamMember, User


def _desired(spec: TeamSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "members": sorted(spec.members)}


def _members(session: Session) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    rows = session.execute(
        sa.select(TeamMember.team_id, User.username).join(User, User.id == TeamMember.user_id)
    )
    for team_id, username in rows:
        out.setdefault(team_id, []).append(username)
    return {team_id: sorted(names) for team_id, names in out.items()}


class TeamsSection:
    key = "teams"
    kind = "team"
    id_field = "slug"

    def identity(self, item: Any) -> str:
        spec: TeamSpec = item
        return spec.slug

    def check(self, config: OrgConfig, at: Locator) -> list[Problem]:
        problems: list[Problem] = []
        users = {u.username for u in config.users}
        for index, team in enumerate(config.teams):
            seen: set[str] = set()
            for position, member in enumerate(team.members):
                if member not in users:
                    problems.append(
                        at.problem(
                            "teams",
                            index,
                            ("members", position),
                            f"unknown user {member!r}: no file lists it under 'users'",
                        )
                    )
                if member in seen:
                    problems.append(
                        at.problem(
                            "teams", index, ("members", position), f"{member!r} is listed twice"
                        )
                    )
                seen.add(member)
        return problems

    def plan(self, session: Session, config: OrgConfig, ctx: Context) -> list[Change]:
        rows = {t.slug: t for t in session.scalars(sa.select(Team))}
        members = _members(session)
        changes: list[Change] = []
        if ctx.prune:
            wanted = {t.slug for t in config.teams}
            for slug in sorted(set(rows) - wanted):
                changes.append(Change("team", "delete", slug, target_id=rows[slug].id))
        for spec in config.teams:
            desired = _desired(spec)
            row = rows.get(spec.slug)
            if row is None:
                fields = tuple(FieldChange(k, None, v) for k, v in desired.items() if v)
                changes.append(Change("team", "create", spec.slug, fields, desired=desired))
                continue
            current = {
                "name": row.name,
                "description": row.description,
                "members": members.get(row.id, []),
            }
            if diff := diff_fields(current, desired):
                changes.append(
                    Change(
                        "team", "update", spec.slug, tuple(diff), target_id=row.id, desired=desired
                    )
                )
        return changes

    def execute(self, session: Session, change: Change, ctx: Context) -> None:
        if change.action == "delete":
            session.delete(session.get_one(Team, change.target_id))
            return
        if change.action == "create":
            team = Team(
                slug=change.name,
                name=change.desired["name"],
                description=change.desired["description"],
                created_at=ctx.now,
            )
            session.add(team)
            session.flush()
        else:
            team = session.get_one(Team, change.target_id)
            team.name = change.desired["name"]
            team.description = change.desired["description"]
        wanted = set(change.desired["members"])
        user_ids = {
            name: uid
            for name, uid in session.execute(
                sa.select(User.username, User.id).where(User.username.in_(wanted))
            )
        }
        current = {
            m.user_id: m
            for m in session.scalars(sa.select(TeamMember).where(TeamMember.team_id == team.id))
        }
        wanted_ids = {user_ids[name] for name in wanted}
        for user_id, membership in current.items():
            if user_id not in wanted_ids:
                session.delete(membership)
        for user_id in wanted_ids - set(current):
            session.add(TeamMember(team_id=team.id, user_id=user_id))

    def export(self, session: Session, notes: ExportNotes) -> list[BaseModel]:
        members = _members(session)
        return [
            TeamSpec(
                slug=t.slug,
                name=t.name,
                description=t.description,
                members=members.get(t.id, []),
            )
            for t in session.scalars(sa.select(Team).order_by(Team.slug))
        ]
