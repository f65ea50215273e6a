"""Helpers for configuration tests: write YAML files, get a session on each database."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import SECRET_KEY
from tocsin import crypto
from tocsin.db.engine import create_db_engine, make_session_factory

WriteFiles = Callable[..., Path]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteFiles:
    """write_config(**{"teams.yaml": "...yaml..."}) -> the directory holding those files."""

    def write(**files: str) -> Path:
        directory = tmp_path / "config"
        directory.mkdir(exist_ok=True)
        for name, text in files.items():
            (directory / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return directory

    return write


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    crypto.configure(SECRET_KEY)  # contact-method secrets are stored encrypted
    engine = create_db_engine(db_url, pool_size=2)
    yield make_session_factory(engine)
    engine.dispose()
