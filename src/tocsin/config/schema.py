"""The JSON Schema of a configuration file, for editors (yaml-language-server) and CI."""

from __future__ import annotations

from typing import Any

import orjson

from tocsin.config.models import ConfigFile


def config_schema() -> dict[str, Any]:
    schema = ConfigFile.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def config_schema_text() -> str:
    """Stable text (sorted keys, two-space indent, final newline) so the committed copy can be
    compared byte for byte."""
    return (
        orjson.dumps(config_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
        + "\n"
    )
