"""The committed JSON Schema is the generated one, and it agrees with the validator."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

from tocsin.config.loader import config_files
from tocsin.config.models import SECTIONS, ConfigFile
from tocsin.config.schema import config_schema, config_schema_text
from tocsin.config.sections import SECTIONS as APPLIERS

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "docs" / "config.schema.json"


def test_committed_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == config_schema_text(), (
        "docs/config.schema.json is stale: run `tocsin config schema > docs/config.schema.json`"
    )


def test_every_example_file_validates_against_the_schema() -> None:
    validator = jsonschema.Draft202012Validator(config_schema())
    for path in config_files(ROOT / "examples"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        errors = [e.message for e in validator.iter_errors(data)]
        assert errors == [], f"{path}: {errors}"


def test_schema_rejects_what_the_loader_rejects() -> None:
    validator = jsonschema.Draft202012Validator(config_schema())
    assert not validator.is_valid({"runbooks": []})
    assert not validator.is_valid(
        {"services": [{"slug": "s", "name": "S", "integrations": [{"name": "x", "type": "sms"}]}]}
    )
    assert not validator.is_valid({"users": [{"username": "a", "name": "A", "email": "nope"}]})


def test_each_top_level_key_has_an_applier() -> None:
    assert sorted(a.key for a in APPLIERS) == sorted(SECTIONS) == sorted(ConfigFile.model_fields)


def test_examples_carry_the_schema_comment() -> None:
    for path in config_files(ROOT / "examples"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../docs/config.schema.json", path
