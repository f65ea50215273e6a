"""Prometheus metrics. Counters live in one registry; job gauges are read from the database at
scrape time, so every node reports the cluster's queue as it is."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from tocsin.alerts.models import InboundEvent
from tocsin.clock import Clock
from tocsin.engine.models import Job

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_ACCEPTED = Counter(
    "tocsin_events_accepted_total",
    "Events accepted and stored, by endpoint",
    ["endpoint"],
    registry=REGISTRY,
)
EVENTS_REJECTED = Counter(
    "tocsin_events_rejected_total",
    "Events refused, by endpoint and reason",
    ["endpoint", "reason"],
    registry=REGISTRY,
)
INGEST_LATENCY = Histogram(
    "tocsin_ingest_latency_seconds",
    "Time from request received to durable commit, by endpoint",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
JOBS_RUN = Counter(
    "tocsin_jobs_run_total", "Job runs by kind and outcome", ["kind", "outcome"], registry=REGISTRY
)
NOTIFICATIONS = Counter(
    "tocsin_notifications_total",
    "Notification outcomes by channel kind: sent, temporary_failure, permanent_failure, "
    "unknown, bundled, fenced",
    ["channel", "outcome"],
    registry=REGISTRY,
)


class JobQueueCollector(Collector):
    def __init__(self, factory: sessionmaker[Session], clock: Clock) -> None:
        self._factory = factory
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self._clock.now()
        due = GaugeMetricFamily("tocsin_jobs_due", "Pending jobs whose due time has passed")
        lag = GaugeMetricFamily("tocsin_job_lag_seconds", "How late the oldest due pending job is")
        failed = GaugeMetricFamily("tocsin_jobs_failed", "Jobs that exhausted their attempts")
        pending = GaugeMetricFamily("tocsin_jobs_pending", "Jobs waiting, due or not")
        with self._factory() as session:
            due_count, oldest = session.execute(
                sa.select(sa.func.count(), sa.func.min(Job.due_at)).where(
                    Job.state == "pending", Job.due_at <= now
                )
            ).one()
            pending_count = session.scalar(sa.select(sa.func.count()).where(Job.state == "pending"))
            failed_count = session.scalar(sa.select(sa.func.count()).where(Job.state == "failed"))
        due.add_metric([], float(due_count or 0))
        lag.add_metric([], _age(now, oldest))
        failed.add_metric([], float(failed_count or 0))
        pending.add_metric([], float(pending_count or 0))
        yield from (due, lag, failed, pending)
        yield from self._inbox(now)

    def _inbox(self, now: datetime) -> Iterator[GaugeMetricFamily]:
        """The accepted events not yet turned into alerts: the backlog a burst leaves."""
        backlog = GaugeMetricFamily(
            "tocsin_inbox_pending", "Accepted events waiting to be processed"
        )
        age = GaugeMetricFamily(
            "tocsin_inbox_oldest_pending_seconds", "How long the oldest waiting event has waited"
        )
        with self._factory() as session:
            count, oldest = session.execute(
                sa.select(sa.func.count(), sa.func.min(InboundEvent.received_at)).where(
                    InboundEvent.status == "pending"
                )
            ).one()
        backlog.add_metric([], float(count or 0))
        age.add_metric([], _age(now, oldest))
        yield from (backlog, age)


def _age(now: datetime, oldest: datetime | str | None) -> float:
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):  # aggregate results skip the column type on SQLite
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=UTC)
    return max(0.0, (now - oldest).total_seconds())
