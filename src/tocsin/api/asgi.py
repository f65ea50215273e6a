"""ASGI entry point configured from the environment.

Run with `uvicorn --factory tocsin.api.asgi:app_from_env`.
"""

from __future__ import annotations

from fastapi import FastAPI

from tocsin.api.app import create_app
from tocsin.observability.logging import configure_logging
from tocsin.runtime import Runtime
from tocsin.settings import Settings


def app_from_env() -> FastAPI:
    settings = Settings.from_env()
    configure_logging(settings.log_level, json=settings.log_json)
    return create_app(Runtime(settings))
