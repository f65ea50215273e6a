"""A storm of incidents paged by email through real server processes and a real SMTP server:
every page that should go out arrives exactly once, and none after its incident was
acknowledged.

Two nodes share one PostgreSQL database (a single node on SQLite). The organisation is built
through the REST API: a policy whose first level pages ana directly and whoever is on call in a
schedule (ben), and whose second level pages dan a minute later; ana's rules email her work
address at once and her home address after a minute; ben has no rules, so every contact method
is used at once. Digests are off, so each page is one email. A third of the incidents are
acknowledged once their first pages arrived: their delayed page and their second level must
never be sent. The one-minute delays (the shortest a policy or rule can have) run on the real
clock, so each variant takes a little over a minute.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from tests.notify.smtp_server import SmtpServer
from tests.procs import (
    Send,
    ServerPool,
    ServerProcess,
    fire,
    pd_trigger,
    pending_events,
    require_database,
    wait_until,
)
from tocsin.engine.models import Job
from tocsin.incidents.models import Incident
from tocsin.notify.channels.base import Message
from tocsin.notify.channels.email import EmailChannel, EmailConfig

pytestmark = pytest.mark.slow

SMTP_FROM = "pager@tocsin.example.com"
ADDRESSES = {
    ("ana", "work"): "ana@example.com",
    ("ana", "home"): "ana.home@example.com",
    ("ben", "email"): "ben@example.com",
    ("cai", "email"): "cai@example.com",
    ("dan", "email"): "dan@example.com",
}
# One page per (incident, level, loop, user, contact method) that should be emailed: at once,
# and those that only go out if nobody acknowledges within the minute.
IMMEDIATE = [(0, "ana", "work"), (0, "ben", "email")]
UNLESS_ACKNOWLEDGED = [(0, "ana", "home"), (1, "dan", "email")]
SETTLE_SECONDS = 180  # the storm, the one-minute delays and the sends after them


@dataclass(frozen=True)
class Variant:
    kind: str
    nodes: int
    incidents: int


VARIANTS = [
    pytest.param(
        Variant("postgresql", 2, 150), id="postgresql-2-nodes", marks=pytest.mark.postgres
    ),
    pytest.param(Variant("sqlite", 1, 90), id="sqlite-1-node"),
]


class Api:
    """The REST API of one node, as the bootstrap admin."""

    def __init__(self, server: ServerProcess) -> None:
        self.client = httpx.Client(
            base_url=f"{server.base_url}/api/v1",
            headers={"Authorization": f"Bearer {server.token}"},
            timeout=30.0,
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.client.request(method, path, json=body)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json()

    def close(self) -> None:
        self.client.close()


@dataclass
class Org:
    user_ids: dict[str, int]
    method_ids: dict[tuple[str, str], int]


def build_org(api: Api) -> Org:
    user_ids: dict[str, int] = {}
    for name in ("ana", "ben", "cai", "dan"):
        user = api.call(
            "POST", "/users", {"username": name, "name": name.title(), "email": f"{name}@corp.test"}
        )
        user_ids[name] = user["id"]
    method_ids = {}
    for (user, method), address in ADDRESSES.items():
        created = api.call(
            "POST",
            f"/users/{user}/contact-methods",
            {"name": method, "kind": "email", "address": address},
        )
        method_ids[(user, method)] = created["id"]
    for user, delay, method in [("ana", 0, "work"), ("ana", 1, "home"), ("dan", 0, "email")]:
        rule = {"urgency": "high", "delay_minutes": delay, "contact_method": method}
        api.call("POST", f"/users/{user}/notification-rules", rule)

    # Weekly turns that began three days ago: ben holds the turn all through the test, and no
    # shift starts near it (no hand-off notice joins the emails).
    zone = ZoneInfo("Europe/Berlin")
    start = (datetime.now(zone) - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    layer = {
        "name": "weekly",
        "members": ["ben", "cai"],
        "start": start.strftime("%Y-%m-%dT%H:%M"),
        "rotation": {"length": 1, "unit": "weeks"},
    }
    schedule = {"slug": "primary", "name": "Primary", "time_zone": zone.key, "layers": [layer]}
    api.call("POST", "/schedules", schedule)
    assert api.call("GET", "/schedules/primary/oncall")["user"]["username"] == "ben"
    policy = {
        "slug": "storm",
        "name": "Storm",
        "repeat": 0,
        "levels": [
            {
                "delay_minutes": 1,
                "targets": [
                    {"type": "user", "username": "ana"},
                    {"type": "schedule", "slug": "primary"},
                ],
            },
            {"delay_minutes": 1, "targets": [{"type": "user", "username": "dan"}]},
        ],
    }
    api.call("POST", "/escalation-policies", policy)
    api.call("PATCH", "/services/api", {"escalation_policy": "storm"})
    return Org(user_ids, method_ids)


def message_id(key: str) -> str:
    channel = EmailChannel(EmailConfig(from_address=SMTP_FROM))
    return channel.message_id(Message(idempotency_key=key, subject="-", text="-"))


def page_key(org: Org, incident: int, level: int, user: str, method: str) -> str:
    """notify.pages.page_key plus the contact method: loop 0, as nothing re-triggers here."""
    return f"page:{incident}:{level}:0:{org.user_ids[user]}:{org.method_ids[(user, method)]}"


@dataclass(frozen=True)
class Email:
    message_id: str
    incident: int
    rcpt: str


def received(smtp: SmtpServer) -> list[Email]:
    emails = []
    for mail in list(smtp.delivered):
        message = mail.parsed()
        [rcpt] = mail.rcpt_tos
        emails.append(Email(str(message["Message-ID"]), int(message["X-Tocsin-Incident"]), rcpt))
    return emails


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_storm_pages_everyone_once_and_nobody_after_acknowledgement(
    servers: ServerPool, smtp: SmtpServer, variant: Variant
) -> None:
    require_database(variant.kind)
    db = servers.database(variant.kind)
    env = {
        "TOCSIN_SECRET_KEY": Fernet.generate_key().decode(),
        "TOCSIN_SMTP_HOST": "127.0.0.1",
        "TOCSIN_SMTP_PORT": str(smtp.port),
        "TOCSIN_SMTP_STARTTLS": "false",
        "TOCSIN_SMTP_FROM": SMTP_FROM,
        "TOCSIN_DIGEST_MAX_PAGES": "0",
    }
    nodes = [servers.start(db, **env) for _ in range(variant.nodes)]
    apis = [Api(node) for node in nodes]
    engine = db.engine()
    try:
        org = build_org(apis[0])
        keys = [f"storm-{i}" for i in range(variant.incidents)]
        sends = [
            Send(f"{nodes[i % len(nodes)].base_url}/v2/enqueue", pd_trigger(db.pd_key, key), key)
            for i, key in enumerate(keys)
        ]
        report = fire(sends, threads=8)
        assert (report.failed, report.rejected, report.not_sent) == ([], [], 0)

        wait_until(lambda: pending_events(engine) == 0, timeout=60, what="processing")
        with engine.connect() as conn:
            by_key = dict(conn.execute(sa.text("SELECT dedup_key, incident_id FROM alerts")).all())
        assert set(by_key) == set(keys)
        incidents = [by_key[k] for k in keys]
        assert len(set(incidents)) == len(keys)
        acknowledged = set(incidents[::3])

        # Acknowledge once an incident's first pages have arrived, while the rest of the storm is
        # still being paged and before the next level and the delayed rule are due.
        first_pages = {(i, ADDRESSES[(u, m)]) for i in acknowledged for _, u, m in IMMEDIATE}
        wait_until(
            lambda: first_pages <= {(e.incident, e.rcpt) for e in received(smtp)},
            timeout=60,
            what="the first pages of the incidents to acknowledge",
        )
        for n, incident in enumerate(sorted(acknowledged)):
            apis[n % len(apis)].call("POST", f"/incidents/{incident}/acknowledge")
        _acknowledged_in_time(engine, acknowledged)

        wait_until(
            lambda: _quiet(engine),
            timeout=SETTLE_SECONDS,
            what="every escalation step and notification to finish",
            interval=0.5,
        )
        emails = received(smtp)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT unique_key, state, level, incident_id, provider_message_id "
                    "FROM notifications"
                )
            ).all()
    finally:
        engine.dispose()
        for api in apis:
            api.close()

    expected: dict[str, tuple[int, str]] = {}  # page key -> (incident, address)
    for incident in incidents:
        pages = IMMEDIATE + ([] if incident in acknowledged else UNLESS_ACKNOWLEDGED)
        for level, user, method in pages:
            key = page_key(org, incident, level, user, method)
            expected[key] = (incident, ADDRESSES[(user, method)])

    # Exactly the expected emails, none twice: Message-IDs derive from the page keys.
    twice = [mid for mid, n in Counter(e.message_id for e in emails).items() if n > 1]
    assert twice == []
    assert {e.message_id for e in emails} == {message_id(k) for k in expected}
    assert Counter((e.incident, e.rcpt) for e in emails) == Counter(expected.values())
    about_acknowledged = {(e.incident, e.rcpt) for e in emails if e.incident in acknowledged}
    assert about_acknowledged == {
        (i, ADDRESSES[(u, m)]) for i in acknowledged for _, u, m in IMMEDIATE
    }

    # The outbox: every page sent once, the delayed page of each acknowledged incident
    # cancelled, nothing waiting, failed, unknown or bundled; no second level once acknowledged.
    states = Counter(row.state for row in rows)
    cancelled = {row.unique_key for row in rows if row.state == "cancelled"}
    assert states == {"sent": len(expected), "cancelled": len(acknowledged)}
    assert {row.unique_key for row in rows if row.state == "sent"} == set(expected)
    assert cancelled == {page_key(org, i, 0, "ana", "home") for i in acknowledged}
    assert not [row for row in rows if row.incident_id in acknowledged and row.level == 1]
    assert {row.provider_message_id for row in rows if row.state == "sent"} == {
        e.message_id for e in emails
    }


def _acknowledged_in_time(engine: sa.Engine, acknowledged: set[int]) -> None:
    """The expectations assume every acknowledgement beat its incident's next level; on a
    machine too slow for that the test says so instead of reporting a wrong page."""
    with engine.connect() as conn:
        acked_at = dict(
            conn.execute(
                sa.select(Incident.id, Incident.acknowledged_at).where(
                    Incident.status == "acknowledged"
                )
            ).all()
        )
        # escalation.step:<incident>:<generation>:<level>:<loop>
        steps = conn.execute(
            sa.select(Job.unique_key, Job.due_at).where(
                Job.kind == "escalation.step", Job.unique_key.like("%:1:0")
            )
        ).all()
    assert set(acked_at) == acknowledged
    next_level_due = {int(key.split(":")[1]): due for key, due in steps}
    too_late = [i for i in sorted(acknowledged) if acked_at[i] >= next_level_due[i]]
    if too_late:
        pytest.fail(f"acknowledgements arrived after the next level was due: {too_late[:10]}")


def _quiet(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        steps = conn.execute(
            sa.text(
                "SELECT count(*) FROM jobs "
                "WHERE kind = 'escalation.step' AND state IN ('pending', 'running')"
            )
        ).scalar_one()
        outbox = conn.execute(
            sa.text("SELECT count(*) FROM notifications WHERE state IN ('pending', 'sending')")
        ).scalar_one()
    return steps == 0 and outbox == 0
