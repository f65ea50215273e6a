"""Malformed requests get a clear 4xx in the error shape, never a 5xx, and write nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import Tokens, assert_error, trigger
from tests.api.test_authorization import snapshot
from tests.conftest import Org
from tocsin.runtime import Runtime


def test_bodies_of_the_wrong_shape(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    incident = trigger(runtime, org, "db-1")
    h = tokens.admin
    before = snapshot(runtime)
    bodies = [
        ("POST", "/api/v1/teams", [1, 2]),
        ("POST", "/api/v1/teams", "team"),
        ("POST", "/api/v1/teams", None),
        ("POST", "/api/v1/teams", {"slug": ["a"], "name": "A"}),
        ("POST", "/api/v1/teams", {"slug": "a", "name": "A", "description": "d" * 10_001}),
        ("POST", "/api/v1/users", {"username": "u", "name": "U", "email": "u@x.io", "role": 1}),
        ("PATCH", "/api/v1/teams/payments", {"name": "x" * 201}),
        ("PATCH", "/api/v1/services/checkout", {"auto_resolve_seconds": 10**30}),
        ("PATCH", "/api/v1/services/checkout", {"ack_timeout_seconds": 1.5}),
        ("POST", f"/api/v1/incidents/{incident.id}/reassign", {"user": None}),
        ("POST", f"/api/v1/incidents/{incident.id}/reassign", {"user": "x\x00"}),
        ("POST", f"/api/v1/incidents/{incident.id}/resolve", {"reason": 7}),
        ("POST", f"/api/v1/incidents/{incident.id}/resolve", ["fixed"]),
    ]
    for method, url, body in bodies:
        r = client.request(method, url, headers=h, json=body)
        error = assert_error(r, 422)
        assert error["details"], (url, body)
        assert all({"field", "message"} <= set(d) for d in error["details"])
    assert snapshot(runtime) == before


def test_integration_options_the_databases_cannot_store(
    client: TestClient, org: Org, tokens: Tokens, runtime: Runtime
) -> None:
    url = "/api/v1/services/checkout/integrations"
    before = snapshot(runtime)
    deep: dict[str, object] = {}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    for options, fragment in [
        ({"mapping": {"summary": "a\x00b"}}, "NUL"),
        ({"a\x00": 1}, "NUL"),
        ({"big": 2**70}, "64 bits"),
        (deep, "nested"),
        ([1], "options"),
        ("text", "options"),
    ]:
        r = client.post(
            url, headers=tokens.admin, json={"name": "w", "type": "webhook", "options": options}
        )
        assert_error(r, 422, fragment)
    non_finite = b'{"name": "w", "type": "webhook", "options": {"x": NaN}}'
    json_headers = {**tokens.admin, "content-type": "application/json"}
    assert_error(client.post(url, headers=json_headers, content=non_finite), 422, "NaN")
    assert snapshot(runtime) == before


def test_not_json_and_unknown_routes(client: TestClient, org: Org, tokens: Tokens) -> None:
    h = tokens.admin
    r = client.post(
        "/api/v1/teams", headers={**h, "content-type": "application/json"}, content=b"{"
    )
    assert_error(r, 422)
    r = client.post("/api/v1/teams", headers={**h, "content-type": "text/plain"}, content=b"team")
    assert r.status_code < 500 and "error" in r.json()
    assert_error(client.get("/api/v1/nothing-here", headers=h), 404)
    assert_error(client.put("/api/v1/teams/payments", headers=h, json={}), 405)


def test_ids_out_of_range_and_bad_path_values(client: TestClient, org: Org, tokens: Tokens) -> None:
    h = tokens.admin
    for url in [
        f"/api/v1/incidents/{2**64}",
        "/api/v1/incidents/-1",
        "/api/v1/incidents/one",
        f"/api/v1/incidents/{2**63}/acknowledge",
        f"/api/v1/integrations/{2**64}",
        "/api/v1/teams/NOT_A_SLUG",
        "/api/v1/users/Not%20A%20User",
        "/api/v1/services/a%00b",
    ]:
        method = (
            "POST"
            if url.endswith("acknowledge")
            else ("DELETE" if "integrations" in url else "GET")
        )
        assert_error(client.request(method, url, headers=h), 422)
    assert_error(client.get(f"/api/v1/incidents/{2**63 - 1}", headers=h), 404)
    for params in [{"service": "a\x00"}, {"assignee": "Bad Name"}, {"cursor": "x" * 2000}]:
        assert_error(client.get("/api/v1/incidents", headers=h, params=params), 422)
