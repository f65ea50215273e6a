"""Plan and apply on both databases: creation, updates, idempotency, prune, secrets, conflicts."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session, sessionmaker

from tocsin.config.apply import PlanChanged, apply_config, plan_config
from tocsin.config.loader import load_sources
from tocsin.config.located import LoadedConfig
from tocsin.config.plan import Plan
from tocsin.config.problems import ConfigError
from tocsin.orgs.models import Integration, Service, Team, TeamMember, User

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
KEY = "k" * 32

BASE = """
users:
  - {username: alice, name: Alice, email: alice@example.com, role: admin, time_zone: Europe/Berlin}
  - {username: bob, name: Bob, email: bob@example.com, time_zone: America/New_York}
teams:
  - {slug: payments, name: Payments, members: [alice, bob]}
services:
  - slug: checkout
    name: Checkout
    team: payments
    urgency: high
    ack_timeout_seconds: 1800
    grouping: {type: time_window, window_seconds: 120}
    integrations:
      - {name: events, type: pagerduty, key: KEY}
      - {name: generated, type: pagerduty}
""".replace("KEY", KEY)


def cfg(text: str, **more: Any) -> LoadedConfig:
    data = yaml.safe_load(text)
    for key, value in more.items():
        data[key] = value
    return load_sources({"org.yaml": data})


def apply(factory: sessionmaker[Session], loaded: LoadedConfig, **kw: Any) -> Plan:
    with factory() as s, s.begin():
        return apply_config(s, loaded, now=NOW, env=kw.pop("env", {}), **kw)


def plan(factory: sessionmaker[Session], loaded: LoadedConfig, **kw: Any) -> Plan:
    with factory() as s:
        return plan_config(s, loaded, now=NOW, env=kw.pop("env", {}), **kw)


def described(p: Plan) -> list[str]:
    return [c.describe() for c in p.changes]


def one(factory: sessionmaker[Session], stmt: sa.Select[Any]) -> Any:
    with factory() as s:
        return s.scalars(stmt).one()


def test_apply_creates_everything_and_second_apply_plans_nothing(
    factory: sessionmaker[Session],
) -> None:
    loaded = cfg(BASE)
    first = apply(factory, loaded)
    assert described(first) == [
        "create user alice",
        "create user bob",
        "create team payments",
        "create service checkout",
        "create integration checkout/events",
        "create integration checkout/generated",
    ]
    assert plan(factory, loaded).empty
    assert apply(factory, loaded).empty

    service = one(factory, sa.select(Service).where(Service.slug == "checkout"))
    assert (service.ack_timeout_seconds, service.grouping) == (
        1800,
        {"type": "time_window", "window_seconds": 120},
    )
    team = one(factory, sa.select(Team))
    assert service.team_id == team.id
    with factory() as s:
        members = s.scalars(
            sa.select(User.username).join(TeamMember).where(TeamMember.team_id == team.id)
        ).all()
        keys = {n: k for n, k in s.execute(sa.select(Integration.name, Integration.key))}
    assert sorted(members) == ["alice", "bob"]
    assert keys["events"] == KEY
    assert len(keys["generated"]) == 32 and keys["generated"].isalnum()
    assert keys["generated"] == keys["generated"].lower()


def test_update_lists_changed_fields_only(factory: sessionmaker[Session]) -> None:
    apply(factory, cfg(BASE))
    changed = (
        BASE.replace("urgency: high", "urgency: low")
        .replace("members: [alice, bob]", "members: [alice]")
        .replace("name: Bob,", "name: Robert,")
    )
    p = apply(factory, cfg(changed))
    assert described(p) == ["update user bob", "update team payments", "update service checkout"]
    fields = {c.name: [f.describe() for f in c.fields] for c in p.changes}
    assert fields == {
        "bob": ["name: 'Bob' -> 'Robert'"],
        "payments": ["members: -bob"],
        "checkout": ["urgency: 'high' -> 'low'"],
    }
    assert plan(factory, cfg(changed)).empty
    with factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(TeamMember)) == 1


def test_without_prune_nothing_absent_is_deleted(factory: sessionmaker[Session]) -> None:
    apply(factory, cfg(BASE))
    smaller = cfg(
        "users:\n  - {username: alice, name: Alice, email: alice@example.com, role: admin, "
        "time_zone: Europe/Berlin}\n"
    )
    assert plan(factory, smaller).empty
    with factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Service)) == 1
        assert s.scalar(sa.select(sa.func.count()).select_from(User)) == 2


def test_prune_deletes_what_the_files_leave_out(factory: sessionmaker[Session]) -> None:
    apply(factory, cfg(BASE))
    with factory() as s, s.begin():
        s.add(Service(slug="tocsin-internal", name="Internal", internal=True, created_at=NOW))
    without_generated = BASE.replace("      - {name: generated, type: pagerduty}\n", "")
    p = apply(factory, cfg(without_generated), prune=True)
    assert described(p) == ["delete integration checkout/generated"]

    only_alice = cfg(
        "users:\n  - {username: alice, name: Alice, email: alice@example.com, role: admin, "
        "time_zone: Europe/Berlin}\n"
    )
    p = plan(factory, only_alice, prune=True)
    # Deletions run dependants first: services, then teams, then users.
    assert described(p) == [
        "delete service checkout (also deletes its 1 integration(s))",
        "delete team payments",
        "delete user bob",
    ]
    apply(factory, only_alice, prune=True)
    with factory() as s:
        assert s.scalars(sa.select(Service.slug)).all() == ["tocsin-internal"]
        assert s.scalars(sa.select(User.username)).all() == ["alice"]
        assert s.scalars(sa.select(Team)).all() == []
    assert plan(factory, only_alice, prune=True).empty


def test_generated_key_is_kept_and_a_file_key_rotates_it(factory: sessionmaker[Session]) -> None:
    apply(factory, cfg(BASE))
    before = one(factory, sa.select(Integration.key).where(Integration.name == "generated"))
    assert plan(factory, cfg(BASE)).empty
    new_key = "n" * 32
    rotated = BASE.replace(
        "{name: generated, type: pagerduty}",
        f"{{name: generated, type: pagerduty, key: {new_key}}}",
    )
    p = apply(factory, cfg(rotated))
    assert [f.describe() for f in p.changes[0].fields] == ["key: '(secret)' -> '(new secret)'"]
    after = one(factory, sa.select(Integration.key).where(Integration.name == "generated"))
    assert (before != new_key, after) == (True, new_key)


AM = """
services:
  - slug: k8s
    name: K8s
    integrations:
      - name: am
        type: alertmanager
        options:
          auth: {type: bearer, token_env: AM_TOKEN}
      - name: am-basic
        type: alertmanager
        options:
          auth: {type: basic, username: prometheus, password_env: AM_PASSWORD}
