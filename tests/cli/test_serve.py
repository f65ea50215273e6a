"""What `tocsin serve` does before it listens: migrate, then apply --config without pruning."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.cli.conftest import Invoke
from tocsin.cli.server_cmd import prepare
from tocsin.config.problems import ConfigError
from tocsin.db import migrate
from tocsin.db.engine import create_db_engine
from tocsin.orgs.models import Service
from tocsin.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _slugs(url: str) -> list[str]:
    engine = create_db_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(Service.slug).order_by(Service.slug)).scalars())
    finally:
        engine.dispose()


def test_prepare_migrates_and_applies_the_config(db_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=db_url, config_dir=EXAMPLES)
    prepare(settings)
    prepare(settings)  # a restart applies again: nothing changes, nothing fails
    assert len(_slugs(db_url)) == 5


def test_prepare_on_an_empty_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    prepare(Settings(data_dir=tmp_path, database_url=url, config_dir=None))
    engine = create_db_engine(url, pool_size=1)
    assert migrate.is_at_head(engine)
    engine.dispose()
    assert _slugs(url) == []


def test_prepare_never_prunes(db_url: str, tmp_path: Path) -> None:
    prepare(Settings(data_dir=tmp_path, database_url=db_url, config_dir=EXAMPLES))
    only_users = tmp_path / "users-only"
    only_users.mkdir()
    (only_users / "users.yaml").write_text((EXAMPLES / "users.yaml").read_text())
    prepare(Settings(data_dir=tmp_path, database_url=db_url, config_dir=only_users))
    assert len(_slugs(db_url)) == 5


def test_invalid_config_stops_the_start(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("services:\n  - {slug: s}\n")
    with pytest.raises(ConfigError):
        prepare(Settings(data_dir=tmp_path, database_url=db_url, config_dir=tmp_path))


def test_serve_with_invalid_config_exits_with_the_problems(tocsin: Invoke, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("services:\n  - {slug: s}\n")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = tocsin("serve", "--config", str(tmp_path), "--database-url", url, "--port", "1")
    assert result.exit_code == 1
    assert f"{tmp_path}/bad.yaml:2: services[0].name: missing required key 'name'" in result.stderr
