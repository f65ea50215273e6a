"""Fixtures for tests that run real Tocsin server processes."""

from __future__ import annotations

import pytest

from tests.procs import DB_KINDS, require_database, servers

__all__ = ["db_kind", "servers"]


@pytest.fixture(params=DB_KINDS)
def db_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    require_database(kind)
    return kind
