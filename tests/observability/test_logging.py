"""Secrets never reach a log line, including those that travel in URLs."""

from __future__ import annotations

import logging

import orjson
import pytest

from tocsin.observability.logging import JsonFormatter, redact


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (
            '127.0.0.1:5 - "POST /integrations/alertmanager/0123abcd0123abcd HTTP/1.1" 200',
            "0123abcd0123abcd",
        ),
        ('"POST /integrations/webhook/feedfacefeedface?x=1 HTTP/1.1"', "feedfacefeedface"),
        ('"GET /calendar/users/s3cr3t-feed-token.ics HTTP/1.1"', "s3cr3t-feed-token"),
        ('"GET /calendar/schedules/primary.ics?token=s3cr3t HTTP/1.1"', "s3cr3t"),
        ('"POST /actions/eyJpbmNpZGVudCI6NH0.sig HTTP/1.1"', "eyJpbmNpZGVudCI6NH0"),
        ("Authorization: Bearer tcs_abcdefghijklmnop", "tcs_abcdefghijklmnop"),
        ('{"routing_key": "a1b2c3d4e5"}', "a1b2c3d4e5"),
        ("password=hunter2 retry", "hunter2"),
    ],
)
def test_redact_removes_the_secret(line: str, secret: str) -> None:
    cleaned = redact(line)
    assert secret not in cleaned
    assert "[redacted]" in cleaned


def test_access_log_records_are_redacted_as_json() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "POST", "/integrations/alertmanager/0123abcd0123abcd", "1.1", 200),
        None,
    )
    entry = orjson.loads(JsonFormatter().format(record))
    assert "0123abcd0123abcd" not in entry["message"]
    assert entry["logger"] == "uvicorn.access"
