"""One Alembic history serves both databases, goes down and up again, and matches the models."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tocsin.db import migrate
from tocsin.db.base import Base
from tocsin.db.engine import create_db_engine


def _fresh_engine(db_url: str, tmp_path: Path) -> sa.Engine:
    if db_url.startswith("sqlite"):
        return create_db_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    return create_db_engine(db_url)


def test_down_to_base_and_up_to_head(db_url: str, tmp_path: Path) -> None:
    engine = _fresh_engine(db_url, tmp_path)
    try:
        migrate.upgrade(engine)
        assert migrate.is_at_head(engine)
        migrate.downgrade(engine, "base")
        assert migrate.current_revision(engine) is None
        tables = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        migrate.upgrade(engine)
        assert migrate.is_at_head(engine)
        assert {t.name for t in Base.metadata.sorted_tables} <= set(
            sa.inspect(engine).get_table_names()
        )
    finally:
        engine.dispose()


def test_models_match_the_migrations(db_url: str, tmp_path: Path) -> None:
    engine = _fresh_engine(db_url, tmp_path)
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        engine.dispose()
