"""The owning team that services, schedules and escalation policies name by slug: checked
against the files, shown as a slug in plans and exports, stored as an id."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tocsin.config.located import Locator
from tocsin.config.problems import Problem
from tocsin.orgs.models import Team


def unknown_team(
    at: Locator, section: str, index: int, team: str | None, defined: set[str]
) -> list[Problem]:
    """A problem when item ``index`` of ``section`` names a team no file defines."""
    if team is None or team in defined:
        return []
    message = f"unknown team {team!r}: no file lists it under 'teams'"
    return [at.problem(section, index, ("team",), message)]


def team_slugs(session: Session) -> dict[int, str]:
    return {tid: slug for tid, slug in session.execute(sa.select(Team.id, Team.slug))}


def slug_of(team_slugs: dict[int, str], team_id: int | None) -> str | None:
    return team_slugs.get(team_id) if team_id is not None else None


def team_id(session: Session, slug: str | None) -> int | None:
    """The id of a team the files name (teams are applied first, and checked to exist)."""
    if slug is None:
        return None
    return session.scalars(sa.select(Team.id).where(Team.slug == slug)).one()
