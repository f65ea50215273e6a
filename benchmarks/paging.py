"""Tocsin's paging benchmark: how soon a page reaches the mail server under load, how punctual
escalation timers are with 100,000 pending, and how long "who is on call" takes for 1,000
schedules.

`make bench-paging` (or `.venv/bin/python benchmarks/paging.py --help`). Everything runs on
loopback against SQLite and PostgreSQL: real server processes, a real SMTP server (aiosmtpd)
in this process, and wrk for the background load. Prints a table with median and p99 and writes
the figures as JSON to benchmarks/results/. What each figure means: docs/benchmarks.md, "Paging".
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: make the repo's tests/ importable
    sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from tests.procs import (  # noqa: E402
    DB_KINDS,
    SeededDatabase,
    ServerPool,
    ServerProcess,
    free_port,
    pending_events,
    postgres_available,
)

from benchmarks import loadgen  # noqa: E402
from benchmarks.run import machine  # noqa: E402
from tocsin.engine.models import Job  # noqa: E402
from tocsin.engine.worker import JobContext, handler  # noqa: E402
from tocsin.oncall.models import Schedule, ScheduleLayer, ScheduleOverride  # noqa: E402
from tocsin.oncall.service import schedules_on_call  # noqa: E402
from tocsin.orgs.models import User  # noqa: E402
from tocsin.runtime import Runtime  # noqa: E402
from tocsin.settings import Settings  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
GOAL_SECONDS = 1.0  # p99 goal of the page and timer measurements
SMTP_FROM = "pager@tocsin.example.com"
console = Console(width=None if sys.stdout.isatty() else 160)


# --- figures -------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: a value that was actually measured."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Row:
    scenario: str
    database: str
    samples_ms: list[float] = field(default_factory=list)
    goal_ms: float | None = None
    # Some samples are only lower bounds (timers that had not run when the run ended).
    lower_bound: bool = False
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def pct(self, q: float) -> float | None:
        return round(percentile(self.samples_ms, q), 1) if self.samples_ms else None

    @property
    def met_goal(self) -> bool | None:
        p99 = self.pct(99)
        if self.goal_ms is None or p99 is None:
            return None
        return p99 < self.goal_ms

    def check(self, ok: bool, what: str) -> None:
        (self.checks if ok else self.problems).append(what)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "database": self.database,
            "samples": len(self.samples_ms),
            "ms": {
                "p50": self.pct(50),
                "p90": self.pct(90),
                "p99": self.pct(99),
                "max": self.pct(100),
            },
            "lower_bound": self.lower_bound,
            "goal_p99_ms": self.goal_ms,
            "met_goal": self.met_goal,
            "checks": self.checks,
            "problems": self.problems,
            **self.extra,
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--databases", default=",".join(DB_KINDS), help="comma-separated: sqlite,postgresql"
    )
    p.add_argument(
        "--only", default="pages,timers,oncall", help="comma-separated: pages,timers,oncall"
    )
    g = p.add_argument_group("pages: event accepted -> email at the SMTP server")
    g.add_argument("--background-rate", type=float, default=500, help="background events/s")
    g.add_argument(
        "--backgrounds",
        default="new,dedup",
        help="new: every background event opens an incident that pages nobody; dedup: they "
        "cycle over --dedup-keys alerts",
    )
    g.add_argument("--dedup-keys", type=int, default=100, help="alerts the dedup load cycles over")
    g.add_argument("--probe-rate", type=float, default=10, help="measured events/s")
    g.add_argument("--probe-seconds", type=float, default=20, help="how long probes are sent")
    g.add_argument("--warmup", type=float, default=3, help="background load before the probes")
    g.add_argument(
        "--probe-timeout", type=float, default=30, help="most seconds to wait for the last email"
    )
    g = p.add_argument_group("timers: escalation timer lateness")
    g.add_argument("--timers", type=int, default=100_000, help="pending timers")
    g.add_argument(
        "--timer-spread", type=float, default=30, help="dense: every timer due within this"
    )
    g.add_argument(
        "--timer-grace",
        type=float,
        default=10,
        help="dense: seconds after the last due time before the run is cut off",
    )
    g.add_argument(
        "--sparse-horizon",
        type=float,
        default=1800,
        help="sparse: the timers are due over this many seconds ...",
    )
    g.add_argument(
        "--sparse-observe", type=float, default=10, help="... and the first this many are timed"
    )
    g = p.add_argument_group("oncall: who is on call in every schedule")
    g.add_argument("--schedules", type=int, default=1000)
    g.add_argument("--oncall-users", type=int, default=200, help="users the rotations draw on")
    g.add_argument("--oncall-repeats", type=int, default=30, help="timed calls of each kind")
    p.add_argument("--output", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    args = p.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    args.only = [d.strip() for d in args.only.split(",") if d.strip()]
    args.backgrounds = [d.strip() for d in args.backgrounds.split(",") if d.strip()]
    if set(args.backgrounds) - {"new", "dedup"}:
        p.error(f"unknown background(s): {', '.join(args.backgrounds)}")
    if set(args.databases) - set(DB_KINDS):
        p.error(f"unknown database(s): {', '.join(sorted(set(args.databases) - set(DB_KINDS)))}")
    if set(args.only) - {"pages", "timers", "oncall"}:
        p.error(f"unknown part(s): {', '.join(sorted(set(args.only)))}")
    positive = (
        args.background_rate,
        args.probe_rate,
        args.probe_seconds,
        args.dedup_keys,
        args.timers,
        args.timer_spread,
        args.sparse_horizon,
        args.sparse_observe,
        args.schedules,
        args.oncall_users,
        args.oncall_repeats,
    )
    if min(positive) <= 0 or min(args.warmup, args.timer_grace) < 0:
        p.error("rates, durations and counts must be positive")
    if args.oncall_users < 4:
        p.error("--oncall-users must be at least 4 (a rotation has 4 members)")
    return args


# --- a real SMTP server that notes when each message arrived ---------------------------------


@dataclass(frozen=True)
class Received:
    at: float  # time.time() when the DATA arrived
    subject: str
    rcpt: tuple[str, ...]


class _ArrivalHandler:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._parser = BytesHeaderParser(policy=policy.default)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.time()
        headers = self._parser.parsebytes(envelope.original_content or envelope.content)
        self.received.append(Received(at, str(headers["Subject"]), tuple(envelope.rcpt_tos)))
        return "250 2.0.0 Ok: queued"


@contextmanager
def smtp_sink() -> Iterator[tuple[int, _ArrivalHandler]]:
    handler_ = _ArrivalHandler()
    port = free_port()
    controller = Controller(handler_, hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    try:
        yield port, handler_
    finally:
        controller.stop()


def smtp_env(port: int) -> dict[str, str]:
    return {
        "TOCSIN_SECRET_KEY": Fernet.generate_key().decode(),
        "TOCSIN_SMTP_HOST": "127.0.0.1",
        "TOCSIN_SMTP_PORT": str(port),
        "TOCSIN_SMTP_STARTTLS": "false",
        "TOCSIN_SMTP_FROM": SMTP_FROM,
        # One user is paged ten times a second: every page must be its own email.
        "TOCSIN_DIGEST_MAX_PAGES": "0",
    }


# --- a) event accepted -> first email at the SMTP server -------------------------------------


def api_client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.base_url}/api/v1",
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30.0,
    )


def _call(api: httpx.Client, method: str, path: str, body: dict[str, Any]) -> Any:
    response = api.request(method, path, json=body)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
    return response.json()


def seed_probe_service(api: httpx.Client) -> str:
    """A service whose policy emails one user at once; returns its PagerDuty routing key."""
    _call(api, "POST", "/users", {"username": "oncall", "name": "On Call", "email": "o@corp.test"})
    method = {"name": "work", "kind": "email", "address": "oncall@example.com"}
    _call(api, "POST", "/users/oncall/contact-methods", method)
    rule = {"urgency": "high", "delay_minutes": 0, "contact_method": "work"}
    _call(api, "POST", "/users/oncall/notification-rules", rule)
    level = {"delay_minutes": 30, "targets": [{"type": "user", "username": "oncall"}]}
    _call(
        api, "POST", "/escalation-policies", {"slug": "probe", "name": "Probe", "levels": [level]}
    )
    service = {"slug": "probe", "name": "Probe", "escalation_policy": "probe"}
    _call(api, "POST", "/services", service)
    integration = {"name": "events", "type": "pagerduty"}
    key: str = _call(api, "POST", "/services/probe/integrations", integration)["key"]
    return key


@dataclass
class Probe:
    sent_at: float
    accepted_at: float | None = None
    emailed_at: float | None = None


def send_probes(url: str, key: str, tag: str, *, rate: float, seconds: float) -> list[Probe]:
    """One trigger every 1/rate seconds, on a timetable: a slow answer delays the next probe
    only until it is answered, and the ones after it keep their times."""
    probes: list[Probe] = []
    count = max(1, round(rate * seconds))
    start = time.monotonic()
    with httpx.Client(timeout=30.0) as client:
        for i in range(count):
            pause = start + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            body = {
                "routing_key": key,
                "event_action": "trigger",
                "dedup_key": f"probe-{tag}-{i}",
                "payload": {
                    "summary": f"paging-probe {tag} {i}",
                    "source": "probe",
                    "severity": "critical",
                },
            }
            probe = Probe(time.time())
            try:
                status = client.post(url, json=body).status_code
            except httpx.HTTPError:
                status = 0
            if status == 202:
                probe.accepted_at = time.time()
            probes.append(probe)
    return probes


BACKGROUNDS = {
    "new": "new incidents paging nobody",
    "dedup": "deduplicated alerts",
}


def page_latency(pool: ServerPool, kind: str, args: argparse.Namespace, background: str) -> Row:
    """Probes to a service that emails one user at once, while ``args.background_rate`` events a
    second go to a service without a policy: each opens an incident that pages nobody ("new"),
    or they repeat ``args.dedup_keys`` dedup keys ("dedup")."""
    row = Row(f"page, background {BACKGROUNDS[background]}", kind, goal_ms=GOAL_SECONDS * 1000)
    tag = secrets.token_hex(3)
    pattern = re.compile(rf"paging-probe {tag} (\d+)$")
    keys = 0 if background == "new" else args.dedup_keys
    with smtp_sink() as (port, sink):
        db = pool.database(kind)
        server = pool.start(db, **smtp_env(port))
        engine = db.engine()
        with api_client(server) as api:
            probe_key = seed_probe_service(api)
        load: dict[str, loadgen.WrkResult] = {}
        threads = 2
        per_thread = str(args.background_rate / threads)
        loader = threading.Thread(
            target=lambda: load.update(
                wrk=loadgen.run_for(
                    server.base_url,
                    "paced_trigger",
                    [db.pd_key, f"bg{tag}", per_thread, str(keys)],
                    seconds=args.warmup + args.probe_seconds + 3,
                    connections=16,
                    threads=threads,
                )
            ),
            name="background-load",
        )
        try:
            loader.start()
            time.sleep(args.warmup)
            url = f"{server.base_url}/v2/enqueue"
            probes = send_probes(
                url, probe_key, tag, rate=args.probe_rate, seconds=args.probe_seconds
            )
            backlog = pending_events(engine)
            accepted = [p for p in probes if p.accepted_at is not None]

            def arrived() -> int:
                for mail in list(sink.received):
                    match = pattern.search(mail.subject)
                    if match is not None and probes[int(match.group(1))].emailed_at is None:
                        probes[int(match.group(1))].emailed_at = mail.at
                return sum(p.emailed_at is not None for p in accepted)

            deadline = time.monotonic() + args.probe_timeout
            while arrived() < len(accepted) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            loader.join()
            engine.dispose()
            server.terminate()

    done = [
        (p.sent_at, p.accepted_at, p.emailed_at)
        for p in accepted
        if p.accepted_at is not None and p.emailed_at is not None
    ]
    row.samples_ms = [(emailed - sent) * 1000 for sent, _, emailed in done]
    from_202 = [(emailed - accepted_at) * 1000 for _, accepted_at, emailed in done]
    wrk = load.get("wrk")
    row.extra.update(
        {
            "from_202_ms": {q: round(percentile(from_202, n), 1) for q, n in _PCTS}
            if from_202
            else None,
            "probes_sent": len(probes),
            "probe_rate": args.probe_rate,
            "background": background,
            "background_rate_target": args.background_rate,
            "background_dedup_keys": keys,
            "background_wrk": wrk.as_dict() if wrk else None,
            "inbox_backlog_when_probes_ended": backlog,
        }
    )
    row.check(len(accepted) == len(probes), f"{len(accepted)} of {len(probes)} probes 202")
    row.check(len(done) == len(accepted), f"{len(done)} of {len(accepted)} probe emails arrived")
    if wrk is not None:
        achieved = wrk.ok_per_second
        row.check(
            achieved >= 0.9 * args.background_rate and wrk.failed == 0,
            f"background {achieved:,.0f} events/s accepted ({wrk.failed} errors)",
        )
    return row


_PCTS = (("p50", 50.0), ("p99", 99.0), ("max", 100.0))


# --- b) escalation timer lateness ------------------------------------------------------------

TIMER_JOB = "benchmark.timer"
# job id -> seconds between its due time and its handler running (written by the engine thread)
_lateness: dict[int, float] = {}
_runs = [0]  # handler calls, to check that no timer ran twice


@handler(TIMER_JOB)
def _note_lateness(ctx: JobContext) -> None:
    _lateness[ctx.job.id] = (ctx.clock.now() - ctx.job.due_at).total_seconds()
    _runs[0] += 1


@dataclass(frozen=True)
class TimerPlan:
    name: str
    spread: float  # the timers are due uniformly over this many seconds
    observe: float  # those due within the first this many seconds are timed
    grace: float  # the run is cut off this long after the last timed due time


def timer_lateness(pool: ServerPool, kind: str, args: argparse.Namespace, plan: TimerPlan) -> Row:
    """A node (a Runtime with its background threads, in this process) with ``args.timers``
    pending no-op jobs; each records how late it ran."""
    row = Row(f"timers, {plan.name}", kind, goal_ms=GOAL_SECONDS * 1000)
    db = pool.database(kind)
    data_dir = pool.workdir / f"timers-{kind}-{secrets.token_hex(3)}"
    settings = Settings(
        database_url=db.url, data_dir=data_dir, node_name=f"bench-{kind}", log_level="WARNING"
    )
    _lateness.clear()
    _runs[0] = 0
    runtime = Runtime(settings)
    try:
        runtime.start()
        lead = 3.0
        now = datetime.now(UTC)
        base = now + timedelta(seconds=lead)
        rng = random.Random(7)
        dues = [base + timedelta(seconds=rng.uniform(0, plan.spread)) for _ in range(args.timers)]
        started = time.monotonic()
        _insert_timers(runtime.engine, dues, now)
        inserted_in = time.monotonic() - started
        row.extra["insert_seconds"] = round(inserted_in, 2)
        row.check(inserted_in < lead, f"{args.timers:,} timers inserted in {inserted_in:.1f}s")
        cutoff = base + timedelta(seconds=plan.observe)
        with runtime.engine.connect() as conn:
            timed = dict(
                conn.execute(
                    sa.select(Job.id, Job.due_at).where(Job.kind == TIMER_JOB, Job.due_at <= cutoff)
                ).all()
            )
        give_up = cutoff + timedelta(seconds=plan.grace)
        while datetime.now(UTC) < give_up:
            if datetime.now(UTC) > cutoff and all(i in _lateness for i in timed):
                break
            time.sleep(0.2)
        ended = datetime.now(UTC)
    finally:
        runtime.close()
        db.drop()

    ran = {i: _lateness[i] for i in timed if i in _lateness}
    missing = [i for i in timed if i not in ran]
    row.samples_ms = [s * 1000 for s in ran.values()]
    # Not run by the end: late by at least the time since it was due.
    row.samples_ms += [(ended - timed[i]).total_seconds() * 1000 for i in missing]
    row.lower_bound = bool(missing)
    busy = max((ended - base).total_seconds(), 1e-9)
    row.extra.update(
        {
            "pending_timers": args.timers,
            "due_within_seconds": plan.spread,
            "timed": len(timed),
            "ran": len(ran),
            "not_run_when_cut_off": len(missing),
            "due_per_second": round(args.timers / plan.spread, 1),
            "ran_per_second": round(len(_lateness) / busy, 1),
        }
    )
    row.check(_runs[0] == len(_lateness), f"{_runs[0]:,} runs of {len(_lateness):,} timers")
    return row


def _insert_timers(engine: sa.Engine, dues: list[datetime], now: datetime) -> None:
    """The rows engine.queue.enqueue writes, in bulk."""
    rows = [
        {
            "kind": TIMER_JOB,
            "payload": {},
            "due_at": due,
            "state": "pending",
            "attempts": 0,
            "max_attempts": 10,
            "created_at": now,
        }
        for due in dues
    ]
    with engine.begin() as conn:
        for i in range(0, len(rows), 10_000):
            conn.execute(sa.insert(Job), rows[i : i + 10_000])


# --- c) who is on call in every schedule -----------------------------------------------------

ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC")


def seed_schedules(engine: sa.Engine, *, schedules: int, users: int, now: datetime) -> None:
    """Schedules of three layers: weekly turns around the clock, daily turns in office hours,
    twelve-hour turns over the weekend; every fourth schedule has overrides around now."""
    rng = random.Random(11)
    with Session(engine) as s, s.begin():
        people = [
            User(
                username=f"user{i}",
                name=f"User {i}",
                email=f"user{i}@corp.test",
                handoff_notice_minutes=None,
                created_at=now,
            )
            for i in range(users)
        ]
        s.add_all(people)
        s.flush()
        ids = [u.id for u in people]
        for n in range(schedules):
            start = (now - timedelta(days=rng.randint(30, 400))).strftime("%Y-%m-%dT09:00")
            schedule = Schedule(
                slug=f"schedule-{n}", name=f"Schedule {n}", time_zone=ZONES[n % 4], created_at=now
            )
            schedule.layers = [
                ScheduleLayer(
                    position=0,
                    name="around the clock",
                    start_local=start,
                    rotation_length=1,
                    rotation_unit="weeks",
                    members=rng.sample(ids, 4),
                    restrictions=[],
                ),
                ScheduleLayer(
                    position=1,
                    name="office hours",
                    start_local=start,
                    rotation_length=1,
                    rotation_unit="days",
                    members=rng.sample(ids, 3),
                    restrictions=[{"kind": "daily", "start": "09:00", "end": "17:00"}],
                ),
                ScheduleLayer(
                    position=2,
                    name="weekend",
                    start_local=start,
                    rotation_length=12,
                    rotation_unit="hours",
                    members=rng.sample(ids, 2),
                    restrictions=[
                        {
                            "kind": "weekly",
                            "start_weekday": 4,
                            "start": "17:00",
                            "end_weekday": 0,
                            "end": "09:00",
                        }
                    ],
                ),
            ]
            if n % 4 == 0:
                schedule.overrides = [
                    ScheduleOverride(
                        user_id=rng.choice(ids),
                        start_at=now + timedelta(hours=h),
                        end_at=now + timedelta(hours=h + length),
                        created_at=now,
                    )
                    for h, length in ((-2, 4), (30, 8), (-72, 12))
                ]
            s.add(schedule)


def _time(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def oncall_listing(pool: ServerPool, kind: str, args: argparse.Namespace) -> list[Row]:
    bulk = Row(f"on call: schedules_on_call, {args.schedules:,} schedules", kind)
    rest = Row(f"on call: GET /api/v1/oncall, {args.schedules:,} schedules", kind)
    db: SeededDatabase = pool.database(kind)
    engine = db.engine()
    now = datetime.now(UTC)
    try:
        seed_schedules(engine, schedules=args.schedules, users=args.oncall_users, now=now)
        rng = random.Random(3)
        nobody = 0
        for i in range(args.oncall_repeats + 1):
            # Instants over the next two weeks: office hours, nights, weekends, overrides.
            at = now + timedelta(seconds=0 if i == 0 else rng.uniform(0, 14 * 86400))
            with Session(engine) as s:
                rows = list(s.scalars(sa.select(Schedule)))
                took, answers = _time(lambda s=s, rows=rows, at=at: schedules_on_call(s, rows, at))
            if i == 0:
                bulk.check(len(answers) == args.schedules, f"{len(answers):,} schedules answered")
                continue  # the first call warms caches (zone data, compiled statements)
            bulk.samples_ms.append(took)
            nobody += sum(u is None for u in answers.values())
        bulk.check(nobody == 0, f"{nobody} answers without anyone on call")
    finally:
        engine.dispose()

    server = pool.start(db)
    with api_client(server) as api:
        for i in range(args.oncall_repeats + 1):
            took, items = _time(lambda: _list_oncall(api))
            if i == 0:
                rest.check(len(items) == args.schedules, f"{len(items):,} schedules listed")
                rest.check(all(it["user"] for it in items), "someone on call in each")
                continue
            rest.samples_ms.append(took)
    server.terminate()
    rest.extra["requests_per_listing"] = math.ceil(args.schedules / 500)
    return [bulk, rest]


def _list_oncall(api: httpx.Client) -> list[dict[str, Any]]:
    """Every page of GET /api/v1/oncall (500 a page, the most the API gives)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        response = api.get("/oncall", params=params)
        response.raise_for_status()
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


