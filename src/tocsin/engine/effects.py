"""Effect keys: how a handler that may run more than once acts once.

A handler's database writes commit together with its job's completion, so they happen exactly
once. Anything outside the database (a message sent, a webhook called) cannot join that
transaction; the handler claims a unique key for it first and acts only when the claim is new.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tocsin.engine.models import Effect


def claim_effect(
    session: Session,
    key: str,
    *,
    now: datetime,
    job_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """Record ``key`` in the current transaction. False when it was already recorded.

    Claimed inside the job's transaction, the key commits only if the job completes: a retry
    after a crash acts again (at least once; pass the key on as an idempotency key where the
    other side takes one). Claimed and committed in a transaction of its own before acting, a
    crash loses the effect instead (at most once). Choose per effect.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(Effect)
        .values(key=key, job_id=job_id, created_at=now, data=data or {})
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(Effect.key)
    )
    return session.execute(stmt).first() is not None
