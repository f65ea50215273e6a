"""`tocsin demo`: a working Tocsin in one command, on SQLite, with the example organisation."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
import typer
from sqlalchemy.orm import Session, sessionmaker

from tocsin.auth.service import authenticate_token, create_token
from tocsin.cli.common import CliError, load_settings, open_engine
from tocsin.cli.demo_mailbox import DemoMailbox
from tocsin.cli.server_cmd import HostOption, PortOption, prepare, run_server
from tocsin.clock import SystemClock
from tocsin.db.engine import make_session_factory
from tocsin.observability.logging import configure_logging
from tocsin.orgs.models import Integration, Service, User
from tocsin.settings import Settings

ADMIN_USERNAME = "admin"
TOKEN_FILE = "admin-token"  # noqa: S105 - a file name


def demo(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the SQLite database and the token live.")
    ] = Path("./tocsin-data"),
    config: Annotated[
        Path, typer.Option("--config", help="Configuration directory to apply.")
    ] = Path("examples"),
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """A working Tocsin on SQLite with the example organisation, in one command.

    Migrates an SQLite database in --data-dir, applies --config, prints an admin token, the
    integration keys and curl commands that trigger incidents, then serves."""
    if not config.exists():
        raise CliError(f"no configuration at {config}: pass --config DIR", 2)
    data_dir.mkdir(parents=True, exist_ok=True)
    base = load_settings(host=host, port=port)
    settings = replace(
        base,
        data_dir=data_dir,
        database_url=f"sqlite:///{(data_dir / 'tocsin.db').resolve()}",
        config_dir=config,
        bootstrap_token=None,
        log_json=False,
        log_level=os.environ.get("TOCSIN_LOG_LEVEL", "INFO"),
    )
    configure_logging(settings.log_level, json=False)
    mailbox = None
    if not settings.smtp_host:
        mailbox = DemoMailbox(data_dir / "mailbox")
        if mailbox.start():
            settings = replace(
                settings, smtp_host=mailbox.host, smtp_port=mailbox.port, smtp_starttls=False
            )
        else:
            mailbox = None
    prepare(settings)
    engine = open_engine(settings)
    try:
        factory = make_session_factory(engine)
        token = ensure_admin_token(factory, data_dir / TOKEN_FILE)
        integrations = integration_keys(factory)
    finally:
        engine.dispose()
    sys.stdout.write(welcome(settings, token, data_dir / TOKEN_FILE, integrations))
    if mailbox is not None:
        sys.stdout.write(
            f"\nPages by email go to a local mailbox: {mailbox.directory}/*.eml, and each is\n"
            "logged below with its acknowledge link.\n"
        )
    sys.stdout.flush()
    try:
        run_server(settings)
    finally:
        if mailbox is not None:
            mailbox.stop()


def ensure_admin_token(factory: sessionmaker[Session], path: Path) -> str:
    """The token saved by an earlier run if it still works, else a new one (saved, mode 0600)."""
    now = SystemClock().now()
    if path.exists():
        saved = path.read_text(encoding="utf-8").strip()
        with factory() as session:
            principal = authenticate_token(session, saved, now=now, bootstrap_token=None)
        if principal is not None and principal.role == "admin":
            return saved
    with factory() as session, session.begin():
        user = session.scalars(sa.select(User).where(User.username == ADMIN_USERNAME)).first()
        if user is None:
            user = User(
                username=ADMIN_USERNAME,
                name="Demo administrator",
                email="admin@tocsin.invalid",
                role="admin",
                time_zone="UTC",
                created_at=now,
            )
            session.add(user)
            session.flush()
        user.role, user.active = "admin", True
        _, token = create_token(session, name="demo-admin", role="admin", user_id=user.id, now=now)
    _write_private(path, token + "\n")
    return token


def _write_private(path: Path, text: str) -> None:
    """Written under a temporary name with mode 0600 from the start, then renamed."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def integration_keys(
    factory: sessionmaker[Session],
) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(service, integration, type, key, options) for every non-internal integration."""
    with factory() as session:
        rows = session.execute(
            sa.select(
                Service.slug,
                Integration.name,
                Integration.type,
                Integration.key,
                Integration.options,
            )
            .join(Service, Service.id == Integration.service_id)
            .where(Service.internal.is_(False), Integration.type != "internal")
            .order_by(Service.slug, Integration.name)
        )
        return [(s, n, t, k, dict(o or {})) for s, n, t, k, o in rows]


# --- the welcome text ------------------------------------------------------------------


def _set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Put ``value`` at a dotted path, creating objects (and one-item lists for numbers)."""
    parts = path.split(".")
    node: Any = doc
    for part, following in zip(parts, [*parts[1:], None], strict=True):
        container: Any = [] if following is not None and following.isdigit() else {}
        if isinstance(node, list):
            while len(node) <= int(part):
                node.append(container if following is not None else None)
            if following is None:
                node[int(part)] = value
            node = node[int(part)]
        elif following is None:
            node[part] = value
        else:
            node = node.setdefault(part, container)


