"""ISO 8601 timestamps from senders, normalised to one form: ISO text with a UTC offset."""

from __future__ import annotations

from datetime import UTC, datetime

from tocsin.ingest.rejection import invalid


def parse_timestamp(value: object, field: str) -> datetime:
    """A timezone-aware instant; a timestamp without an offset is taken as UTC."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{field} must be an ISO 8601 timestamp string")
    text = value.strip()
    # Tolerate "...+00:00Z" (an offset and a Z), which some clients produce.
    if text.endswith(("Z", "z")) and len(text) > 6 and text[-7] in "+-" and text[-4] == ":":
        text = text[:-1]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(
            f"{field} is not a valid ISO 8601 timestamp: {value[:64]!r}"
            " (example: 2015-07-17T08:42:58.315+0000)"
        ) from None
    if len(text) <= 10:  # a bare date: PagerDuty wants the moment the event happened
        raise invalid(f"{field} must include a time of day, not only a date: {value[:64]!r}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def normalise_timestamp(value: object, field: str) -> str:
    """The sender's instant as ISO text with its offset, e.g. 2015-07-17T08:42:58.315000+00:00."""
    return parse_timestamp(value, field).isoformat()
