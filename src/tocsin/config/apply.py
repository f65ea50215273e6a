"""Plan and apply a configuration on a database session.

Deletions (only with ``prune``) run first, in reverse dependency order, so that a slug, an
email or a key freed by a deleted object can be taken by a new one; then creations and
updates run in dependency order (users, teams, services), so references resolve.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from tocsin.config.located import LoadedConfig
from tocsin.config.plan import Change, Context, Plan
from tocsin.config.problems import ConfigError, Problem
from tocsin.config.sections import SECTIONS, Section


class PlanChanged(Exception):
    """The database changed between showing a plan and applying it."""


def _context(
    loaded: LoadedConfig, now: datetime, prune: bool, env: Mapping[str, str] | None
) -> Context:
    return Context(
        now=now,
        prune=prune,
        env=dict(os.environ) if env is None else env,
        at=loaded.locator,
    )


def _plan(session: Session, loaded: LoadedConfig, ctx: Context) -> list[tuple[Section, Change]]:
    planned = [
        (section, change)
        for section in SECTIONS
        for change in section.plan(session, loaded.config, ctx)
    ]
    if ctx.problems:
        raise ConfigError(ctx.problems)
    order = {id(section): n for n, section in enumerate(SECTIONS)}
    deletes = [p for p in planned if p[1].action == "delete"]
    deletes.sort(key=lambda p: -order[id(p[0])])
    return deletes + [p for p in planned if p[1].action != "delete"]


def plan_config(
    session: Session,
    loaded: LoadedConfig,
    *,
    now: datetime,
    prune: bool = False,
    env: Mapping[str, str] | None = None,
) -> Plan:
    """What ``apply_config`` would do; changes nothing. Raises ConfigError for problems that
    only the database reveals (a key or email held by an object outside the files...)."""
    ctx = _context(loaded, now, prune, env)
    planned = _plan(session, loaded, ctx)
    return Plan([c for _, c in planned], [*loaded.warnings, *ctx.warnings])


def apply_config(
    session: Session,
    loaded: LoadedConfig,
    *,
    now: datetime,
    prune: bool = False,
    env: Mapping[str, str] | None = None,
    expected: Plan | None = None,
) -> Plan:
    """Plan and execute in the caller's transaction. With ``expected`` (a plan shown to and
    confirmed by someone), refuses to go on if the plan is no longer the same."""
    ctx = _context(loaded, now, prune, env)
    planned = _plan(session, loaded, ctx)
    plan = Plan([c for _, c in planned], [*loaded.warnings, *ctx.warnings])
    if expected is not None and plan.changes != expected.changes:
        raise PlanChanged(
            "the database changed since the plan was shown; run the command again to see the "
            "new plan"
        )
    for section, change in planned:
        section.execute(session, change, ctx)
        session.flush()
    return plan


__all__ = ["ConfigError", "Plan", "PlanChanged", "Problem", "apply_config", "plan_config"]