# --- report ----------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    table = Table(title="Tocsin paging benchmark (loopback)")
    for name, justify in [
        ("measurement", "left"),
        ("database", "left"),
        ("samples", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("max ms", "right"),
        ("goal", "left"),
        ("checks", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        bound = ">=" if r.lower_bound else ""
        goal = (
            "-"
            if r.met_goal is None
            else f"p99 < {r.goal_ms:.0f} ms: "
            + ("[green]met[/]" if r.met_goal else "[red]missed[/]")
        )
        p50, p99, top = r.pct(50), r.pct(99), r.pct(100)
        table.add_row(
            r.scenario,
            r.database,
            f"{len(r.samples_ms):,}",
            f"{bound}{p50:,.1f}" if p50 is not None else "-",
            f"{bound}{p99:,.1f}" if p99 is not None else "-",
            f"{bound}{top:,.1f}" if top is not None else "-",
            goal,
            "[red]FAILED[/]" if r.problems else "ok",
        )
    console.print(table)
    console.print(
        ">= : some timers had not run when the run was cut off; their lateness counts as the "
        "time they had waited, so the figure is a lower bound."
    )
    for r in rows:
        x = r.extra
        if x.get("from_202_ms"):
            wrk = x["background_wrk"] or {}
            console.print(
                f"{r.scenario} / {r.database}: from the 202 p50 {x['from_202_ms']['p50']:,.1f} "
                f"p99 {x['from_202_ms']['p99']:,.1f} ms; background "
                f"{wrk.get('requests_per_second', 0):,.0f} events/s; "
                f"{x['inbox_backlog_when_probes_ended']:,} events waiting when the probes ended"
            )
        if "timed" in x:
            console.print(
                f"{r.scenario} / {r.database}: {x['timed']:,} timed, {x['ran']:,} ran; "
                f"due {x['due_per_second']:,.0f}/s, ran {x['ran_per_second']:,.0f}/s"
            )
        for problem in r.problems:
            console.print(f"[red]FAILED[/] {r.scenario} / {r.database}: {problem}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "pages" in args.only:
        loadgen.wrk_binary()
    if "postgresql" in args.databases and not postgres_available():
        raise SystemExit(
            "PostgreSQL is not reachable on 127.0.0.1:5432 (or pass --databases sqlite)"
        )
    started = time.monotonic()
    rows: list[Row] = []
    plans = [
        TimerPlan(
            f"{args.timers:,} pending, due over {args.sparse_horizon / 60:.0f} min",
            args.sparse_horizon,
            args.sparse_observe,
            2.0,
        ),
        TimerPlan(
            f"{args.timers:,} due within {args.timer_spread:.0f} s",
            args.timer_spread,
            args.timer_spread,
            args.timer_grace,
        ),
    ]
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-paging-") as tmp:
        pool = ServerPool(Path(tmp))
        try:
            for kind in args.databases:
                for background in args.backgrounds if "pages" in args.only else []:
                    console.print(f"[bold]{kind}[/]: pages, background {background} ...")
                    rows.append(page_latency(pool, kind, args, background))
                if "timers" in args.only:
                    for plan in plans:
                        console.print(f"[bold]{kind}[/]: timers, {plan.name} ...")
                        rows.append(timer_lateness(pool, kind, args, plan))
                if "oncall" in args.only:
                    console.print(f"[bold]{kind}[/]: who is on call ...")
                    rows += oncall_listing(pool, kind, args)
        finally:
            pool.close()
    print_table(rows)
    report = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": machine(),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": [r.as_dict() for r in rows],
    }
    args.output.mkdir(parents=True, exist_ok=True)
    out = args.output / f"paging-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(
        f"wrote {out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out}"
        f" in {report['wall_seconds']}s"
    )
    return 1 if any(r.problems for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
