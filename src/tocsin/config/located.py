"""Where each merged configuration item came from, so later checks can point at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tocsin.config.models import OrgConfig
from tocsin.config.problems import Loc, Problem, format_path
from tocsin.config.yamlsource import SourceFile


@dataclass(frozen=True)
class Origin:
    source: SourceFile
    index: int  # position in that file's list


@dataclass
class Locator:
    """Maps (section, position in the merged list) back to a file, a path and a line."""

    origins: dict[str, list[Origin]] = field(default_factory=dict)

    def origin(self, section: str, index: int) -> Origin | None:
        items = self.origins.get(section, [])
        return items[index] if index < len(items) else None

    def problem(
        self, section: str, index: int, sub: Loc, message: str, *, warning: bool = False
    ) -> Problem:
        level: Literal["error", "warning"] = "warning" if warning else "error"
        origin = self.origin(section, index)
        if origin is None:
            return Problem("<config>", format_path((section, index, *sub)), message, None, level)
        loc = (section, origin.index, *sub)
        return Problem(
            origin.source.display, format_path(loc), message, origin.source.line_of(loc), level
        )

    def where(self, section: str, index: int) -> str:
        """'teams.yaml:3' for cross-file messages."""
        origin = self.origin(section, index)
        if origin is None:
            return f"{section}[{index}]"
        line = origin.source.line_of((section, origin.index))
        return f"{origin.source.display}:{line}" if line else origin.source.display


@dataclass
class LoadedConfig:
    config: OrgConfig
    locator: Locator = field(default_factory=Locator)
    warnings: list[Problem] = field(default_factory=list)
