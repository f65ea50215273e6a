"""Message text and HTML from Jinja2 templates (notify/templates/).

Incident titles, service names and the rest come from alerts and users, so they are untrusted:
HTML templates autoescape everything, and links are only rendered when they are plain http(s)
URLs. Plain-text templates are not escaped (there is no markup); each channel escapes text for
its own markup when it sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from tocsin.incidents.models import Incident
from tocsin.notify.channels.render import is_safe_link, one_line

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=jinja2.select_autoescape(
        enabled_extensions=("html",), disabled_extensions=("txt",), default=True
    ),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _render(name: str, **context: Any) -> str:
    return _ENV.get_template(name).render(**context).strip()


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _when(instant: datetime) -> str:
    return f"{instant:%Y-%m-%d %H:%M} UTC"


def page(incident: Incident, *, service_name: str, reason: str) -> Rendered:
    context = {
        "incident": incident,
        "service_name": service_name,
        "reason": reason,
        "opened": _when(incident.created_at),
    }
    subject = one_line(f"Incident #{incident.id} ({service_name}): {incident.title}", 200)
    if incident.urgency == "low":
        subject = one_line(f"[low] {subject}", 200)
    return Rendered(subject, _render("page.txt", **context), _render("page.html", **context))


@dataclass(frozen=True)
class DigestEntry:
    id: int
    title: str
    status: str
    urgency: str
    ack_url: str | None
    resolve_url: str | None


def digest(entries: list[DigestEntry], *, window_minutes: int) -> Rendered:
    safe = [
        DigestEntry(
            e.id,
            one_line(e.title, 300),
            e.status,
            e.urgency,
            e.ack_url if is_safe_link(e.ack_url) else None,
            e.resolve_url if is_safe_link(e.resolve_url) else None,
        )
        for e in entries
    ]
    context = {"entries": safe, "window_minutes": window_minutes}
    count = len(safe)
    subject = f"{count} more incident{'s' if count != 1 else ''} for you (digest)"
    return Rendered(subject, _render("digest.txt", **context), _render("digest.html", **context))


def note(subject: str, text: str) -> Rendered:
    """A message that is not about an incident (hand-off notices, test notifications)."""
    return Rendered(one_line(subject, 200), text, _render("note.html", lines=text.splitlines()))


def action_page(
    *,
    heading: str,
    explanation: str,
    tone: str,
    incident: dict[str, Any] | None = None,
    button: str | None = None,
    action: str | None = None,
) -> str:
    return _ENV.get_template("action.html").render(
        heading=heading,
        explanation=explanation,
        tone=tone,
        incident=incident,
        button=button,
        action=action,
    )
