"""One-click acknowledge and resolve links carried by every page.

A link is ``<base>/actions/<token>`` where the token is ``base64url(payload) "." signature``.
The payload names the incident, the action (``ack`` or ``resolve``), the user it was sent to and
an expiry; the signature is an HMAC over the encoded payload with the node's signing key
(crypto.sign), so a link cannot be altered, cannot be turned into another action, and stops
working when it expires. Whoever holds the link acts as that user, so links only go into pages
sent to that user.
"""

from __future__ import annotations

import base64
import binascii
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import orjson

from tocsin import crypto

Action = Literal["ack", "resolve"]
ACTIONS: tuple[Action, ...] = ("ack", "resolve")
ACTION_VERBS: dict[str, str] = {"ack": "acknowledge", "resolve": "resolve"}
ACTIONS_PATH = "/actions/"
# Keeps the signature of a link apart from anything else signed with the same key.
_DOMAIN = b"tocsin.action-link.v1:"
MAX_TOKEN_CHARS = 512


class LinkError(ValueError):
    """A link that cannot be used; ``status`` is the HTTP status that explains it best."""

    status = 400
    title = "This link cannot be used"


class MalformedLink(LinkError):
    title = "This link is incomplete or damaged"


class TamperedLink(LinkError):
    status = 403
    title = "This link is not valid"


class ExpiredLink(LinkError):
    status = 410
    title = "This link has expired"


class WrongPurpose(LinkError):
    title = "This link is for another action"


@dataclass(frozen=True)
class LinkClaim:
    incident_id: int
    action: Action
    user_id: int
    expires_at: datetime


@dataclass(frozen=True)
class LinkSettings:
    base_url: str = "http://127.0.0.1:8080"
    ttl: timedelta = timedelta(hours=24)


_lock = threading.Lock()
_settings = LinkSettings()


def configure(base_url: str, ttl: timedelta) -> None:
    """Install the public base URL and link lifetime (process-wide, like the signing key)."""
    global _settings
    if ttl <= timedelta(0):
        raise ValueError("action link lifetime must be positive")
    with _lock:
        _settings = LinkSettings(base_url.rstrip("/"), ttl)


def settings() -> LinkSettings:
    with _lock:
        return _settings


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_link(*, incident_id: int, action: Action, user_id: int, expires_at: datetime) -> str:
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    payload = {
        "v": 1,
        "i": incident_id,
        "a": action,
        "u": user_id,
        "e": int(expires_at.timestamp()),
    }
    encoded = _b64encode(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))
    return f"{encoded}.{crypto.sign(_DOMAIN + encoded.encode('ascii'))}"


def read_link(token: str, *, now: datetime, action: str | None = None) -> LinkClaim:
    """The verified claim of a token, or a LinkError saying what is wrong with it.

    ``action``: the action the caller wants to take; a link made for another one is refused.
    """
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii() or token.count(".") != 1:
        raise MalformedLink("the link is incomplete; copy the whole address from the message")
    encoded, signature = token.split(".")
    # Only signed bytes are ever parsed.
    if not crypto.verify(_DOMAIN + encoded.encode("ascii"), signature):
        raise TamperedLink(
            "the link was altered, or it was issued by a server with a different secret key"
        )
    try:
        payload = orjson.loads(_b64decode(encoded))
        claim = LinkClaim(
            incident_id=int(payload["i"]),
            action=payload["a"],
            user_id=int(payload["u"]),
            expires_at=datetime.fromtimestamp(int(payload["e"]), UTC),
        )
    except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise MalformedLink("the link's content cannot be read") from exc
    if claim.action not in ACTIONS:
        raise MalformedLink("the link names an unknown action")
    if now >= claim.expires_at:
        raise ExpiredLink(
            f"the link expired at {claim.expires_at:%Y-%m-%d %H:%M} UTC; "
            "use a newer message or the Tocsin API"
        )
    if action is not None and action != claim.action:
        raise WrongPurpose(
            f"this link can only {ACTION_VERBS[claim.action]} the incident, "
            f"not {ACTION_VERBS.get(action, action)} it"
        )
    return claim


def action_url(*, incident_id: int, action: Action, user_id: int, now: datetime) -> str:
    current = settings()
    token = sign_link(
        incident_id=incident_id, action=action, user_id=user_id, expires_at=now + current.ttl
    )
    return f"{current.base_url}{ACTIONS_PATH}{token}"


def incident_url(incident_id: int) -> str:
    return f"{settings().base_url}/api/v1/incidents/{incident_id}"
