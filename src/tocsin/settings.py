"""Runtime settings, read from TOCSIN_* environment variables with command-line overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./tocsin-data")
    database_url: str = ""
    bootstrap_token: str | None = None
    # Encrypts stored contact-method secrets and signs action links; every node of a
    # cluster needs the same one. Without it a key file is kept in the data directory.
    secret_key: str | None = None
    config_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = ""
    # Per routing key token bucket: sustained events a second and burst size; 0 disables it.
    ingest_rate_per_second: float = 200.0
    ingest_burst: int = 5000
    # Group commit: how many accepted events one transaction may carry.
    ingest_batch_max: int = 512
    engine_poll_seconds: float = 1.0
    engine_lease_seconds: float = 30.0
    engine_batch: int = 32
    auditor_interval_seconds: int = 60
    auditor_overdue_seconds: int = 120
    change_event_retention_days: int = 90
    node_name: str = field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}")
    log_level: str = "INFO"
    log_json: bool = True
    run_engine: bool = True
    # Email contact methods go through this SMTP relay; without a host email is not delivered.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = True
    smtp_tls: bool = False
    smtp_from: str = "tocsin@localhost.localdomain"
    # Let webhook, Slack, Matrix and Apprise targets reach loopback and private addresses.
    allow_private_urls: bool = False
    # The notification outbox: polling, batch, attempts and backoff of temporary failures, and
    # how long a send may take before its outcome counts as unknown.
    notify_poll_seconds: float = 1.0
    notify_batch: int = 32
    notify_max_attempts: int = 5
    notify_send_timeout_seconds: float = 120.0
    notify_retry_base_seconds: float = 30.0
    notify_retry_max_seconds: float = 600.0
    # Alert fatigue: at most this many incidents page one user per window; later ones go into a
    # digest sent at the end of the window. 0 turns throttling off.
    digest_max_pages: int = 5
    digest_window_minutes: int = 10
    # One-click acknowledge/resolve links in pages stay valid this long.
    action_link_ttl_minutes: int = 1440

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'tocsin.db').resolve()}"

    @property
    def resolved_base_url(self) -> str:
        return self.base_url or f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        settings = cls(
            data_dir=Path(env.get("TOCSIN_DATA_DIR", "./tocsin-data")),
            database_url=env.get("TOCSIN_DATABASE_URL", ""),
            bootstrap_token=env.get("TOCSIN_BOOTSTRAP_TOKEN") or None,
            secret_key=env.get("TOCSIN_SECRET_KEY") or None,
            config_dir=Path(env["TOCSIN_CONFIG_DIR"]) if env.get("TOCSIN_CONFIG_DIR") else None,
            host=env.get("TOCSIN_HOST", "127.0.0.1"),
            port=_env_int("TOCSIN_PORT", 8080),
            base_url=env.get("TOCSIN_BASE_URL", ""),
            ingest_rate_per_second=_env_float("TOCSIN_INGEST_RATE_PER_SECOND", 200.0),
            ingest_burst=_env_int("TOCSIN_INGEST_BURST", 5000),
            engine_poll_seconds=_env_float("TOCSIN_ENGINE_POLL_SECONDS", 1.0),
            engine_lease_seconds=_env_float("TOCSIN_ENGINE_LEASE_SECONDS", 30.0),
            auditor_interval_seconds=_env_int("TOCSIN_AUDITOR_INTERVAL_SECONDS", 60),
            auditor_overdue_seconds=_env_int("TOCSIN_AUDITOR_OVERDUE_SECONDS", 120),
            log_level=env.get("TOCSIN_LOG_LEVEL", "INFO"),
            log_json=env.get("TOCSIN_LOG_FORMAT", "json") == "json",
            smtp_host=env.get("TOCSIN_SMTP_HOST", ""),
            smtp_port=_env_int("TOCSIN_SMTP_PORT", 587),
            smtp_username=env.get("TOCSIN_SMTP_USERNAME") or None,
            smtp_password=env.get("TOCSIN_SMTP_PASSWORD") or None,
            smtp_starttls=_env_bool("TOCSIN_SMTP_STARTTLS", True),
            smtp_tls=_env_bool("TOCSIN_SMTP_TLS", False),
            smtp_from=env.get("TOCSIN_SMTP_FROM", "tocsin@localhost.localdomain"),
            allow_private_urls=_env_bool("TOCSIN_ALLOW_PRIVATE_URLS", False),
            notify_max_attempts=_env_int("TOCSIN_NOTIFY_MAX_ATTEMPTS", 5),
            notify_send_timeout_seconds=_env_float("TOCSIN_NOTIFY_SEND_TIMEOUT_SECONDS", 120.0),
            digest_max_pages=_env_int("TOCSIN_DIGEST_MAX_PAGES", 5),
            digest_window_minutes=_env_int("TOCSIN_DIGEST_WINDOW_MINUTES", 10),
            action_link_ttl_minutes=_env_int("TOCSIN_ACTION_LINK_TTL_MINUTES", 1440),
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **clean)  # type: ignore[arg-type]
