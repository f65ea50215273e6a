"""The text rules every part of the API applies alike: how slugs and usernames look, and no NUL
characters. A leaf module, so request bodies, path parameters and the on-call definitions can
all use it without importing one another."""

from __future__ import annotations

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


def no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it up front rather than fail in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value
