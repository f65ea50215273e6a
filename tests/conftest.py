"""Shared fixtures: every storage-touching test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.services import PG_URL, require_service
from tocsin.api.app import create_app
from tocsin.clock import FakeClock
from tocsin.db import migrate
from tocsin.db.base import Base
from tocsin.db.engine import create_db_engine, make_session_factory, normalise_url
from tocsin.orgs.models import Integration, Service, Team, TeamMember, User
from tocsin.runtime import Runtime
from tocsin.settings import Settings

ADMIN_TOKEN = "test-bootstrap-admin-token"
SECRET_KEY = "k4hJ8nYb3T1H3qW5XnL4m9G0vQ2sB7cR6dE1fA8uZ0o="
PD_KEY = "a" * 32
AM_KEY = "b" * 32
WEBHOOK_KEY = "c" * 32


def _pg_available() -> bool:
    try:
        eng = create_db_engine(PG_URL)
        with eng.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        eng.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A database of our own on the PostgreSQL server, migrated once for the session."""
    require_service("postgresql", _pg_available(), f"cannot connect to {PG_URL}")
    name = f"tocsin_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = str(sa.engine.make_url(normalise_url(PG_URL)).set(database=name).render_as_string(False))
    eng = create_db_engine(url)
    migrate.upgrade(eng)
    eng.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "tocsin.db"
    eng = create_db_engine(f"sqlite:///{path}")
    migrate.upgrade(eng)
    eng.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "tocsin.db"
        shutil.copy(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_database_url")
    eng = create_db_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with eng.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    eng.dispose()
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=db_url,
        bootstrap_token=ADMIN_TOKEN,
        secret_key=SECRET_KEY,
        ingest_rate_per_second=0,
        node_name="test-node",
        log_json=False,
    )


@pytest.fixture
def runtime(settings: Settings, clock: FakeClock) -> Iterator[Runtime]:
    """A node whose background threads do not run: tests drive processing and jobs by hand."""
    rt = Runtime(settings, clock=clock)
    rt.start(background=False)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, manage_runtime=False)) as c:
        yield c


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Org:
    team_id: int
    user_id: int
    service_id: int
    pd_key: str
    am_key: str
    webhook_key: str


@pytest.fixture
def org(runtime: Runtime, clock: FakeClock) -> Org:
    """One team, one user and one service with an integration of each kind."""
    now = clock.now()
    factory = make_session_factory(runtime.engine)
    with factory() as s, s.begin():
        team = Team(slug="payments", name="Payments", created_at=now)
        user = User(
            username="alice",
            name="Alice",
            email="alice@example.com",
            role="responder",
            created_at=now,
        )
        s.add_all([team, user])
        s.flush()
        s.add(TeamMember(team_id=team.id, user_id=user.id))
        service = Service(
            slug="checkout",
            name="Checkout",
            team_id=team.id,
            urgency="high",
            created_at=now,
            grouping={"type": "none"},
        )
        s.add(service)
        s.flush()
        for name, kind, key in [
            ("events", "pagerduty", PD_KEY),
            ("prometheus", "alertmanager", AM_KEY),
            ("hooks", "webhook", WEBHOOK_KEY),
        ]:
            s.add(
                Integration(
                    service_id=service.id, name=name, type=kind, key=key, options={}, created_at=now
                )
            )
        return Org(team.id, user.id, service.id, PD_KEY, AM_KEY, WEBHOOK_KEY)
