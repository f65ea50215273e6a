"""The parsing and mapping rules on their own: bounded reads, timestamps, and that any JSON
whatsoever ends in an event or a 4xx refusal, never an unexpected exception."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from tocsin.ingest import alertmanager, pagerduty, webhook
from tocsin.ingest.body import parse_json, read_body
from tocsin.ingest.integrations import IntegrationInfo
from tocsin.ingest.rejection import MAX_BODY_BYTES, Rejected
from tocsin.ingest.timestamps import normalise_timestamp

INTEGRATION = IntegrationInfo(1, 1, "pagerduty", {})


def _request(chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    pending = list(chunks)

    async def receive() -> dict[str, Any]:
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers or []}
    request = Request(scope, receive)
    request.pending = pending  # type: ignore[attr-defined]
    return request


def test_reading_stops_once_the_body_passes_the_limit() -> None:
    chunks = [b"x" * 65536 for _ in range(100)]  # 6.4 MB offered
    request = _request(chunks)
    with pytest.raises(Rejected) as refused:
        asyncio.run(read_body(request))
    assert refused.value.status == 413
    consumed = 100 - len(request.pending)  # type: ignore[attr-defined]
    assert consumed == MAX_BODY_BYTES // 65536 + 1


def test_a_declared_oversized_body_is_refused_before_reading() -> None:
    request = _request([b"{}"], headers=[(b"content-length", str(MAX_BODY_BYTES + 1).encode())])
    with pytest.raises(Rejected) as refused:
        asyncio.run(read_body(request))
    assert refused.value.status == 413
    assert len(request.pending) == 1  # type: ignore[attr-defined]


def test_a_body_of_exactly_the_limit_is_read() -> None:
    assert len(asyncio.run(read_body(_request([b"x" * MAX_BODY_BYTES])))) == MAX_BODY_BYTES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2015-07-17T08:42:58.315+0000", "2015-07-17T08:42:58.315000+00:00"),
        ("2015-07-17T08:42:58Z", "2015-07-17T08:42:58+00:00"),
        ("2015-07-17T10:42:58+02:00", "2015-07-17T10:42:58+02:00"),
        ("2015-07-17T08:42:58", "2015-07-17T08:42:58+00:00"),
        ("2015-07-17T08:42:58.123456789Z", "2015-07-17T08:42:58.123456+00:00"),
        ("2015-07-17T08:42:58.315+00:00Z", "2015-07-17T08:42:58.315000+00:00"),
    ],
)
def test_timestamps_are_normalised_with_an_offset(raw: str, expected: str) -> None:
    assert normalise_timestamp(raw, "t") == expected


@pytest.mark.parametrize("raw", ["", "soon", "2015-13-45T00:00:00Z", "2015-07-17", 1437122578])
def test_bad_timestamps_are_refused(raw: Any) -> None:
    with pytest.raises(Rejected) as refused:
        normalise_timestamp(raw, "payload.timestamp")
    assert refused.value.status == 400
    assert "payload.timestamp" in refused.value.errors[0]


def test_depth_is_counted_from_the_root() -> None:
    def nested(levels: int) -> bytes:
        return b"[" * levels + b"]" * levels

    parse_json(nested(32))
    with pytest.raises(Rejected) as refused:
        parse_json(nested(33))
    assert refused.value.reason == "too_deep"


def test_escaped_backslash_before_u0000_text_is_not_a_nul() -> None:
    assert parse_json(rb'{"a": "\\u0000"}') == {"a": "\\u0000"}
    with pytest.raises(Rejected):
        parse_json(rb'{"a\u0000": 1}')


# --- any JSON: an event or a refusal --------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
pd_like = st.fixed_dictionaries(
    {},
    optional={
        "routing_key": st.text(max_size=4),
        "event_action": st.sampled_from(["trigger", "acknowledge", "resolve", "x"]) | json_values,
        "dedup_key": st.text(max_size=4) | json_values,
        "payload": st.fixed_dictionaries(
            {},
            optional={
                "summary": st.text(max_size=8) | json_values,
                "source": st.text(max_size=8) | json_values,
                "severity": st.sampled_from(["critical", "info", "bad"]) | json_values,
                "timestamp": st.sampled_from(["2015-07-17T08:42:58Z", "x"]) | json_values,
                "custom_details": json_values,
                "component": json_values,
            },
        )
        | json_values,
        "links": st.lists(st.dictionaries(st.sampled_from(["href", "text"]), json_values))
        | json_values,
        "images": st.lists(st.dictionaries(st.sampled_from(["src", "alt"]), json_values))
        | json_values,
        "client": json_values,
    },
)


def _event_or_refusal(build: Any, doc: Any, info: IntegrationInfo) -> None:
    try:
        result = build(doc, info)
    except Rejected as refused:
        assert 400 <= refused.status < 500 and refused.errors
        return
    events = result if isinstance(result, list) else [result]
    for event in events:
        orjson.dumps(event.payload)  # storable
        assert event.action in ("trigger", "acknowledge", "resolve", "change")
        assert event.dedup_key is None or len(event.dedup_key) <= 255


@settings(max_examples=300, deadline=None)
@given(pd_like | json_values)
def test_any_pagerduty_body_is_an_event_or_a_refusal(doc: Any) -> None:
    for build in (pagerduty.alert_event, pagerduty.change_event):
        if isinstance(doc, dict):
            _event_or_refusal(build, doc, INTEGRATION)
    with contextlib.suppress(Rejected):
        pagerduty.routing_key_of(doc)


am_like = st.fixed_dictionaries(
    {
        "alerts": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "status": st.sampled_from(["firing", "resolved"]) | json_values,
                    "labels": st.dictionaries(st.text(max_size=6), st.text(max_size=6))
                    | json_values,
                    "annotations": st.dictionaries(st.sampled_from(["summary", "x"]), json_values),
                    "startsAt": st.sampled_from(["2024-01-01T00:00:00Z", "0001-01-01T00:00:00Z"])
                    | json_values,
                    "fingerprint": st.text(max_size=6) | json_values,
                },
            )
            | json_values,
            max_size=3,
        )
    },
    optional={"version": st.sampled_from(["4", "3"]) | json_values, "status": json_values},
)


@settings(max_examples=300, deadline=None)
@given(am_like | json_values)
def test_any_alertmanager_body_is_events_or_a_refusal(doc: Any) -> None:
    _event_or_refusal(alertmanager.alertmanager_events, doc, INTEGRATION)


@settings(max_examples=300, deadline=None)
@given(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "summary": st.sampled_from(["a", "a.0", "x.y"]) | json_values,
            "action": st.sampled_from(["state", "0"]) | json_values,
            "severity_map": json_values,
            "action_map": json_values,
            "default_severity": json_values,
            "default_action": json_values,
        },
    )
    | json_values,
)
def test_any_webhook_body_and_mapping_is_an_event_or_a_refusal(doc: Any, mapping: Any) -> None:
    info = IntegrationInfo(1, 1, "webhook", {"mapping": mapping})
    _event_or_refusal(webhook.webhook_event, doc, info)
