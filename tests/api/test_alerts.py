"""Alerts over the API: read-only listing with filters, and one alert by id."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import Tokens, assert_error, trigger, walk
from tests.conftest import Org
from tocsin.clock import FakeClock
from tocsin.runtime import Runtime

URL = "/api/v1/alerts"


def test_list_filters_and_get(
    client: TestClient, runtime: Runtime, org: Org, tokens: Tokens, clock: FakeClock
) -> None:
    first = trigger(runtime, org, "db-1", summary="DB down", source="db-host")
    clock.advance(10)
    second = trigger(runtime, org, "web-1", custom_details={"region": "eu"})
    client.post(f"/api/v1/incidents/{first.id}/resolve", headers=tokens.responder)

    everything = walk(client, URL, tokens.observer, limit=1)
    assert [a["dedup_key"] for a in everything] == ["web-1", "db-1"]
    db = everything[1]
    assert (db["service"], db["summary"], db["source"]) == ("checkout", "DB down", "db-host")
    assert (db["status"], db["incident_id"]) == ("resolved", first.id)

    def keys(**params: object) -> list[str]:
        r = client.get(URL, headers=tokens.observer, params=params)
        assert r.status_code == 200, r.text
        return [a["dedup_key"] for a in r.json()["items"]]

    assert keys(status="triggered") == ["web-1"]
    assert keys(status=["triggered", "resolved"]) == ["web-1", "db-1"]
    assert keys(incident_id=second.id) == ["web-1"]
    assert keys(service="checkout") == ["web-1", "db-1"]
    assert_error(client.get(URL, headers=tokens.observer, params={"service": "nope"}), 404)
    assert_error(client.get(URL, headers=tokens.observer, params={"status": "new"}), 422)
    assert_error(client.get(URL, headers=tokens.observer, params={"incident_id": "x"}), 422)

    r = client.get(f"{URL}/{everything[0]['id']}", headers=tokens.observer)
    assert r.status_code == 200, r.text
    assert r.json()["details"] == {"custom_details": {"region": "eu"}}
    assert_error(client.get(f"{URL}/123456", headers=tokens.observer), 404, "123456")
    assert_error(client.get(f"{URL}/{2**70}", headers=tokens.observer), 422)
    assert_error(client.get(f"{URL}/0", headers=tokens.observer), 422)
