"""Export writes YAML that validates and re-applies as a no-op, without leaking secrets."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session, sessionmaker

from tocsin.config.apply import apply_config, plan_config
from tocsin.config.export import export_directory, export_text
from tocsin.config.loader import load_config, load_sources
from tocsin.config.problems import ConfigError
from tocsin.orgs.models import Integration, Service

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
ENV = {"AM_TOKEN": "the-bearer-token", "AM_PASSWORD": "the-basic-password"}
AUTH = """
services:
  - slug: k8s
    name: K8s
    integrations:
      - name: am
        type: alertmanager
        key: abcdefghijklmnopqrstuvwxyz012345
        options:
          auth: {type: bearer, token_env: AM_TOKEN}
      - name: am-basic
        type: alertmanager
        options:
          auth: {type: basic, username: prometheus, password_env: AM_PASSWORD}
"""


def test_export_of_examples_round_trips(factory: sessionmaker[Session], tmp_path: Path) -> None:
    with factory() as s, s.begin():
        apply_config(s, load_config(ROOT / "examples"), now=NOW, env={})
    with factory() as s:
        text = export_text(s)
        written = export_directory(s, tmp_path / "exported")
    assert [p.name for p in written] == [
        "users.yaml",
        "teams.yaml",
        "schedules.yaml",
        "escalation_policies.yaml",
        "services.yaml",
    ]
    # Both forms validate and, even with prune, plan nothing.
    for loaded in (load_sources({"-": yaml.safe_load(text)}), load_config(tmp_path / "exported")):
        with factory() as s:
            assert plan_config(s, loaded, now=NOW, prune=True, env={}).empty
    # The fixed integration keys come out as they went in.
    assert "agyb96nre1atigoqhsutrphodzs7942y" in text


def test_export_writes_placeholders_for_hashed_secrets(factory: sessionmaker[Session]) -> None:
    with factory() as s, s.begin():
        apply_config(s, load_sources({"a": yaml.safe_load(AUTH)}), now=NOW, env=ENV)
    with factory() as s:
        text = export_text(s)
    for secret in ENV.values():
        assert secret not in text
        assert hashlib.sha256(secret.encode()).hexdigest() not in text
    assert "token_env: TOCSIN_K8S_AM_TOKEN" in text
    assert "password_env: TOCSIN_K8S_AM_BASIC_PASSWORD" in text
    assert "username: prometheus" in text
    lines = text.splitlines()
    at = lines.index(next(line for line in lines if "token_env: TOCSIN_K8S_AM_TOKEN" in line))
    assert lines[at - 1].strip().startswith("# TOCSIN_K8S_AM_TOKEN: stored only as a SHA-256 hash")

    exported = load_sources({"-": yaml.safe_load(text)})
    with factory() as s:
        # Without the variables the stored hashes are kept: a no-op, with warnings.
        quiet = plan_config(s, exported, now=NOW, env={})
        assert quiet.empty
        assert len(quiet.warnings) == 2
        # Setting a variable is how the secret is changed from an exported file.
        rotated = plan_config(s, exported, now=NOW, env={"TOCSIN_K8S_AM_TOKEN": "new"})
        assert [c.describe() for c in rotated.changes] == ["update integration k8s/am"]


def test_export_leaves_out_internal_services(factory: sessionmaker[Session]) -> None:
    with factory() as s, s.begin():
        service = Service(slug="tocsin", name="Tocsin", internal=True, created_at=NOW)
        s.add(service)
        s.flush()
        s.add(
            Integration(
                service_id=service.id, name="self", type="internal", key="i" * 32, created_at=NOW
            )
        )
    with factory() as s:
        assert yaml.safe_load(export_text(s)) == {}
        assert s.scalar(sa.select(sa.func.count()).select_from(Service)) == 1


def test_options_the_files_cannot_express_are_a_clear_error(
    factory: sessionmaker[Session],
) -> None:
    with factory() as s, s.begin():
        service = Service(slug="odd", name="Odd", created_at=NOW)
        s.add(service)
        s.flush()
        s.add(
            Integration(
                service_id=service.id,
                name="hook",
                type="webhook",
                key="o" * 32,
                options={"colour": "red"},
                created_at=NOW,
            )
        )
    with factory() as s, pytest.raises(ConfigError) as info:
        export_text(s)
    [problem] = info.value.problems
    assert problem.file == "<database>" and problem.path == "services"
    assert "colour" in problem.message and "cannot express" in problem.message
