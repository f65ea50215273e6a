"""Keyset pagination behind an opaque cursor.

A page is ordered by a few columns ending in the primary key, so the order is total; the cursor
holds the last row's values of those columns. Rows inserted while a client walks the pages never
shift what it sees (no OFFSET), and no row appears on two pages.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson
import sqlalchemy as sa
from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import InstrumentedAttribute, Session

from tocsin.db.base import UTCDateTime
from tocsin.errors import ApiError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Largest BIGINT: bigger numbers would overflow the databases' integer types.
MAX_ID = 2**63 - 1
_CURSOR_VERSION = 1

M = TypeVar("M")
Item = TypeVar("Item", bound=BaseModel)


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= to fetch the next page; null on the last page."
    )


@dataclass(frozen=True)
class PageParams:
    limit: int
    cursor: str | None


def page_params(
    limit: int = Query(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Items per page (max {MAX_LIMIT})."
    ),
    cursor: str | None = Query(
        None, max_length=1024, description="The next_cursor of the previous page."
    ),
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


def _kind(column: InstrumentedAttribute[Any]) -> type:
    if isinstance(column.type, UTCDateTime):
        return datetime
    kind: type = column.type.python_type
    if kind not in (int, str):
        raise TypeError(f"cannot paginate on {column.key} of type {kind.__name__}")
    return kind


def encode_cursor(values: Sequence[Any]) -> str:
    encoded = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = orjson.dumps({"v": _CURSOR_VERSION, "k": encoded})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: Sequence[type]) -> list[Any]:
    """The key values in a cursor, checked against the kinds the query expects."""
    invalid = ApiError(400, "invalid cursor: pass back the next_cursor of a previous page as is")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = orjson.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise invalid from exc
    if not isinstance(body, dict) or body.get("v") != _CURSOR_VERSION:
        raise invalid
    encoded = body.get("k")
    if not isinstance(encoded, list) or len(encoded) != len(kinds):
        raise invalid
    values: list[Any] = []
    for value, kind in zip(encoded, kinds, strict=True):
        if kind is datetime and isinstance(value, str):
            try:
                instant = datetime.fromisoformat(value)
            except ValueError as exc:
                raise invalid from exc
            values.append(instant if instant.tzinfo else instant.replace(tzinfo=UTC))
        elif (kind is int and type(value) is int and -MAX_ID <= value <= MAX_ID) or (
            kind is str and isinstance(value, str) and "\x00" not in value
        ):
            values.append(value)
        else:
            raise invalid
    return values


def _after(
    keys: Sequence[InstrumentedAttribute[Any]], values: Sequence[Any], descending: bool
) -> sa.ColumnElement[bool]:
    """Rows strictly past ``values`` in the (k1, k2, ...) order, spelled without row values."""
    clauses: list[sa.ColumnElement[bool]] = []
    for i, key in enumerate(keys):
        equal_before = [keys[j] == values[j] for j in range(i)]
        beyond = key < values[i] if descending else key > values[i]
        clauses.append(sa.and_(*equal_before, beyond))
    return sa.or_(*clauses)


def fetch_page(
    session: Session,
    stmt: sa.Select[M],
    keys: Sequence[InstrumentedAttribute[Any]],
    params: PageParams,
    *,
    descending: bool,
) -> tuple[list[M], str | None]:
    """One page of ``stmt`` ordered by ``keys`` (the last one unique), and the next cursor."""
    if params.cursor:
        values = decode_cursor(params.cursor, [_kind(k) for k in keys])
        stmt = stmt.where(_after(keys, values, descending))
    order = [k.desc() if descending else k.asc() for k in keys]
    rows = list(session.scalars(stmt.order_by(*order).limit(params.limit + 1)).all())
    if len(rows) <= params.limit:
        return rows, None
    rows = rows[: params.limit]
    last = rows[-1]
    return rows, encode_cursor([getattr(last, k.key) for k in keys])
