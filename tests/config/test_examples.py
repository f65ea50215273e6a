"""The example organisation validates and applies on both databases, idempotently."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from tocsin.config.apply import apply_config, plan_config
from tocsin.config.loader import load_config
from tocsin.orgs.models import Integration, Service, Team, User

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_examples_are_a_realistic_small_organisation() -> None:
    config = load_config(EXAMPLES).config
    assert 2 <= len(config.teams) <= 3
    assert {u.time_zone for u in config.users} == {"Europe/Berlin", "America/New_York"}
    assert 4 <= len(config.services) <= 5
    types = {i.type for s in config.services for i in s.integrations}
    assert types == {"pagerduty", "alertmanager", "webhook"}
    assert all(i.key for s in config.services for i in s.integrations), "demo keys must be fixed"
    assert {s.grouping.type for s in config.services} == {"none", "time_window", "fields"}


def test_examples_apply_and_reapply_as_noop(factory: sessionmaker[Session]) -> None:
    loaded = load_config(EXAMPLES)
    with factory() as s, s.begin():
        plan = apply_config(s, loaded, now=NOW, env={})
    # users, teams, services, integrations, schedules, policies, contact methods, rule sets
    assert plan.count("create") == 6 + 3 + 5 + 6 + 4 + 3 + 8 + 6
    with factory() as s:
        assert plan_config(s, loaded, now=NOW, env={}, prune=True).empty
        assert s.scalar(sa.select(sa.func.count()).select_from(User)) == 6
        assert s.scalar(sa.select(sa.func.count()).select_from(Team)) == 3
        assert s.scalar(sa.select(sa.func.count()).select_from(Service)) == 5
        key = s.scalars(
            sa.select(Integration.key)
            .join(Service)
            .where(Service.slug == "checkout-api", Integration.name == "app-events")
        ).one()
    assert key == "agyb96nre1atigoqhsutrphodzs7942y"
