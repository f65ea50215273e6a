"""The contract of one top-level configuration key: check it, plan it, apply it, export it.

Adding a key (schedules, escalation policies, runbooks...) means one model in
``config/models.py`` and one class implementing this protocol, listed in ``SECTIONS``.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy.orm import Session

from tocsin.config.located import Locator
from tocsin.config.models import OrgConfig
from tocsin.config.plan import Change, Context
from tocsin.config.problems import Problem


class ExportNotes:
    """Comments the exporter must place next to values (e.g. hashed secrets)."""

    def __init__(self) -> None:
        self.comments: dict[str, str] = {}

    def comment(self, value: str, text: str) -> None:
        self.comments[value] = text


class Section(Protocol):
    key: str  # the top-level key in the files: "teams"
    kind: str  # one item, in messages and plans: "team"
    id_field: str  # the field holding the identity: "slug"

    def identity(self, item: Any) -> str:
        """What makes an item unique across every file (slug, username)."""
        ...

    def check(self, config: OrgConfig, at: Locator) -> list[Problem]:
        """Cross-references and uniqueness beyond the identity, without a database."""
        ...

    def plan(self, session: Session, config: OrgConfig, ctx: Context) -> list[Change]:
        """Changes for this key; problems only visible against the database go to ctx."""
        ...

    def execute(self, session: Session, change: Change, ctx: Context) -> None: ...

    def export(self, session: Session, notes: ExportNotes) -> list[BaseModel]:
        """The database's current items as specs, in a stable order."""
        ...
