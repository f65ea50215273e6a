"""`tocsin config validate|apply|export|schema` against a real database."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import sqlalchemy as sa
import yaml

from tests.cli.conftest import Invoke
from tocsin.db.engine import create_db_engine
from tocsin.orgs.models import Service, User

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def count(db_url: str, model: type) -> int:
    engine = create_db_engine(db_url, pool_size=1)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one())
    finally:
        engine.dispose()


def test_validate_examples(tocsin: Invoke) -> None:
    result = tocsin("config", "validate", str(EXAMPLES))
    assert result.exit_code == 0, result.output
    assert (
        "valid: 6 files, 3 teams, 6 users, 5 services, 4 schedules, 3 escalation policies"
        in result.stdout
    )

    as_json = tocsin("config", "validate", str(EXAMPLES), "--json")
    assert json.loads(as_json.stdout)["counts"] == {
        "teams": 3,
        "users": 6,
        "services": 5,
        "schedules": 4,
        "escalation_policies": 3,
    }


def test_validate_reports_each_problem_on_one_line(tocsin: Invoke, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "teams:\n  - slug: t\n    name: T\n    members: [ghost]\nservices:\n"
        "  - {slug: s, name: S, team: nope}\n"
    )
    result = tocsin("config", "validate", str(tmp_path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {tmp_path}/bad.yaml:4: teams[0].members[0]: unknown user 'ghost': no file "
        "lists it under 'users'",
        f"error: {tmp_path}/bad.yaml:6: services[0].team: unknown team 'nope': no file lists it "
        "under 'teams'",
        "error: 2 problems found",
    ]
    as_json = tocsin("config", "validate", str(tmp_path), "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["valid"] is False


def test_validate_warns_about_unset_secret_variables(tocsin: Invoke, tmp_path: Path) -> None:
    (tmp_path / "am.yaml").write_text(
        "services:\n  - slug: k\n    name: K\n    integrations:\n      - name: am\n"
        "        type: alertmanager\n        options:\n"
        "          auth: {type: bearer, token_env: TEST_AM_TOKEN_UNSET}\n"
    )
    result = tocsin("config", "validate", str(tmp_path))
    assert result.exit_code == 0
    assert "warning:" in result.stderr and "TEST_AM_TOKEN_UNSET is not set" in result.stderr


def test_apply_plans_asks_and_is_idempotent(
    tocsin: Invoke, db_args: list[str], db_url: str
) -> None:
    dry = tocsin("config", "apply", str(EXAMPLES), "--dry-run", *db_args)
    assert dry.exit_code == 0, dry.output
    assert "+ create service checkout-api" in dry.stdout
    assert "    urgency: 'high'" in dry.stdout
    assert "Plan: 41 to create, 0 to update, 0 to delete" in dry.stdout
    assert count(db_url, Service) == 0

    # No terminal to ask on and no --yes: nothing happens.
    refused = tocsin("config", "apply", str(EXAMPLES), *db_args)
    assert refused.exit_code == 1
    assert "error: not applied: pass --yes" in refused.stderr
    assert count(db_url, Service) == 0

    applied = tocsin("config", "apply", str(EXAMPLES), "--yes", *db_args)
    assert applied.exit_code == 0, applied.output
    assert "applied: 41 to create, 0 to update, 0 to delete" in applied.stdout
    assert count(db_url, Service) == 5

    again = tocsin("config", "apply", str(EXAMPLES), "--yes", "--json", *db_args)
    assert again.exit_code == 0
    assert json.loads(again.stdout) == {
        "changes": [],
        "warnings": [],
        "summary": "no changes: the database already matches the configuration",
        "applied": False,
    }


def test_prune_only_when_asked(
    tocsin: Invoke, db_args: list[str], db_url: str, tmp_path: Path
) -> None:
    assert tocsin("config", "apply", str(EXAMPLES), "--yes", *db_args).exit_code == 0
    smaller = tmp_path / "smaller"
    shutil.copytree(EXAMPLES, smaller)
    (smaller / "services-platform.yaml").unlink()
    (smaller / "teams.yaml").write_text(
        (smaller / "teams.yaml")
        .read_text()
        .replace(
            "members: [priya.patel, daniel.reyes, jonas.weber]",
            "members: [priya.patel, daniel.reyes]",
        )
    )
    kept = tocsin("config", "apply", str(smaller), "--yes", *db_args)
    assert "~ update team noc" in kept.stdout
    assert "- delete" not in kept.stdout
    assert count(db_url, Service) == 5

    pruned = tocsin("config", "apply", str(smaller), "--yes", "--prune", *db_args)
    assert pruned.exit_code == 0, pruned.output
    assert "- delete service kubernetes (also deletes its 1 integration(s))" in pruned.stdout
    assert "Plan: 0 to create, 0 to update, 3 to delete" in pruned.stdout
    assert count(db_url, Service) == 2


def test_apply_reports_database_problems_as_lines(
    tocsin: Invoke, db_args: list[str], tmp_path: Path
) -> None:
    (tmp_path / "am.yaml").write_text(
        "services:\n  - slug: k\n    name: K\n    integrations:\n      - name: am\n"
        "        type: alertmanager\n        options:\n"
        "          auth: {type: bearer, token_env: TEST_AM_TOKEN_UNSET}\n"
    )
    result = tocsin("config", "apply", str(tmp_path), "--yes", *db_args)
    assert result.exit_code == 1
    assert "environment variable TEST_AM_TOKEN_UNSET is not set" in result.stderr
    assert "Traceback" not in result.output

    ok = tocsin(
        "config", "apply", str(tmp_path), "--yes", *db_args, env={"TEST_AM_TOKEN_UNSET": "s3cret"}
    )
    assert ok.exit_code == 0, ok.output
    assert "s3cret" not in ok.output


def test_export_round_trips(tocsin: Invoke, db_args: list[str], tmp_path: Path) -> None:
    assert tocsin("config", "apply", str(EXAMPLES), "--yes", *db_args).exit_code == 0
    exported = tocsin("config", "export", *db_args)
    assert exported.exit_code == 0, exported.output
    assert yaml.safe_load(exported.stdout)["services"][0]["slug"] == "checkout-api"
    (tmp_path / "one.yaml").write_text(exported.stdout)

    to_dir = tocsin("config", "export", str(tmp_path / "dir"), *db_args)
    assert to_dir.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == [
        "escalation_policies.yaml",
        "schedules.yaml",
        "services.yaml",
        "teams.yaml",
        "users.yaml",
    ]
    for source in (tmp_path / "one.yaml", tmp_path / "dir"):
        replan = tocsin("config", "apply", str(source), "--prune", "--dry-run", *db_args)
        assert replan.exit_code == 0, replan.output
        assert "no changes" in replan.stdout


def test_schema_command_prints_the_committed_schema(tocsin: Invoke) -> None:
    result = tocsin("config", "schema")
    assert result.exit_code == 0
    assert result.stdout == (ROOT / "docs" / "config.schema.json").read_text()


def test_unmigrated_database_is_one_clear_line(tocsin: Invoke, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = tocsin("config", "apply", str(EXAMPLES), "--yes", "--database-url", url)
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: the database schema is not current")
    assert result.stderr.strip().endswith("run `tocsin migrate`")
    assert len(result.stderr.strip().splitlines()) == 1


def test_users_in_the_files_get_no_password(
    tocsin: Invoke, db_args: list[str], db_url: str
) -> None:
    assert tocsin("config", "apply", str(EXAMPLES), "--yes", *db_args).exit_code == 0
    engine = create_db_engine(db_url, pool_size=1)
    with engine.connect() as conn:
        hashes = conn.execute(sa.select(User.password_hash)).scalars().all()
    engine.dispose()
    assert hashes and all(h is None for h in hashes)
