"""Real services the suite needs. A missing one skips loudly, or fails when TOCSIN_TEST_STRICT=1
(CI sets it so that no skipped service can hide)."""

from __future__ import annotations

import os
import shutil

import pytest

STRICT = os.environ.get("TOCSIN_TEST_STRICT") == "1"
PG_URL = os.environ.get("TOCSIN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def require_service(name: str, available: bool, reason: str) -> None:
    if available:
        return
    message = f"REAL SERVICE MISSING: {name}: {reason}"
    if STRICT:
        pytest.fail(message + " (TOCSIN_TEST_STRICT=1 turns this skip into a failure)")
    pytest.skip(message)


def require_binary(name: str, package_hint: str) -> str:
    path = shutil.which(name)
    require_service(name, path is not None, f"'{name}' not on PATH; install {package_hint}")
    assert path is not None
    return path