def _first_key_for(table: Any, wanted: str, fallback: str) -> str:
    if isinstance(table, dict):
        for key, value in table.items():
            if value == wanted:
                return str(key)
    return fallback


def _webhook_body(options: dict[str, Any], service: str) -> dict[str, Any]:
    mapping = options.get("mapping") or {}
    body: dict[str, Any] = {}
    _set_path(body, mapping.get("summary", "summary"), f"Demo: {service} is failing")
    _set_path(body, mapping.get("dedup_key", "dedup_key"), f"demo-{service}")
    _set_path(body, mapping.get("source", "source"), "demo")
    _set_path(
        body,
        mapping.get("severity", "severity"),
        _first_key_for(mapping.get("severity_map"), "critical", "critical"),
    )
    _set_path(
        body,
        mapping.get("action", "action"),
        _first_key_for(mapping.get("action_map"), "trigger", "trigger"),
    )
    return body


def trigger_request(
    base: str, service: str, kind: str, key: str, options: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The URL and body that trigger an incident through one integration."""
    if kind == "alertmanager":
        alert = {
            "status": "firing",
            "labels": {"alertname": "DemoAlert", "namespace": "demo", "severity": "critical"},
            "annotations": {"summary": f"Demo: {service} is failing"},
        }
        body = {"version": "4", "status": "firing", "receiver": "tocsin", "alerts": [alert]}
        return f"{base}/integrations/alertmanager/{key}", body
    if kind == "webhook":
        return f"{base}/integrations/webhook/{key}", _webhook_body(options, service)
    return f"{base}/v2/enqueue", {
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": f"demo-{service}",
        "payload": {
            "summary": f"Demo: {service} is failing",
            "source": "demo",
            "severity": "critical",
        },
    }


def curl(url: str, body: dict[str, Any]) -> str:
    data = orjson.dumps(body).decode()
    return f"curl -sS -X POST {url} -H 'Content-Type: application/json' -d {shlex.quote(data)}"


def welcome(
    settings: Settings,
    token: str,
    token_path: Path,
    integrations: list[tuple[str, str, str, str, dict[str, Any]]],
) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    base = f"http://{host}:{settings.port}"
    lines = [
        "",
        "Tocsin demo",
        f"  URL          {base}   (API docs: {base}/docs)",
        f"  Admin token  {token}",
        f"               saved in {token_path}; use it as TOCSIN_TOKEN or a Bearer token",
        "",
        "Integration keys",
    ]
    width = max((len(f"{s}/{n}") for s, n, *_ in integrations), default=0)
    for service, name, kind, key, _ in integrations:
        lines.append(f"  {f'{service}/{name}':<{width}}  {kind:<12}  {key}")
    lines += ["", "Trigger an incident (one command per integration):"]
    for service, name, kind, key, options in integrations:
        auth = (
            " (also needs its credentials: the integration has auth)" if options.get("auth") else ""
        )
        lines.append(f"  # {service}/{name} ({kind}){auth}")
        lines.append("  " + curl(*trigger_request(base, service, kind, key, options)))
    lines += [
        "",
        "Then look at it:",
        f"  TOCSIN_TOKEN={token} tocsin incidents list --url {base}",
        f"  TOCSIN_TOKEN={token} tocsin oncall --url {base}",
        f"  curl -sS -H 'Authorization: Bearer {token}' {base}/api/v1/incidents",
        "",
        f"Serving on {base} (Ctrl-C stops it)",
        "",
    ]
    return "\n".join(lines)
