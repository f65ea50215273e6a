"""Export the database's organisation as configuration files that validate and re-apply as a
no-op. Hashed secrets cannot be written back: a variable name and a comment take their place."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from tocsin.config.problems import ConfigError, Problem
from tocsin.config.sections import SECTIONS, ExportNotes, Section

HEADER = (
    "# Exported by `tocsin config export`. Check with `tocsin config validate`, apply with\n"
    "# `tocsin config apply`.\n"
)


def _items(section: Section, session: Session, notes: ExportNotes) -> list[BaseModel]:
    """A section's items; data the API stored that the files cannot express is an error that
    says where, not a traceback."""
    try:
        return section.export(session, notes)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            [
                Problem(
                    "<database>",
                    section.key,
                    f"holds a value the configuration files cannot express ({exc.title} "
                    f"{where}: {first['msg']}); fix it through the API, then export again",
                )
            ]
        ) from exc


def export_data(session: Session) -> tuple[dict[str, list[dict[str, Any]]], ExportNotes]:
    notes = ExportNotes()
    data = {
        section.key: [
            item.model_dump(mode="json", exclude_defaults=True)
            for item in _items(section, session, notes)
        ]
        for section in SECTIONS
    }
    return data, notes


class _Dumper(yaml.SafeDumper):
    """Block style, and list items indented under their key as people write them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def to_yaml(data: dict[str, Any], notes: ExportNotes) -> str:
    text = yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return HEADER + _add_comments(text, notes)


def _add_comments(text: str, notes: ExportNotes) -> str:
    out: list[str] = []
    for line in text.splitlines():
        match = re.match(r"^(\s*)(?:- )?\w+: (\S+)$", line)
        if match and match.group(2) in notes.comments:
            out.append(f"{match.group(1)}# {match.group(2)}: {notes.comments[match.group(2)]}")
        out.append(line)
    return "\n".join(out) + "\n"


def export_text(session: Session) -> str:
    """Everything as one YAML document."""
    data, notes = export_data(session)
    return to_yaml({k: v for k, v in data.items() if v}, notes)


def export_directory(session: Session, directory: Path) -> list[Path]:
    """One file per top-level key (teams.yaml, users.yaml...). Returns the files written."""
    data, notes = export_data(session)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for key, items in data.items():
        path = directory / f"{key}.yaml"
        path.write_text(to_yaml({key: items}, notes), encoding="utf-8")
        written.append(path)
    return written
