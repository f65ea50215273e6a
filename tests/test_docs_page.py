"""The interactive API docs load nothing from outside the server."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_page_uses_only_local_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls, "the page should reference its script, stylesheet and the OpenAPI document"
    assert all(u.startswith("/") for u in urls), urls
    for url in urls:
        assert client.get(url).status_code == 200, url
