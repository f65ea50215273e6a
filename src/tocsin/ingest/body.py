"""Reading a JSON request body safely: bounded size, strict UTF-8, bounded nesting, and only
content both databases can store."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from tocsin.ingest.rejection import MAX_BODY_BYTES, MAX_DEPTH, Rejected, invalid

_JSON_TYPES = ("application/json", "text/json")


def check_content_type(request: Request) -> None:
    """A missing content type is tolerated (some senders omit it); a non-JSON one is not."""
    raw = request.headers.get("content-type")
    if raw is None:
        return
    media = raw.split(";", 1)[0].strip().lower()
    if media in _JSON_TYPES or media.endswith("+json"):
        return
    raise Rejected(
        415, "unsupported_media_type", [f"content type must be application/json, not {media!r}"]
    )


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refusing (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> Rejected:
    return Rejected(413, "too_large", [f"request body is larger than {limit} bytes"])


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise Rejected(400, "malformed_json", ["request body is empty; send a JSON object"])
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as utf:
            raise Rejected(
                400, "invalid_utf8", [f"request body is not valid UTF-8 (byte {utf.start})"]
            ) from None
        raise Rejected(400, "malformed_json", [f"JSON parse error: {exc}"]) from None
    # Cheap pre-checks on the raw bytes keep the full walks off the common path.
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH:
        check_depth(doc)
    if b"\\u0000" in body:
        check_no_nul(doc)
    return doc


def check_depth(doc: Any, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON whose containers nest deeper than ``limit`` (the root is level 1)."""
    if type(doc) in (dict, list) and _deeper_than(doc, limit):
        raise Rejected(400, "too_deep", [f"JSON is nested deeper than {limit} levels"])


def _deeper_than(node: dict[str, Any] | list[Any], levels_left: int) -> bool:
    # Recursion is bounded by the limit; exact type checks keep the walk cheap.
    if levels_left == 0:
        return True
    children = node.values() if isinstance(node, dict) else node
    for child in children:
        kind = type(child)
        if (kind is dict or kind is list) and _deeper_than(child, levels_left - 1):
            return True
    return False


def check_no_nul(doc: Any) -> None:
    """PostgreSQL cannot store U+0000 in JSON text; refuse it rather than fail the commit."""
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise invalid("strings must not contain the NUL character (\\u0000)")
        elif isinstance(node, dict):
            for key, value in node.items():
                if "\x00" in key:
                    raise invalid("object keys must not contain the NUL character (\\u0000)")
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


async def read_json(request: Request) -> Any:
    check_content_type(request)
    return parse_json(await read_body(request))
