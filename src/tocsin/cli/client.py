"""A small HTTP client for the commands that talk to a running server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import typer

from tocsin.cli.common import CliError

DEFAULT_URL = "http://127.0.0.1:8080"

UrlOption = Annotated[
    str, typer.Option("--url", envvar="TOCSIN_URL", help="Base URL of the Tocsin server.")
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="TOCSIN_TOKEN",
        help="API token (prefer TOCSIN_TOKEN).",
        show_default=False,
    ),
]


def _error_message(response: httpx.Response) -> str:
    """Our API's {"error": {...}} shape, the Events API's {"message", "errors"}, or text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if body.get("message"):
            details = body.get("errors")
            extra = (
                f": {'; '.join(map(str, details))}" if isinstance(details, list) and details else ""
            )
            return f"{body['message']}{extra}"
    return response.reason_phrase


class ApiClient:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 15.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise CliError(f"--url must start with http:// or https:// (got {url!r})", 2)
        headers = {"User-Agent": "tocsin-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self._has_token = bool(token)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def require_token(self) -> None:
        if not self._has_token:
            raise CliError("no API token: pass --token or set TOCSIN_TOKEN", 2)

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        response = self._client.request(method, path, json=json, params=params)
        if response.status_code >= 400:
            raise CliError(f"{response.status_code}: {_error_message(response)}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise CliError(f"the server answered {path} with something that is not JSON") from exc

    def pages(
        self, path: str, params: dict[str, Any] | None = None, *, limit: int
    ) -> Iterator[dict[str, Any]]:
        """Items of a paginated list ({"items", "next_cursor"}), at most ``limit`` of them."""
        query = dict(params or {})
        seen = 0
        while seen < limit:
            query["limit"] = min(500, limit - seen)
            page = self.call("GET", path, params=query)
            for item in page.get("items", []):
                yield item
                seen += 1
            cursor = page.get("next_cursor")
            if not cursor:
                return
            query["cursor"] = cursor
