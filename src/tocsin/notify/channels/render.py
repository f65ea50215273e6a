"""Rendering a message for a channel's markup. Alert text is untrusted and is always escaped.

Links are only rendered when they are plain http(s) URLs, so a hostile `javascript:` or
`data:` link in a message cannot become a clickable button.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from urllib.parse import urlsplit

from tocsin.notify.channels.base import Message


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    role: str  # "ack", "resolve" or "incident": a stable name for buttons and tests


def is_safe_link(url: str | None) -> bool:
    if not url or len(url) > 2000 or any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def action_links(message: Message) -> list[Link]:
    candidates = [
        Link("Acknowledge", message.ack_url or "", "ack"),
        Link("Resolve", message.resolve_url or "", "resolve"),
        Link("Open incident", message.incident_url or "", "incident"),
    ]
    return [link for link in candidates if is_safe_link(link.url)]


def one_line(text: str, limit: int = 250) -> str:
    """Collapse whitespace (CR/LF included) so the text is safe as a header or a title."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def plain_text(message: Message) -> str:
    lines = [message.text.rstrip()]
    links = action_links(message)
    if links:
        lines.append("")
        lines.extend(f"{link.label}: {link.url}" for link in links)
    return "\n".join(lines) + "\n"


def html_body(message: Message) -> str:
    """A small, self-contained HTML rendering with every piece of alert text escaped."""
    if message.html is not None:
        content = message.html
    else:
        content = html.escape(message.text.rstrip()).replace("\n", "<br>\n")
    links = " &middot; ".join(
        f'<a href="{html.escape(link.url, quote=True)}">{html.escape(link.label)}</a>'
        for link in action_links(message)
    )
    parts = [
        f"<p><strong>{html.escape(one_line(message.subject))}</strong></p>",
        f"<div>{content}</div>",
    ]
    if links:
        parts.append(f"<p>{links}</p>")
    return "\n".join(parts)


def key_digest(idempotency_key: str, length: int = 32) -> str:
    """A stable, opaque token derived from the idempotency key (safe in ids and headers)."""
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:length]
