"""`tocsin migrate`, `tocsin user create` and `tocsin token create`: the bootstrap path."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from tests.cli.conftest import Invoke
from tocsin.auth.service import authenticate_token, verify_password
from tocsin.db import migrate
from tocsin.db.engine import create_db_engine
from tocsin.orgs.models import User


def _user(db_url: str, username: str) -> User | None:
    engine = create_db_engine(db_url, pool_size=1)
    try:
        with sa.orm.Session(engine) as s:
            return s.scalars(sa.select(User).where(User.username == username)).one_or_none()
    finally:
        engine.dispose()


def test_migrate_up_and_down_on_a_fresh_sqlite(tocsin: Invoke, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    up = tocsin("migrate", "--database-url", url)
    assert up.exit_code == 0, up.output
    assert "(newest)" in up.stdout
    engine = create_db_engine(url, pool_size=1)
    assert migrate.is_at_head(engine)

    down = tocsin("migrate", "--downgrade", "base", "--database-url", url)
    assert down.exit_code == 0, down.output
    assert "database at revision base (empty)" in down.stdout
    assert migrate.current_revision(engine) is None
    engine.dispose()


def test_migrate_to_unknown_revision_is_one_line(tocsin: Invoke, tmp_path: Path) -> None:
    result = tocsin("migrate", "--revision", "nope", "--database-url", f"sqlite:///{tmp_path}/x.db")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: migration failed:")
    assert "Traceback" not in result.output


def test_migrate_uses_the_data_dir_from_the_environment(tocsin: Invoke, tmp_path: Path) -> None:
    result = tocsin("migrate", env={"TOCSIN_DATA_DIR": str(tmp_path / "data")})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "tocsin.db").exists()


def test_user_create_with_password_from_stdin(
    tocsin: Invoke, db_args: list[str], db_url: str
) -> None:
    result = tocsin(
        "user", "create", "carol", "--email", "carol@example.com", "--name", "Carol",
        "--role", "admin", "--time-zone", "Europe/Berlin", "--password-stdin", *db_args,
        input="correct horse battery\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "created user carol (admin)\n"
    carol = _user(db_url, "carol")
    assert carol is not None
    assert (carol.role, carol.time_zone, carol.name) == ("admin", "Europe/Berlin", "Carol")
    assert verify_password(carol.password_hash, "correct horse battery")
    assert "correct horse" not in result.output

    again = tocsin("user", "create", "carol", "--email", "other@example.com", *db_args)
    assert again.exit_code == 1
    assert again.stderr == "error: a user with this username already exists: carol\n"


def test_user_create_mistakes(tocsin: Invoke, db_args: list[str]) -> None:
    bad_zone = tocsin(
        "user", "create", "dave", "--email", "d@example.com", "--time-zone", "Mars/Olympus",
        *db_args,
    )  # fmt: skip
    assert bad_zone.exit_code == 2
    assert bad_zone.stderr.startswith("error: time_zone: unknown time zone 'Mars/Olympus'")

    bad_name = tocsin("user", "create", "Dave Smith", "--email", "d@example.com", *db_args)
    assert bad_name.exit_code == 2
    assert bad_name.stderr.startswith("error: username:")

    short = tocsin(
        "user", "create", "dave", "--email", "d@example.com", "--password-stdin", *db_args,
        input="short\n",
    )  # fmt: skip
    assert short.exit_code == 2
    assert "at least 8 characters" in short.stderr

    bad_role = tocsin("user", "create", "dave", "--email", "d@example.com", "--role", "root")
    assert bad_role.exit_code == 2


def test_token_create_prints_a_working_token_once(
    tocsin: Invoke, db_args: list[str], db_url: str
) -> None:
    erin = tocsin("user", "create", "erin", "--email", "erin@example.com", *db_args)
    assert erin.exit_code == 0, erin.output
    result = tocsin("token", "create", "--name", "laptop", "--role", "responder",
                    "--user", "erin", *db_args)  # fmt: skip
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("tcs_")
    assert "shown only now" in result.stderr
    engine = create_db_engine(db_url, pool_size=1)
    with sa.orm.Session(engine) as s:
        principal = authenticate_token(s, token, now=datetime.now(UTC), bootstrap_token=None)
    engine.dispose()
    assert principal is not None
    assert (principal.actor, principal.role) == ("user:erin", "responder")

    service_token = tocsin(
        "token", "create", "--name", "ci", "--role", "admin", "--expires-days", "30", "--json",
        *db_args,
    )  # fmt: skip
    body = json.loads(service_token.stdout)
    assert (body["name"], body["role"], body["user"]) == ("ci", "admin", None)
    assert body["token"].startswith("tcs_") and body["expires_at"]


def test_token_cannot_outrank_its_user_or_name_a_stranger(
    tocsin: Invoke, db_args: list[str]
) -> None:
    tocsin("user", "create", "finn", "--email", "finn@example.com", "--role", "observer", *db_args)
    higher = tocsin("token", "create", "--name", "x", "--role", "admin", "--user", "finn", *db_args)
    assert higher.exit_code == 1
    assert higher.stderr == (
        "error: finn has the observer role; a token cannot have more than its user\n"
    )
    stranger = tocsin("token", "create", "--name", "x", "--role", "observer", "--user", "nobody",
                      *db_args)  # fmt: skip
    assert stranger.exit_code == 1
    assert stranger.stderr == "error: no user 'nobody'\n"
    assert stranger.stdout == ""


def test_unreachable_database_is_one_line(tocsin: Invoke) -> None:
    result = tocsin(
        "token", "create", "--name", "x", "--role", "admin",
        "--database-url", "postgresql://nobody@127.0.0.1:1/none",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("error: database error:")
    assert len(result.stderr.strip().splitlines()) == 1
