"""`tocsin user create` and `tocsin token create`: straight on the database, so they work
before anyone can log in (the bootstrap path)."""

from __future__ import annotations

import sys
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
import typer
from pydantic import ValidationError

from tocsin.auth.service import ROLE_RANK, create_token, hash_password
from tocsin.cli.common import (
    CliError,
    DatabaseUrlOption,
    DataDirOption,
    database,
    err,
    load_settings,
    out,
    print_json,
)
from tocsin.clock import SystemClock
from tocsin.config.models import UserSpec
from tocsin.db.engine import make_session_factory
from tocsin.orgs.models import User

user_app = typer.Typer(help="Users (bootstrap: works without a running server).")
token_app = typer.Typer(help="API tokens (bootstrap: works without a running server).")

MIN_PASSWORD = 8


class Role(StrEnum):
    admin = "admin"
    responder = "responder"
    observer = "observer"


def _read_password() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        raise CliError(f"the password on stdin must have at least {MIN_PASSWORD} characters", 2)
    return password


@user_app.command("create")
def create_user(
    username: Annotated[str, typer.Argument(help="Login name: lowercase, digits, . _ -")],
    email: Annotated[str, typer.Option("--email", help="Email address.")],
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    role: Annotated[Role, typer.Option("--role")] = Role.responder,
    time_zone: Annotated[str, typer.Option("--time-zone", help="IANA time zone.")] = "UTC",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a password from the first stdin line.")
    ] = False,
    database_url: DatabaseUrlOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a user (optionally with a password, read from stdin, never from arguments)."""
    try:
        spec = UserSpec(
            username=username,
            name=name or username,
            email=email,
            role=role.value,
            time_zone=time_zone,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise CliError(f"{field}: {first['msg'].removeprefix('Value error, ')}", 2) from None
    password_hash = hash_password(_read_password()) if password_stdin else None
    settings = load_settings(database_url=database_url, data_dir=data_dir)
    with (
        database(settings) as engine,
        make_session_factory(engine)() as session,
        session.begin(),
    ):
        clash = session.scalars(
            sa.select(User).where(sa.or_(User.username == spec.username, User.email == spec.email))
        ).first()
        if clash is not None:
            what = "username" if clash.username == spec.username else "email"
            raise CliError(f"a user with this {what} already exists: {clash.username}")
        session.add(
            User(
                **spec.model_dump(exclude={"contact_methods", "notification_rules"}),
                password_hash=password_hash,
                created_at=SystemClock().now(),
            )
        )
    out.print(f"created user {spec.username} ({spec.role})", markup=False)


@token_app.command("create")
def create_api_token(
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. ci.")],
    role: Annotated[Role, typer.Option("--role")],
    user: Annotated[
        str | None, typer.Option("--user", help="Username the token acts as (recommended).")
    ] = None,
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, help="Expire after this many days.")
    ] = None,
    json: Annotated[bool, typer.Option("--json")] = False,
    database_url: DatabaseUrlOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create an API token and print it once: only its hash is stored."""
    if not name.strip() or len(name) > 200:
        raise CliError("--name must have 1 to 200 characters", 2)
    settings = load_settings(database_url=database_url, data_dir=data_dir)
    now = SystemClock().now()
    with (
        database(settings) as engine,
        make_session_factory(engine)() as session,
        session.begin(),
    ):
        user_id = None
        if user is not None:
            owner = session.scalars(sa.select(User).where(User.username == user)).one_or_none()
            if owner is None:
                raise CliError(f"no user {user!r}")
            if ROLE_RANK[owner.role] < ROLE_RANK[role.value]:
                raise CliError(
                    f"{user} has the {owner.role} role; a token cannot have more than its user"
                )
            user_id = owner.id
        expires = now + timedelta(days=expires_days) if expires_days else None
        row, token = create_token(
            session, name=name, role=role.value, user_id=user_id, now=now, expires_at=expires
        )
        token_id = row.id
    if json:
        print_json(
            {
                "id": token_id,
                "name": name,
                "role": role.value,
                "user": user,
                "expires_at": expires.isoformat() if expires else None,
                "token": token,
            }
        )
        return
    err.print(
        f"created token {name!r} ({role.value}{', as ' + user if user else ''}); it is shown "
        "only now:",
        markup=False,
    )
    sys.stdout.write(token + "\n")