"""


def _auth(factory: sessionmaker[Session], name: str) -> dict[str, Any]:
    options = one(factory, sa.select(Integration.options).where(Integration.name == name))
    auth: dict[str, Any] = options["auth"]
    return auth


def test_alertmanager_secrets_are_stored_as_sha256_only(factory: sessionmaker[Session]) -> None:
    env = {"AM_TOKEN": "tok-1-secret", "AM_PASSWORD": "pw-1-secret"}
    p = apply(factory, cfg(AM), env=env)
    shown = " ".join(f.describe() for c in p.changes for f in c.fields)
    assert "tok-1-secret" not in shown and "pw-1-secret" not in shown
    assert hashlib.sha256(b"tok-1-secret").hexdigest() not in shown
    assert _auth(factory, "am") == {
        "type": "bearer",
        "token_sha256": hashlib.sha256(b"tok-1-secret").hexdigest(),
    }
    assert _auth(factory, "am-basic") == {
        "type": "basic",
        "username": "prometheus",
        "password_sha256": hashlib.sha256(b"pw-1-secret").hexdigest(),
    }
    assert plan(factory, cfg(AM), env=env).empty

    rotated = plan(factory, cfg(AM), env={**env, "AM_TOKEN": "tok-2-secret"})
    [change] = rotated.changes
    assert change.describe() == "update integration k8s/am"
    assert [f.describe() for f in change.fields] == ["options.auth: '(secret)' -> '(new secret)'"]


def test_unset_secret_variable_keeps_existing_but_blocks_creation(
    factory: sessionmaker[Session],
) -> None:
    with pytest.raises(ConfigError) as info:
        apply(factory, cfg(AM), env={"AM_TOKEN": "t"})
    [problem] = info.value.problems
    assert str(problem) == (
        "org.yaml: services[0].integrations[1].options.auth: environment variable AM_PASSWORD "
        "is not set; it must hold the secret for k8s/am-basic"
    )
    with factory() as s:  # nothing half-written
        assert s.scalars(sa.select(Service)).all() == []

    apply(factory, cfg(AM), env={"AM_TOKEN": "t", "AM_PASSWORD": "p"})
    p = plan(factory, cfg(AM), env={})
    assert p.empty
    assert [w.message for w in p.warnings] == [
        "AM_TOKEN is not set; keeping the stored secret of k8s/am",
        "AM_PASSWORD is not set; keeping the stored secret of k8s/am-basic",
    ]


def test_key_held_by_an_integration_outside_the_files_is_refused(
    factory: sessionmaker[Session],
) -> None:
    apply(factory, cfg(BASE))
    other = cfg(
        "services:\n  - slug: refunds\n    name: Refunds\n    integrations:\n"
        f"      - {{name: events, type: pagerduty, key: {KEY}}}\n"
    )
    with pytest.raises(ConfigError) as info:
        plan(factory, other)
    assert "integrations[0].key: this key already belongs to integration checkout/events" in str(
        info.value
    )
    # With prune, checkout goes away first and its key is free to move.
    p = apply(factory, other, prune=True)
    assert "create integration refunds/events" in described(p)


def test_email_held_by_a_user_outside_the_files_is_refused(
    factory: sessionmaker[Session],
) -> None:
    apply(factory, cfg(BASE))
    carol = cfg("users:\n  - {username: carol, name: Carol, email: bob@example.com}\n")
    with pytest.raises(ConfigError) as info:
        plan(factory, carol)
    assert "users[0].email: email 'bob@example.com' belongs to user 'bob'" in str(info.value)


def test_internal_service_slug_is_reserved(factory: sessionmaker[Session]) -> None:
    with factory() as s, s.begin():
        s.add(Service(slug="tocsin", name="Tocsin", internal=True, created_at=NOW))
    with pytest.raises(ConfigError, match="'tocsin' is reserved"):
        plan(factory, cfg("services:\n  - {slug: tocsin, name: Mine}\n"))


def test_apply_refuses_when_the_plan_changed(factory: sessionmaker[Session]) -> None:
    loaded = cfg(BASE)
    shown = plan(factory, loaded)
    with factory() as s, s.begin():
        s.add(User(username="alice", name="Someone", email="a@x.example", created_at=NOW))
    with pytest.raises(PlanChanged):
        apply(factory, loaded, expected=shown)
    apply(factory, loaded, expected=plan(factory, loaded))
    assert plan(factory, loaded).empty


def test_webhook_mapping_and_auth_are_stored_as_ingestion_reads_them(
    factory: sessionmaker[Session],
) -> None:
    hook = """
services:
  - slug: status
    name: Status
    integrations:
      - name: Provider-Status
        type: webhook
        options:
          mapping: {summary: incident.name, severity_map: {major: error}}
          auth: {type: bearer, token_env: HOOK_TOKEN}
"""
    apply(factory, cfg(hook), env={"HOOK_TOKEN": "hook-secret"})
    options = one(factory, sa.select(Integration.options))
    assert options == {
        "mapping": {"summary": "incident.name", "severity_map": {"major": "error"}},
        "auth": {"type": "bearer", "token_sha256": hashlib.sha256(b"hook-secret").hexdigest()},
    }
    assert plan(factory, cfg(hook), env={"HOOK_TOKEN": "hook-secret"}).empty
