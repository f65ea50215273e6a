"""Loads a configuration directory: every YAML file checked against the schema, then merged
and checked as a whole (duplicates across files, references between teams, users, services)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from tocsin.config.located import LoadedConfig, Locator, Origin
from tocsin.config.models import (
    PATTERN_HINTS,
    SECTIONS,
    BasicAuth,
    ConfigFile,
    OrgConfig,
    PagerDutyIntegration,
)
from tocsin.config.problems import ConfigError, Loc, Problem, format_path
from tocsin.config.sections import SECTIONS as APPLIERS
from tocsin.config.yamlsource import SourceFile, read_yaml

YAML_SUFFIXES = (".yaml", ".yml")
# Values of these fields are credentials and are never repeated in a message.
_QUIET_FIELDS = {"key", "address"}


def config_files(root: Path) -> list[Path]:
    """The YAML files of a directory (recursively, sorted, hidden ones skipped) or one file."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ConfigError([Problem(str(root), "", "no such file or directory")])
    files = [
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix in YAML_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    if not files:
        raise ConfigError([Problem(str(root), "", "no .yaml or .yml files in this directory")])
    return sorted(files)


def _data_loc(data: Any, loc: tuple[int | str, ...]) -> Loc:
    """Pydantic's error location with the union tags it inserts taken out, so the path is the
    one a reader sees in the file."""
    out: list[str | int] = []
    node = data
    tag_skipped = False
    for part in loc:
        if (
            not tag_skipped
            and isinstance(node, dict)
            and part in (node.get("type"), node.get("kind"))
        ):
            tag_skipped = True  # the tag of a discriminated union: not in the file
            continue
        tag_skipped = False
        out.append(part)
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        node = node[part] if in_dict or in_list else None
    return tuple(out)


def _message(error: ErrorDetails, loc: Loc) -> tuple[Loc, str]:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")
    last = loc[-1] if loc else ""
    quiet = last in _QUIET_FIELDS
    shown = f" (got {value!r})" if isinstance(value, str | int | float) and not quiet else ""
    if kind == "missing":
        return loc, f"missing required key {last!r}"
    if kind == "extra_forbidden":
        return loc, f"unknown key {last!r}"
    if kind == "union_tag_invalid":
        return (*loc, "type"), (
            f"unknown type {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
        )
    if kind == "union_tag_not_found":
        return (*loc, "type"), "missing required key 'type'"
    if kind == "string_pattern_mismatch":
        hint = PATTERN_HINTS.get(str(ctx.get("pattern")), f"match {ctx.get('pattern')}")
        return loc, f"must be {hint}{shown}"
    if kind == "value_error":
        return loc, str(error["msg"]).removeprefix("Value error, ")
    message = str(error["msg"])
    if message.startswith("Input should be"):
        message = "must be" + message.removeprefix("Input should be")
    return loc, message[0].lower() + message[1:] + shown


def _schema_problems(source: SourceFile, exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc, message = _message(error, _data_loc(source.data, tuple(error["loc"])))
        problems.append(source.problem(loc, message))
    return problems


def _parse(source: SourceFile) -> ConfigFile:
    if not isinstance(source.data, dict):
        raise ConfigError(
            [
                Problem(
                    source.display,
                    "",
                    f"the file must be a mapping with any of the keys {', '.join(SECTIONS)}",
                    1,
                )
            ]
        )
    try:
        return ConfigFile.model_validate(source.data)
    except ValidationError as exc:
        raise ConfigError(_schema_problems(source, exc)) from exc


def _display(path: Path, root: Path) -> str:
    return str(path) if root.is_file() else str(root / path.relative_to(root))


def load_config(root: Path) -> LoadedConfig:
    """Raises ConfigError listing every problem found; files are checked one by one first,
    and the whole only when each file is valid on its own."""
    problems: list[Problem] = []
    parsed: list[tuple[SourceFile, ConfigFile]] = []
    for path in config_files(root):
        try:
            source = read_yaml(path, _display(path, root))
            parsed.append((source, _parse(source)))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return merge(parsed)


def load_sources(files: Mapping[str, Any]) -> LoadedConfig:
    """Like ``load_config`` for data already in memory: {display name: parsed YAML}."""
    problems: list[Problem] = []
    parsed: list[tuple[SourceFile, ConfigFile]] = []
    for name, data in files.items():
        source = SourceFile(name, data)
        try:
            parsed.append((source, _parse(source)))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return merge(parsed)


def merge(parsed: list[tuple[SourceFile, ConfigFile]]) -> LoadedConfig:
    locator = Locator()
    merged: dict[str, list[Any]] = {key: [] for key in SECTIONS}
    for source, document in parsed:
        for key in SECTIONS:
            items = getattr(document, key)
            merged[key].extend(items)
            locator.origins.setdefault(key, []).extend(
                Origin(source, index) for index in range(len(items))
            )
    config = OrgConfig(**merged)
    problems = _duplicates(config, locator)
    if not problems:
        for section in APPLIERS:
            problems.extend(section.check(config, locator))
    if problems:
        raise ConfigError(problems)
    return LoadedConfig(config, locator)


def _duplicates(config: OrgConfig, at: Locator) -> list[Problem]:
    problems: list[Problem] = []
    for section in APPLIERS:
        first: dict[str, int] = {}
        for index, item in enumerate(getattr(config, section.key)):
            identity = section.identity(item)
            if identity in first:
                problems.append(
                    at.problem(
                        section.key,
                        index,
                        (section.id_field,),
                        f"duplicate {section.kind} {identity!r}, first defined at "
                        f"{at.where(section.key, first[identity])}",
                    )
                )
            else:
                first[identity] = index
    return problems


def unset_secret_variables(loaded: LoadedConfig, env: Mapping[str, str]) -> list[Problem]:
    """Warnings for secret variables the files name but the environment does not set."""
    warnings: list[Problem] = []
    for index, service in enumerate(loaded.config.services):
        for position, integration in enumerate(service.integrations):
            if isinstance(integration, PagerDutyIntegration):
                continue
            auth = integration.options.auth
            if auth is None:
                continue
            var = auth.password_env if isinstance(auth, BasicAuth) else auth.token_env
            if not env.get(var):
                warnings.append(
                    loaded.locator.problem(
                        "services",
                        index,
                        ("integrations", position, "options", "auth"),
                        f"environment variable {var} is not set; apply needs it to create "
                        "this integration or change its secret",
                        warning=True,
                    )
                )
    for index, user in enumerate(loaded.config.users):
        for position, method in enumerate(user.contact_methods or []):
            named = [("address_env", method.address_env)] if method.address_env else []
            named += [(f"options_env.{k}", v) for k, v in sorted(method.options_env.items())]
            for where, var in named:
                if not env.get(var):
                    warnings.append(
                        loaded.locator.problem(
                            "users",
                            index,
                            ("contact_methods", position, *where.split(".")),
                            f"environment variable {var} is not set; apply needs it to create "
                            "this contact method or change its secret",
                            warning=True,
                        )
                    )
    return warnings


__all__ = [
    "ConfigError",
    "LoadedConfig",
    "Problem",
    "config_files",
    "format_path",
    "load_config",
    "load_sources",
    "unset_secret_variables",
]
