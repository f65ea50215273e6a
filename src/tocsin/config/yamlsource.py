"""Reads one YAML file into plain data and remembers the line of every value in it.

PyYAML silently keeps the last of two equal keys; a configuration must not, so mappings are
built here from the composed node tree, which also carries the line marks for messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tocsin.config.problems import ConfigError, Loc, Problem, format_path

MERGE_TAG = "tag:yaml.org,2002:merge"
# Aliases can make a small file expand enormously (or refer to itself): cap what one file builds.
MAX_VALUES = 200_000
MAX_DEPTH = 64


class _TooLarge(Exception):
    pass


@dataclass
class SourceFile:
    """One parsed file: its data and the 1-based line of each path inside it."""

    display: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """The line of ``loc``, or of its nearest existing parent (e.g. for a missing key)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None

    def problem(self, loc: Loc, message: str, *, level: str = "error") -> Problem:
        return Problem(
            self.display,
            format_path(loc),
            message,
            self.line_of(loc),
            "warning" if level == "warning" else "error",
        )


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, source: SourceFile) -> None:
        self.loader = loader
        self.source = source
        self.problems: list[Problem] = []
        self.values = 0

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.values += 1
        if self.values > MAX_VALUES or len(loc) > MAX_DEPTH:
            raise _TooLarge
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            out: list[Any] = []
            for index, item in enumerate(node.value):
                self.source.lines[(*loc, index)] = item.start_mark.line + 1
                out.append(self.build(item, (*loc, index)))
            return out
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        first_seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in first_seen:
                self.problems.append(
                    Problem(
                        self.source.display,
                        format_path((*loc, str(key))),
                        f"duplicate key {key!r} (first on line {first_seen[key]})",
                        line,
                    )
                )
            else:
                first_seen[key] = line
        # Resolve '<<' merge keys the way PyYAML does: the mapping's own keys win.
        self.loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                self.problems.append(self.source.problem(loc, "mapping keys must be plain strings"))
                continue
            child = (*loc, key if isinstance(key, str) else str(key))
            self.source.lines[child] = key_node.start_mark.line + 1
            out[child[-1]] = self.build(value_node, child)
        return out


def read_yaml(path: Path, display: str | None = None) -> SourceFile:
    """Parse one file. Raises ConfigError for syntax errors and duplicate keys."""
    source = SourceFile(display or str(path), None)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(source.display, "", f"cannot read the file: {exc}")]) from exc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            source.data = {}
            return source
        builder = _Builder(loader, source)
        source.data = builder.build(node, ())
    except _TooLarge:
        raise ConfigError(
            [
                Problem(
                    source.display,
                    "",
                    f"the file is too large or nested too deeply (more than {MAX_VALUES} values "
                    f"or {MAX_DEPTH} levels, counting what aliases expand to)",
                )
            ]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(
            [
                Problem(
                    source.display,
                    "",
                    f"invalid YAML: {what or exc}",
                    mark.line + 1 if mark else None,
                )
            ]
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(source.display, "", f"invalid YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    if builder.problems:
        raise ConfigError(builder.problems)
    return source
