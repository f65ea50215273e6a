"""Structured logs: one JSON object a line, with secrets kept out."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime

import orjson

# Bearer tokens, our own API tokens and password-like key=value pairs never reach a log line.
_SECRET_PATTERNS = [
    # Credentials that travel in URLs: integration keys, calendar feed tokens, action links.
    re.compile(r"(/integrations/(?:alertmanager|webhook)/)[^/\s?\"']+"),
    re.compile(r"(/calendar/users/)[^/\s?\"']+"),
    re.compile(r"(/actions/)[^/\s?\"']+"),
    re.compile(r"([?&](?:token|key)=)[^&\s\"']+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"tcs_[A-Za-z0-9_-]{8,}"),
    re.compile(
        r"(?i)((?:password|secret|token|api_key|routing_key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
    ),
]


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json
        else RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Readiness checks consult Alembic on every call; its per-call INFO lines are noise.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
