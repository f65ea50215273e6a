"""Email through an SMTP relay (aiosmtplib): multipart text + HTML, one recipient per attempt.

Classification:
- cannot connect, TLS or greeting fails, timeout before DATA, 4xx reply, a server that does not
  offer STARTTLS or AUTH although configured to use them (perhaps stripped in transit; nothing
  is sent in clear text) -> temporary_failure
- 5xx reply (recipient or sender refused, authentication failed, message rejected)
  -> permanent_failure
- timeout or dropped connection during DATA -> unknown (the server may have queued the message;
  the Message-ID is derived from the idempotency key, so a resent copy threads with the first)
"""

from __future__ import annotations

import email.policy
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import ClassVar, Literal

import aiosmtplib

from tocsin.clock import Clock, SystemClock
from tocsin.notify.channels.base import (
    Channel,
    DeliveryResult,
    Message,
    Target,
    register,
    require_options,
)
from tocsin.notify.channels.render import html_body, key_digest, one_line, plain_text

SmtpSecurity = Literal["starttls", "tls", "none"]

_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def normalize_email_address(address: str) -> str:
    """The address with an ASCII (IDNA) domain, or ValueError saying what is wrong with it."""
    if not address or len(address) > 254:
        raise ValueError("email address must be 1 to 254 characters")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{address!r} is not an email address (expected name@example.com)")
    if (
        not _LOCAL_PART.match(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        raise ValueError(
            f"{address!r} has characters in its local part that cannot be sent to "
            "(letters, digits and !#$%&'*+/=?^_`{|}~.- only)"
        )
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{address!r} has an invalid domain") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{address!r} has an invalid domain (expected name@example.com)")
    return f"{local}@{ascii_domain.lower()}"


@dataclass(frozen=True)
class EmailConfig:
    """SMTP relay settings. Credentials need STARTTLS or TLS unless explicitly allowed."""

    host: str = "localhost"
    port: int = 587
    security: SmtpSecurity = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    from_address: str = "tocsin@localhost.localdomain"
    from_name: str = "Tocsin"
    timeout: float = 30.0
    # CA bundle for a relay with a private CA; certificates are always verified unless disabled.
    ca_file: str | None = None
    validate_certs: bool = True
    # Name sent in EHLO and used in Message-IDs; the From domain when not set.
    helo_hostname: str | None = None
    allow_plaintext_auth: bool = False

    def __post_init__(self) -> None:
        if self.security not in ("starttls", "tls", "none"):
            raise ValueError("SMTP security must be starttls, tls or none")
        if not 0 < self.port < 65536:
            raise ValueError("SMTP port must be between 1 and 65535")
        if (self.username is None) != (self.password is None):
            raise ValueError("SMTP username and password go together")
        if self.username and self.security == "none" and not self.allow_plaintext_auth:
            raise ValueError(
                "SMTP credentials would cross the network in clear text: "
                "use security starttls or tls (or set allow_plaintext_auth)"
            )
        normalize_email_address(self.from_address)

    @property
    def domain(self) -> str:
        return self.helo_hostname or self.from_address.rpartition("@")[2]


def _by_code(code: int, what: str, text: str) -> DeliveryResult:
    detail = f"{what}: {code} {one_line(text, 200)}"
    if 400 <= code < 500:
        return DeliveryResult.temporary(detail)
    if 500 <= code < 600:
        return DeliveryResult.permanent(detail)
    return DeliveryResult.temporary(detail)


@register
class EmailChannel(Channel):
    kind: ClassVar[str] = "email"

    def __init__(self, config: EmailConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()

    def validate_target(self, target: Target) -> None:
        require_options(target, ())
        normalize_email_address(target.address)

    def secrets(self, target: Target) -> Iterable[str]:
        return [self.config.password] if self.config.password else []

    def message_id(self, message: Message) -> str:
        return f"<tocsin.{key_digest(message.idempotency_key)}@{self.config.domain}>"

    def build(self, message: Message, recipient: str) -> EmailMessage:
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["Subject"] = one_line(message.subject, 200)
        msg["From"] = formataddr((self.config.from_name, self.config.from_address))
        msg["To"] = recipient
        msg["Date"] = format_datetime(self.clock.now())
        msg["Message-ID"] = self.message_id(message)
        # RFC 3834: an automatic message; vacation responders must not answer it.
        msg["Auto-Submitted"] = "auto-generated"
        if message.incident_id:
            msg["X-Tocsin-Incident"] = one_line(message.incident_id, 100)
        if message.urgency == "high":
            msg["Importance"] = "high"
            msg["X-Priority"] = "1"
        msg.set_content(plain_text(message))
        document = f"<!DOCTYPE html>\n<html><body>\n{html_body(message)}\n</body></html>\n"
        msg.add_alternative(document, subtype="html")
        return msg

    def _client(self) -> aiosmtplib.SMTP:
        cfg = self.config
        return aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            username=cfg.username,
            password=cfg.password,
            use_tls=cfg.security == "tls",
            start_tls=cfg.security == "starttls",
            validate_certs=cfg.validate_certs,
            cert_bundle=cfg.ca_file,
            timeout=cfg.timeout,
            local_hostname=cfg.domain,
        )

    async def deliver(self, message: Message, target: Target) -> DeliveryResult:
        recipient = normalize_email_address(target.address)
        payload = self.build(message, recipient).as_bytes()
        server = f"smtp server {self.config.host}:{self.config.port}"
        smtp = self._client()
        try:
            failure = await self._connect(smtp, server)
            if failure is not None:
                return failure
            try:
                await smtp.mail(self.config.from_address)
                await smtp.rcpt(recipient)
            except aiosmtplib.SMTPResponseException as exc:
                return _by_code(exc.code, f"{server} refused the envelope", exc.message)
            except (aiosmtplib.SMTPException, OSError) as exc:
                return DeliveryResult.temporary(f"{server} failed before DATA: {exc}")
            try:
                reply = await smtp.data(payload)
            except aiosmtplib.SMTPResponseException as exc:
                return _by_code(exc.code, f"{server} rejected the message", exc.message)
            except (aiosmtplib.SMTPException, OSError) as exc:
                return DeliveryResult.unknown(
                    f"{server}: no answer after the message was sent ({type(exc).__name__})"
                )
            return DeliveryResult.sent(
                f"accepted by {server}: {reply.code} {one_line(reply.message, 200)}",
                provider_message_id=self.message_id(message),
            )
        finally:
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError):
                    smtp.close()

    async def _connect(self, smtp: aiosmtplib.SMTP, server: str) -> DeliveryResult | None:
        """Connect, greet, upgrade to TLS and log in; a result only when that fails."""
        try:
            await smtp.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            return _by_code(exc.code, f"{server} refused the credentials", exc.message)
        except aiosmtplib.SMTPResponseException as exc:
            return _by_code(exc.code, f"{server} refused the session", exc.message)
        except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
            return DeliveryResult.temporary(f"cannot reach {server}: {exc}")
        return None
