"""Validation messages name the file, the path inside it, the line and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.conftest import WriteFiles
from tocsin.config.loader import load_config
from tocsin.config.problems import ConfigError

VALID_USERS = """
users:
  - username: alice
    name: Alice
    email: alice@example.com
  - username: bob
    name: Bob
    email: bob@example.com
"""
VALID_TEAMS = """
teams:
  - slug: payments
    name: Payments
    members: [alice]
"""


def problems(directory: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    return [str(p) for p in info.value.problems]


def test_valid_directory_loads(write_config: WriteFiles) -> None:
    directory = write_config(**{"users.yaml": VALID_USERS, "teams.yaml": VALID_TEAMS})
    loaded = load_config(directory)
    assert [u.username for u in loaded.config.users] == ["alice", "bob"]
    assert loaded.config.teams[0].members == ["alice"]


def test_unknown_integration_type_names_file_path_and_line(write_config: WriteFiles) -> None:
    directory = write_config(
        **{
            "services.yaml": """
            services:
              - slug: a
                name: A
              - slug: b
                name: B
              - slug: c
                name: C
                integrations:
                  - name: events
                    type: pagerdoody
            """
        }
    )
    [message] = problems(directory)
    assert message == (
        f"{directory}/services.yaml:10: services[2].integrations[0].type: unknown type "
        "'pagerdoody'; expected one of 'pagerduty', 'alertmanager', 'webhook'"
    )


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "users:\n  - username: Alice Smith\n    name: A\n    email: a@example.com\n",
            ":2: users[0].username: must be lowercase letters, digits, '.', '_' and '-', "
            "starting with a letter or digit (got 'Alice Smith')",
        ),
        (
            "users:\n  - username: a\n    name: A\n    email: not-an-email\n",
            ":4: users[0].email: must be an email address (got 'not-an-email')",
        ),
        (
            "users:\n  - username: a\n    name: A\n    email: a@example.com\n    role: root\n",
            ":5: users[0].role: must be 'admin', 'responder' or 'observer' (got 'root')",
        ),
        (
            "users:\n  - username: a\n    name: A\n    email: a@example.com\n"
            "    time_zone: Europe/Berln\n",
            ":5: users[0].time_zone: unknown time zone 'Europe/Berln'",
        ),
        (
            "users:\n  - username: a\n    email: a@example.com\n",
            ":2: users[0].name: missing required key 'name'",
        ),
        (
            "teams:\n  - slug: t\n    name: T\n    colour: red\n",
            ":4: teams[0].colour: unknown key 'colour'",
        ),
        ("runbooks: []\n", ":1: runbooks: unknown key 'runbooks'"),
        (
            "services:\n  - slug: s\n    name: S\n    urgency: medium\n",
            ":4: services[0].urgency: must be 'high' or 'low' (got 'medium')",
        ),
        (
            "services:\n  - slug: s\n    name: S\n    auto_resolve_seconds: 0\n",
            ":4: services[0].auto_resolve_seconds: must be greater than or equal to 1",
        ),
        (
            "services:\n  - slug: s\n    name: S\n    grouping: {type: fields}\n",
            ":4: services[0].grouping.fields: missing required key 'fields'",
        ),
        (
            "services:\n  - slug: s\n    name: S\n    grouping: {type: sometimes}\n",
            ":4: services[0].grouping.type: unknown type 'sometimes'; expected one of "
            "'none', 'time_window', 'fields'",
        ),
        (
            "services:\n  - slug: s\n    name: S\n    grouping: {window_seconds: 5}\n",
            ":4: services[0].grouping.type: missing required key 'type'",
        ),
        (
            "services:\n  - slug: s\n    name: S\n    integrations:\n"
            "      - {name: e, type: pagerduty, key: TOO-SHORT}\n",
            ":5: services[0].integrations[0].key: must be exactly 32 lowercase letters and digits",
        ),
        (
            "services:\n  - slug: s\n    name: S\n    integrations:\n"
            "      - name: hook\n        type: webhook\n        options:\n"
            "          mapping:\n            severity_map: {P1: urgent}\n",
            ":9: services[0].integrations[0].options.mapping.severity_map.P1: must be 'critical', "
            "'error', 'warning' or 'info' (got 'urgent')",
        ),
        (
            "services:\n  - slug: s\n    name: S\n    integrations:\n"
            "      - name: pd\n        type: pagerduty\n        options: {summary: x}\n",
            ":7: services[0].integrations[0].options.summary: unknown key 'summary'",
        ),
        ("- just\n- a list\n", ":1: the file must be a mapping with any of the keys"),
        ("teams: {slug: x}\n", ":1: teams: must be a valid list"),
    ],
)
def test_schema_mistakes(write_config: WriteFiles, yaml_text: str, expected: str) -> None:
    directory = write_config(**{"org.yaml": yaml_text})
    [message] = problems(directory)
    assert message.startswith(f"{directory}/org.yaml{expected}"), message


def test_plaintext_secret_is_refused_without_echoing_it(write_config: WriteFiles) -> None:
    directory = write_config(
        **{
            "am.yaml": """
            services:
              - slug: k8s
                name: K8s
                integrations:
                  - name: am
                    type: alertmanager
                    options:
                      auth:
                        type: basic
                        username: alertmanager
                        password: hunter2-very-secret
            """
        }
    )
    [message] = problems(directory)
    assert "services[0].integrations[0].options.auth: 'password' is not allowed" in message
    assert "password_env" in message
    assert "hunter2" not in message


def test_invalid_key_is_not_echoed(write_config: WriteFiles) -> None:
    directory = write_config(
        **{
            "s.yaml": "services:\n  - slug: s\n    name: S\n    integrations:\n"
            "      - {name: e, type: pagerduty, key: ALMOST-A-REAL-KEY-0123456789abcd}\n"
        }
    )
    [message] = problems(directory)
    assert "ALMOST-A-REAL-KEY" not in message


def test_every_mistake_in_every_file_is_reported(write_config: WriteFiles) -> None:
    directory = write_config(
        **{
            "a.yaml": "users:\n  - username: a\n    name: A\n    email: bad\n",
            "b.yaml": "teams:\n  - slug: B\n    name: B\n",
        }
    )
    found = problems(directory)
    assert len(found) == 2
    assert "a.yaml:4: users[0].email" in found[0]
    assert "b.yaml:2: teams[0].slug" in found[1]


def test_duplicate_yaml_key(write_config: WriteFiles) -> None:
    directory = write_config(**{"t.yaml": "teams:\n  - slug: t\n    name: T\n    name: Other\n"})
    [message] = problems(directory)
    assert message == f"{directory}/t.yaml:4: teams[0].name: duplicate key 'name' (first on line 3)"


def test_yaml_syntax_error_has_a_line(write_config: WriteFiles) -> None:
    directory = write_config(**{"t.yaml": "teams:\n  - slug: t\n    name: [unclosed\n"})
    [message] = problems(directory)
    assert message.startswith(f"{directory}/t.yaml:")
    assert "invalid YAML" in message


def test_duplicate_slug_across_files(write_config: WriteFiles) -> None:
    directory = write_config(
        **{
            "a.yaml": "services:\n  - slug: checkout\n    name: Checkout\n",
            "b.yaml": "services:\n  - slug: other\n    name: O\n  - slug: checkout\n    name: C\n",
        }
    )
    [message] = problems(directory)
    assert message == (
        f"{directory}/b.yaml:4: services[1].slug: duplicate service 'checkout', first defined "
        f"at {directory}/a.yaml:2"
    )


def test_cross_references(write_config: WriteFiles) -> None:
    directory = write_config(
        **{
            "users.yaml": VALID_USERS,
            "teams.yaml": """
            teams:
              - slug: payments
                name: Payments
                members: [alice, carol, alice]
            """,
            "services.yaml": """
            services:
              - slug: checkout
                name: Checkout
                team: paymnets
                integrations:
                  - {name: events, type: pagerduty, key: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
                  - {name: events, type: webhook}
              - slug: refunds
                name: Refunds
                integrations:
                  - {name: events, type: pagerduty, key: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
            """,
        }
    )
    found = problems(directory)
    assert f"{directory}/teams.yaml:4: teams[0].members[1]: unknown user 'carol'" in found[0]
    assert "teams[0].members[2]: 'alice' is listed twice" in found[1]
    assert f"{directory}/services.yaml:4: services[0].team: unknown team 'paymnets'" in found[2]
    assert "services[0].integrations[1].name: duplicate integration name 'events'" in found[3]
    assert found[4].endswith(
        "services[1].integrations[0].key: duplicate integration key: checkout/events uses it too"
    )
    assert len(found) == 5


def test_duplicate_email(write_config: WriteFiles) -> None:
    directory = write_config(
        **{
            "u.yaml": "users:\n  - {username: a, name: A, email: x@example.com}\n"
            "  - {username: b, name: B, email: X@example.com}\n"
        }
    )
    [message] = problems(directory)
    assert "u.yaml:3: users[1].email: email 'X@example.com' is already used by user 'a'" in message


def test_directory_without_yaml_and_missing_directory(tmp_path: Path) -> None:
    assert problems(tmp_path) == [f"{tmp_path}: no .yaml or .yml files in this directory"]
    assert problems(tmp_path / "nope") == [f"{tmp_path / 'nope'}: no such file or directory"]


def test_hidden_files_are_skipped_and_empty_files_allowed(write_config: WriteFiles) -> None:
    directory = write_config(**{"empty.yaml": "", "users.yml": VALID_USERS})
    (directory / ".draft.yaml").write_text("nonsense: [")
    assert len(load_config(directory).config.users) == 2


def test_yaml_merge_keys_work(write_config: WriteFiles) -> None:
    directory = write_config(
        **{
            "s.yaml": """
            defaults: &defaults
            services:
              - &base {slug: a, name: A, urgency: low}
              - <<: *base
                slug: b
            """.replace("defaults: &defaults\n", "")
        }
    )
    services = load_config(directory).config.services
    assert [(s.slug, s.urgency) for s in services] == [("a", "low"), ("b", "low")]


def test_alias_bombs_and_self_references_are_refused(write_config: WriteFiles) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefg":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    directory = write_config(**{"bomb.yaml": bomb, "loop.yaml": "teams: &t [*t]\n"})
    found = problems(directory)
    assert len(found) == 2
    assert all("too large or nested too deeply" in p for p in found)
