"""Escalation policies over the API: definition, references, renames and deletions, who each
level would page for a policy, a service and a team, and coverage gaps."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Tokens, assert_error, walk
from tests.api.test_authorization import snapshot
from tocsin.runtime import Runtime

URL = "/api/v1/escalation-policies"
DAYTIME = {
    "slug": "daytime",
    "name": "Daytime",
    "time_zone": "Europe/Berlin",
    "layers": [
        {
            "name": "Office",
            "members": ["alice"],
            "start": "2026-01-05T00:00",
            "rotation": {"length": 1, "unit": "weeks"},
            "restrictions": [{"kind": "daily", "start": "09:00", "end": "17:00"}],
        }
    ],
}


def policy(**fields: Any) -> dict[str, Any]:
    return {
        "slug": "payments-escalation",
        "name": "Payments escalation",
        "team": "payments",
        "repeat": 1,
        "levels": [
            {"delay_minutes": 10, "targets": [{"type": "schedule", "slug": "daytime"}]},
            {
                "delay_minutes": 15,
                "targets": [
                    {"type": "user", "username": "adam"},
                    {"type": "team", "slug": "payments"},
                ],
            },
        ],
        **fields,
    }


@pytest.fixture
def daytime(client: TestClient, tokens: Tokens) -> None:
    r = client.post("/api/v1/schedules", headers=tokens.admin, json=DAYTIME)
    assert r.status_code == 201, r.text


@pytest.fixture
def escalation(client: TestClient, tokens: Tokens, daytime: None) -> dict[str, Any]:
    r = client.post(URL, headers=tokens.admin, json=policy())
    assert r.status_code == 201, r.text
    r = client.patch(
        "/api/v1/services/checkout",
        headers=tokens.admin,
        json={"escalation_policy": "payments-escalation"},
    )
    assert r.status_code == 200, r.text
    created: dict[str, Any] = client.get(f"{URL}/payments-escalation", headers=tokens.admin).json()
    return created


def test_policy_lifecycle(client: TestClient, tokens: Tokens, escalation: dict[str, Any]) -> None:
    assert escalation["levels"] == [
        {
            "level": 1,
            "delay_minutes": 10,
            "targets": [{"type": "schedule", "username": None, "slug": "daytime"}],
        },
        {
            "level": 2,
            "delay_minutes": 15,
            "targets": [
                {"type": "user", "username": "adam", "slug": None},
                {"type": "team", "username": None, "slug": "payments"},
            ],
        },
    ]
    assert (escalation["team"], escalation["repeat"], escalation["services"]) == (
        "payments",
        1,
        ["checkout"],
    )
    assert [p["slug"] for p in walk(client, URL, tokens.observer)] == ["payments-escalation"]

    # A rename carries the services along; new levels replace the old ones.
    r = client.patch(
        f"{URL}/payments-escalation",
        headers=tokens.admin,
        json={
            "slug": "payments",
            "repeat": 0,
            "levels": [{"targets": [{"type": "user", "username": "alice"}]}],
        },
    )
    assert r.status_code == 200, r.text
    renamed = r.json()
    assert renamed["slug"] == "payments"
    assert renamed["levels"] == [
        {
            "level": 1,
            "delay_minutes": 30,
            "targets": [{"type": "user", "username": "alice", "slug": None}],
        }
    ]
    service = client.get("/api/v1/services/checkout", headers=tokens.admin).json()
    assert service["escalation_policy"] == "payments"

    assert_error(client.delete(f"{URL}/payments", headers=tokens.admin), 409, "checkout")
    client.patch(
        "/api/v1/services/checkout", headers=tokens.admin, json={"escalation_policy": None}
    )
    assert client.delete(f"{URL}/payments", headers=tokens.admin).status_code == 204
    assert_error(client.get(f"{URL}/payments", headers=tokens.admin), 404)


def test_a_schedule_a_policy_pages_cannot_be_deleted(
    client: TestClient, tokens: Tokens, escalation: dict[str, Any], runtime: Runtime
) -> None:
    before = snapshot(runtime)
    r = client.delete("/api/v1/schedules/daytime", headers=tokens.admin)
    assert_error(r, 409, "payments-escalation")
    assert snapshot(runtime) == before


@pytest.mark.parametrize(
    ("change", "status", "fragment"),
    [
        ({"levels": []}, 422, "levels"),
        ({"levels": [{"targets": []}]}, 422, "targets"),
        ({"levels": [{"targets": [{"type": "robot", "slug": "x"}]}]}, 422, "type"),
        ({"levels": [{"targets": [{"type": "user", "slug": "alice"}]}]}, 422, "username"),
        (
            {"levels": [{"delay_minutes": 0, "targets": [{"type": "user", "username": "alice"}]}]},
            422,
            "delay_minutes",
        ),
        ({"repeat": 10}, 422, "repeat"),
        ({"levels": [{"targets": [{"type": "user", "username": "zed"}]}]}, 404, "zed"),
        ({"levels": [{"targets": [{"type": "schedule", "slug": "nights"}]}]}, 404, "nights"),
        ({"levels": [{"targets": [{"type": "team", "slug": "ghosts"}]}]}, 404, "ghosts"),
        ({"team": "ghosts"}, 404, "ghosts"),
    ],
)
def test_bad_policies_are_refused_and_write_nothing(
    client: TestClient,
    tokens: Tokens,
    daytime: None,
    runtime: Runtime,
    change: dict[str, Any],
    status: int,
    fragment: str,
) -> None:
    before = snapshot(runtime)
    assert_error(client.post(URL, headers=tokens.admin, json=policy(**change)), status, fragment)
    assert snapshot(runtime) == before


def test_who_each_level_would_page(
    client: TestClient, tokens: Tokens, escalation: dict[str, Any]
) -> None:
    h = tokens.observer
    alice = {"username": "alice", "name": "Alice"}
    adam = {"username": "adam", "name": "Adam"}
    # 09:00 UTC is 10:00 in Berlin: the daytime schedule has alice.
    r = client.get("/api/v1/services/checkout/oncall", headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "service": "checkout",
        "policy": "payments-escalation",
        "at": "2026-01-05T09:00:00Z",
        "levels": [
            {"level": 1, "delay_minutes": 10, "users": [alice]},
            {"level": 2, "delay_minutes": 15, "users": [adam, alice]},
        ],
    }
    # At night the first level reaches nobody.
    night = {"at": "2026-01-05T22:00:00Z"}
    r = client.get(f"{URL}/payments-escalation/oncall", headers=h, params=night)
    assert [level["users"] for level in r.json()["levels"]] == [[], [adam, alice]]
    r = client.get("/api/v1/teams/payments/oncall", headers=h, params=night)
    assert r.json()["policies"] == [
        {
            "policy": "payments-escalation",
            "levels": [
                {"level": 1, "delay_minutes": 10, "users": []},
                {"level": 2, "delay_minutes": 15, "users": [adam, alice]},
            ],
        }
    ]
    assert_error(client.get("/api/v1/teams/ghosts/oncall", headers=h), 404, "ghosts")
    assert_error(client.get("/api/v1/services/ghost/oncall", headers=h), 404, "ghost")


def test_coverage_gaps(client: TestClient, tokens: Tokens, daytime: None) -> None:
    h = tokens.admin
    only_daytime = policy(
        slug="office-hours",
        levels=[{"targets": [{"type": "schedule", "slug": "daytime"}]}],
    )
    assert client.post(URL, headers=h, json=only_daytime).status_code == 201
    client.patch("/api/v1/services/checkout", headers=h, json={"escalation_policy": "office-hours"})
    client.post("/api/v1/services", headers=h, json={"slug": "search", "name": "Search"})
    client.post(
        "/api/v1/services", headers=h, json={"slug": "wiki", "name": "Wiki", "urgency": "low"}
    )

    r = client.get("/api/v1/oncall/gaps", headers=tokens.observer, params={"days": 1})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "start": "2026-01-05T09:00:00Z",
        "end": "2026-01-06T09:00:00Z",
        "services": [
            {
                "service": "checkout",
                "policy": "office-hours",
                # Berlin 17:00 to 09:00 the next morning.
                "gaps": [{"start": "2026-01-05T16:00:00Z", "end": "2026-01-06T08:00:00Z"}],
            },
            {
                "service": "search",
                "policy": None,
                "gaps": [{"start": "2026-01-05T09:00:00Z", "end": "2026-01-06T09:00:00Z"}],
            },
        ],
    }
    # A user at the second level covers the nights.
    client.patch(
        f"{URL}/office-hours",
        headers=h,
        json={
            "levels": [
                {"targets": [{"type": "schedule", "slug": "daytime"}]},
                {"targets": [{"type": "user", "username": "alice"}]},
            ]
        },
    )
    r = client.get("/api/v1/oncall/gaps", headers=tokens.observer, params={"days": 14})
    assert [(s["service"], len(s["gaps"])) for s in r.json()["services"]] == [
        ("checkout", 0),
        ("search", 1),
    ]
    for days in (0, 91, "two"):
        assert_error(
            client.get("/api/v1/oncall/gaps", headers=h, params={"days": days}), 422, "days"
        )


def test_deactivated_users_are_not_on_call(
    client: TestClient, tokens: Tokens, escalation: dict[str, Any]
) -> None:
    client.patch("/api/v1/users/alice", headers=tokens.admin, json={"active": False})
    r = client.get("/api/v1/services/checkout/oncall", headers=tokens.observer)
    assert [[u["username"] for u in level["users"]] for level in r.json()["levels"]] == [
        [],
        ["adam"],
    ]
