"""Why an ingestion request was refused, independent of the protocol that renders the answer.

Validators raise ``Rejected``; each endpoint renders it in its own shape (PagerDuty's error
object on /v2/*, the API's error shape elsewhere). ``reason`` is the metric label.
"""

from __future__ import annotations

# Limits shared by every ingestion endpoint (PagerDuty's published limits where it has one).
MAX_BODY_BYTES = 512 * 1024
MAX_DEPTH = 32
MAX_SUMMARY_CHARS = 1024
MAX_DEDUP_KEY_CHARS = 255


class Rejected(Exception):
    def __init__(
        self,
        status: int,
        reason: str,
        errors: list[str],
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__("; ".join(errors))
        self.status = status
        self.reason = reason
        self.errors = errors
        self.headers = headers


def invalid(*errors: str) -> Rejected:
    """The request was understood but its content breaks a rule: 400."""
    return Rejected(400, "invalid_event", list(errors))
