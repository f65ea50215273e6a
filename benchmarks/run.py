"""Tocsin's ingestion benchmark, with Prometheus Alertmanager's in-memory intake as yardstick.

`make bench` (or `.venv/bin/python benchmarks/run.py --help`). Starts a real Tocsin server on
SQLite and on PostgreSQL and a real Alertmanager, drives all of them with the same wrk load
generator over loopback, checks that what was acknowledged was stored and processed, prints a
table and writes the figures as JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: make the repo's tests/ importable
    sys.path.insert(0, str(REPO_ROOT))

import sqlalchemy as sa  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from tests.procs import (  # noqa: E402
    DB_KINDS,
    SeededDatabase,
    ServerPool,
    ServerProcess,
    free_port,
    pending_events,
    postgres_available,
    scalar,
    wait_until,
)
from tests.services import PG_URL  # noqa: E402

from benchmarks import alertmanager, loadgen  # noqa: E402
from tocsin.db.engine import normalise_url  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROCESSING_SAMPLE_SECONDS = 3.0
PROCESSING_SAMPLE_BACKLOG = 2000  # enough that the sample cannot empty the inbox
console = Console(width=None if sys.stdout.isatty() else 160)


@dataclass
class Row:
    scenario: str
    system: str
    database: str
    wrk: loadgen.WrkResult | None = None
    events_per_request: int = 1
    ratio: float | None = None
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.wrk.ok_per_second * self.events_per_request if self.wrk else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "system": self.system,
            "database": self.database,
            "events_per_request": self.events_per_request,
            "events_per_second": round(self.events_per_second, 1),
            "ratio_to_alertmanager": None if self.ratio is None else round(self.ratio, 3),
            "wrk": self.wrk.as_dict() if self.wrk else None,
            "checks": self.checks,
            "problems": self.problems,
            **self.extra,
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=10, help="seconds per timed scenario")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--batch-size", type=int, default=256, help="alerts per Alertmanager batch")
    p.add_argument("--batches", type=int, default=100, help="Alertmanager batches to send")
    p.add_argument("--batch-connections", type=int, default=4, help="concurrent batch senders")
    p.add_argument("--storm", type=int, default=10_000, help="triggers on one dedup key")
    p.add_argument(
        "--databases",
        default=",".join(DB_KINDS),
        help="comma-separated: sqlite,postgresql (default both)",
    )
    p.add_argument("--no-alertmanager", action="store_true", help="skip the Alertmanager run")
    p.add_argument(
        "--catch-up-timeout",
        type=float,
        default=90,
        help="most seconds to wait for processing to catch up after a scenario",
    )
    p.add_argument("--output", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    args = p.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(args.databases) - set(DB_KINDS)
    if unknown:
        p.error(f"unknown database(s): {', '.join(sorted(unknown))}")
    sizes = (args.duration, args.connections, args.threads, args.batch_connections, args.batches)
    if min(*sizes, args.storm, args.batch_size) <= 0:
        p.error("durations, counts, connections and threads must be positive")
    return args


# --- Alertmanager --------------------------------------------------------------------------


def measure_alertmanager(args: argparse.Namespace) -> Row:
    row = Row("single alert / request", "alertmanager", "memory")
    with alertmanager.running_alertmanager(free_port()) as url:
        row.wrk = loadgen.run_for(
            url,
            "am_api_alert",
            [f"am{secrets.token_hex(2)}"],
            seconds=args.duration,
            connections=args.connections,
            threads=args.threads,
        )
        received = alertmanager.alerts_received(url)
    row.extra["alerts_received"] = received
    _check(row, received >= row.wrk.ok, f"{received} alerts held for {row.wrk.ok} 200s")
    return row


# --- Tocsin --------------------------------------------------------------------------------


def measure_tocsin(pool: ServerPool, kind: str, args: argparse.Namespace) -> list[Row]:
    """Each scenario on a fresh database and server, so no backlog leaks into the next one."""
    rows = []
    for scenario in (single_events, alertmanager_batches, storm):
        db = pool.database(kind)
        server = pool.start(db)
        engine = db.engine()
        try:
            rows.append(scenario(server, db, engine, args))
        finally:
            engine.dispose()
            server.terminate()
    return rows


def single_events(
    server: ServerProcess, db: SeededDatabase, engine: sa.Engine, args: argparse.Namespace
) -> Row:
    row = Row("single event / request", "tocsin", db.kind)
    before = _stored(engine)
    row.wrk = loadgen.run_for(
        server.base_url,
        "pd_trigger",
        [db.pd_key, f"pd{secrets.token_hex(3)}"],
        seconds=args.duration,
        connections=args.connections,
        threads=args.threads,
    )
    _stored_check(row, engine, before, row.wrk.ok)
    return row


def alertmanager_batches(
    server: ServerProcess, db: SeededDatabase, engine: sa.Engine, args: argparse.Namespace
) -> Row:
    row = Row(f"Alertmanager batch of {args.batch_size}", "tocsin", db.kind)
    row.events_per_request = args.batch_size
    before = _stored(engine)
    row.wrk = loadgen.run_count(
        server.base_url,
        "am_webhook_batch",
        [db.am_key, secrets.token_hex(3), str(args.batch_size)],
        total=args.batches,
        connections=args.batch_connections,
        threads=min(args.threads, args.batch_connections),
        timeout=max(60.0, args.batches),
    )
    _check(row, row.wrk.ok == args.batches, f"{row.wrk.ok} of {args.batches} batches answered 2xx")
    _stored_check(row, engine, before, row.wrk.ok * args.batch_size)
    return row


def storm(
    server: ServerProcess, db: SeededDatabase, engine: sa.Engine, args: argparse.Namespace
) -> Row:
    row = Row(f"storm: {args.storm:,} triggers, one key", "tocsin", db.kind)
    dedup_key = f"storm-{secrets.token_hex(4)}"
    before = _stored(engine)
    row.wrk = loadgen.run_count(
        server.base_url,
        "storm",
        [db.pd_key, dedup_key],
        total=args.storm,
        connections=args.connections,
        threads=args.threads,
        timeout=max(60.0, args.storm / 100),
    )
    _check(row, row.wrk.ok == args.storm, f"{row.wrk.ok} of {args.storm} triggers accepted")
    _stored_check(row, engine, before, row.wrk.ok)
    if not _caught_up(row, engine, args):
        return row
    with engine.connect() as conn:
        alerts = conn.execute(
            sa.text("SELECT status, event_count FROM alerts WHERE dedup_key = :k"),
            {"k": dedup_key},
        ).all()
    row.extra["storm_alerts"] = [list(a) for a in alerts]
    _check(
        row,
        len(alerts) == 1 and alerts[0].event_count == row.wrk.ok,
        f"one alert, event_count {alerts[0].event_count if alerts else 0:,}",
    )
    return row


def _stored(engine: sa.Engine) -> int:
    return int(scalar(engine, "SELECT count(*) FROM inbound_events"))


def _processed(engine: sa.Engine) -> int:
    return int(scalar(engine, "SELECT count(*) FROM inbound_events WHERE status != 'pending'"))


def _stored_check(row: Row, engine: sa.Engine, before: int, acknowledged: int) -> None:
    """Every acknowledged event is in the inbox; and how far processing kept up meanwhile."""
    assert row.wrk is not None
    stored = _stored(engine) - before
    pending = pending_events(engine)
    row.extra["stored_events"] = stored
    row.extra["pending_at_end"] = pending
    row.extra["processed_per_second"] = round((stored - pending) / row.wrk.seconds, 1)
    _check(row, stored >= acknowledged, f"{stored:,} stored for {acknowledged:,} acknowledged")
    if pending >= PROCESSING_SAMPLE_BACKLOG:  # the processor's own pace, once the load stopped
        first = _processed(engine)
        time.sleep(PROCESSING_SAMPLE_SECONDS)
        done = _processed(engine) - first
        row.extra["processed_per_second_after_load"] = round(done / PROCESSING_SAMPLE_SECONDS, 1)


def _caught_up(row: Row, engine: sa.Engine, args: argparse.Namespace) -> bool:
    """How long after the load processing needs to empty the inbox."""
    try:
        took = wait_until(
            lambda: pending_events(engine) == 0,
            timeout=args.catch_up_timeout,
            what="processing to catch up",
            interval=0.05,
        )
    except TimeoutError:
        row.problems.append(
            f"{pending_events(engine):,} events still pending after {args.catch_up_timeout:.0f}s"
        )
        return False
    row.extra["catch_up_seconds"] = round(took, 2)
    failed = int(scalar(engine, "SELECT count(*) FROM inbound_events WHERE status = 'failed'"))
    _check(row, failed == 0, f"{failed} events failed processing")
    return True


def _check(row: Row, ok: bool, what: str) -> None:
    (row.checks if ok else row.problems).append(what)


# --- report --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        # Other work on the machine skews the figures; the load average says how much there was.
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.read_text().splitlines()
            if ln.startswith("model name")
        ]
        info["cpu"] = models[0] if models else "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split()[1])
        info["memory_gib"] = round(total_kb / 2**20, 1)
    wrk = subprocess.run([loadgen.wrk_binary(), "-v"], capture_output=True, text=True, check=False)
    info["wrk"] = (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "?"
    if postgres_available():
        eng = sa.create_engine(normalise_url(PG_URL))
        with eng.connect() as conn:
            info["postgresql"] = conn.execute(sa.text("SHOW server_version")).scalar()
        eng.dispose()
    am = alertmanager.binary()
    info["alertmanager"] = alertmanager.version(am) if am else None
    return info


def print_table(rows: list[Row]) -> None:
    table = Table(title="Tocsin ingestion benchmark (wrk over loopback)")
    columns = [
        ("scenario", "left"),
        ("system", "left"),
        ("database", "left"),
        ("requests/s", "right"),
        ("events/s", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("errors", "right"),
        ("vs Alertmanager", "right"),
        ("processed/s", "right"),
        ("caught up", "right"),
        ("checks", "left"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        w = r.wrk
        processed = r.extra.get("processed_per_second")
        catch = r.extra.get("catch_up_seconds")
        table.add_row(
            r.scenario,
            r.system,
            r.database,
            f"{w.requests_per_second:,.0f}" if w else "-",
            f"{r.events_per_second:,.0f}" if w else "-",
            f"{w.p50_ms:.1f}" if w else "-",
            f"{w.p99_ms:.1f}" if w else "-",
            f"{w.failed:,}" if w else "-",
            f"{r.ratio:.2f}x" if r.ratio is not None else "-",
            f"{processed:,.0f}" if processed is not None else "-",
            f"{catch:.1f}s" if catch is not None else "-",
            "[red]FAILED[/]" if r.problems else "ok",
        )
    console.print(table)
    console.print(
        "events/s: acknowledged (2xx) events a second; processed/s: turned into alerts while "
        "the load ran; caught up: seconds after the load until the inbox was empty."
    )
    for r in rows:
        for problem in r.problems:
            console.print(f"[red]FAILED[/] {r.scenario} / {r.database}: {problem}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    loadgen.wrk_binary()
    if not args.no_alertmanager and alertmanager.binary() is None:
        raise SystemExit(
            "Alertmanager is not installed: apt-get install prometheus-alertmanager "
            "(or pass --no-alertmanager)"
        )
    if "postgresql" in args.databases and not postgres_available():
        raise SystemExit(
            "PostgreSQL is not reachable on 127.0.0.1:5432 (or pass --databases sqlite)"
        )
    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    rows: list[Row] = []
    reference: Row | None = None
    if not args.no_alertmanager:
        console.print("[bold]Alertmanager[/]: one alert per request ...")
        reference = measure_alertmanager(args)
        rows.append(reference)
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp:
        pool = ServerPool(Path(tmp))
        try:
            for kind in args.databases:
                console.print(f"[bold]Tocsin on {kind}[/] ...")
                rows.extend(measure_tocsin(pool, kind, args))
        finally:
            pool.close()
    if reference is not None and reference.events_per_second:
        for r in rows:
            if r.system == "tocsin":
                r.ratio = r.events_per_second / reference.events_per_second
    print_table(rows)
    report = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": {**machine(), "load_average_at_start": load_at_start},
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": [r.as_dict() for r in rows],
    }
    args.output.mkdir(parents=True, exist_ok=True)
    out = args.output / f"bench-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(
        f"wrote {out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out}"
        f" in {report['wall_seconds']}s"
    )
    return 1 if any(r.problems for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
