"""Schedules, escalation policies, support hours, contact methods and notification rules in
the configuration files: located validation messages, apply, idempotency, secrets from the
environment, prune, and export that re-applies as a no-op."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session, sessionmaker

from tests.config.conftest import WriteFiles
from tocsin.config.apply import apply_config, plan_config
from tocsin.config.export import export_text
from tocsin.config.loader import load_config, load_sources, unset_secret_variables
from tocsin.config.located import LoadedConfig
from tocsin.config.plan import Plan
from tocsin.config.problems import ConfigError
from tocsin.notify.models import ContactMethod, NotificationRule
from tocsin.oncall.models import EscalationPolicy, Schedule, ScheduleLayer, ScheduleOverride
from tocsin.orgs.models import Service, Team, User

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOOK_SECRET = "whsec-signing-secret-0123456789"
SMS_TOKEN = "feedface" * 4
SMS_URL = "twilio://AC" + "a" * 32 + ":" + SMS_TOKEN + "@15551234567/15557654321"
ENV = {"ALICE_HOOK_SECRET": HOOK_SECRET, "ALICE_SMS": SMS_URL}

ORG = """
users:
  - username: alice
    name: Alice
    email: alice@example.com
    time_zone: Europe/Berlin
    handoff_notice_minutes: 30
    contact_methods:
      - {name: mail, kind: email, address: alice@example.com}
      - name: hook
        kind: webhook
        address: https://hooks.example.com/alice
        options_env: {secret: ALICE_HOOK_SECRET}
      - {name: phone, kind: sms, address_env: ALICE_SMS}
    notification_rules:
      - {urgency: high, contact_method: hook}
      - {urgency: high, delay_minutes: 2, contact_method: phone}
      - {urgency: low, contact_method: mail}
  - {username: bob, name: Bob, email: bob@example.com, time_zone: America/New_York}
teams:
  - {slug: payments, name: Payments, members: [alice, bob]}
schedules:
  - slug: primary
    name: Primary
    team: payments
    time_zone: Europe/Berlin
    layers:
      - name: Weekly
        members: [alice, bob]
        start: "2026-01-05T09:00"
        rotation: {length: 1, unit: weeks}
      - name: Weekends
        members: [bob]
        start: "2026-01-05T00:00"
        rotation: {length: 1, unit: days}
        restrictions:
          - {kind: weekly, start_weekday: sat, start: "00:00", end_weekday: mon, end: "00:00"}
escalation_policies:
  - slug: payments
    name: Payments
    team: payments
    repeat: 1
    levels:
      - delay_minutes: 10
        targets: [{schedule: primary}]
      - targets: [{user: bob}, {team: payments}]
services:
  - slug: checkout
    name: Checkout
    team: payments
    escalation_policy: payments
    urgency: low
    support_hours:
      time_zone: Europe/Berlin
      days: [mon, tue, wed, thu, fri]
      start: "09:00"
      end: "17:00"
"""


def cfg(text: str) -> LoadedConfig:
    return load_sources({"org.yaml": yaml.safe_load(text)})


def apply(factory: sessionmaker[Session], loaded: LoadedConfig, **kw: Any) -> Plan:
    with factory() as s, s.begin():
        return apply_config(s, loaded, now=NOW, env=kw.pop("env", ENV), **kw)


def plan(factory: sessionmaker[Session], loaded: LoadedConfig, **kw: Any) -> Plan:
    with factory() as s:
        return plan_config(s, loaded, now=NOW, env=kw.pop("env", ENV), **kw)


def described(p: Plan) -> list[str]:
    return [c.describe() for c in p.changes]


def fields(p: Plan, name: str, kind: str | None = None) -> list[str]:
    [change] = [c for c in p.changes if c.name == name and kind in (None, c.kind)]
    return [f.describe() for f in change.fields]


def problems(write_config: WriteFiles, text: str) -> list[str]:
    directory = write_config(**{"org.yaml": text})
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    return [str(p) for p in info.value.problems]


# ---- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "members: [alice, bob]\n        start",
            "members: [alice, carol]\n        start",
            "schedules[0].layers[0].members[1]: unknown user 'carol'",
        ),
        (
            "    team: payments\n    time_zone: Europe/Berlin\n    layers",
            "    team: ghosts\n    time_zone: Europe/Berlin\n    layers",
            "schedules[0].team: unknown team 'ghosts'",
        ),
        (
            "      - name: Weekends",
            "      - name: Weekly",
            "schedules[0].layers: two layers are named 'Weekly'",
        ),
        (
            'start_weekday: sat, start: "00:00"',
            "start_weekday: sat, start: 17:00",
            "schedules[0].layers[1].restrictions[0].start: write times of day as "
            "quoted strings, like '17:00'",
        ),
        (
            'start: "2026-01-05T09:00"',
            'start: "2026-01-05T09:00+01:00"',
            "schedules[0].layers[0].start: '2026-01-05T09:00+01:00' carries an offset",
        ),
        (
            "targets: [{schedule: primary}]",
            "targets: [{schedule: nights}]",
            "escalation_policies[0].levels[0].targets[0].schedule: unknown schedule "
            "'nights': no file lists it under 'schedules'",
        ),
        (
            "{user: bob}, {team: payments}",
            "{user: carol}, {team: payments}",
            "escalation_policies[0].levels[1].targets[0].user: unknown user 'carol'",
        ),
        (
            "{user: bob}, {team: payments}",
            "{user: bob, team: payments}",
            "escalation_policies[0].levels[1].targets[0]: a target is exactly one of 'user', "
            "'schedule' or 'team'",
        ),
        (
            "escalation_policy: payments",
            "escalation_policy: platform",
            "services[0].escalation_policy: unknown escalation policy 'platform': no "
            "file lists it under 'escalation_policies'",
        ),
        (
            'end: "17:00"',
            'end: "09:00"',
            "services[0].support_hours: support hours start and end at the same time",
        ),
        (
            "{name: phone, kind: sms, address_env: ALICE_SMS}",
            "{name: phone, kind: sms, address: 'twilio://AC:secret-token@1/2'}",
            "users[0].contact_methods[2]: a sms address is a credential: "
            "configuration never holds secrets",
        ),
        (
            "options_env: {secret: ALICE_HOOK_SECRET}",
            "options: {secret: plain-text-secret-0123456}",
            "users[0].contact_methods[1]: option secret is secret: configuration never holds "
            "secrets; put it in an environment variable and name that variable under "
            "'options_env'",
        ),
        (
            "{name: mail, kind: email, address: alice@example.com}",
            "{name: mail, kind: email, address: alice@example.com, address_env: X}",
            "users[0].contact_methods[0]: give exactly one of 'address' and 'address_env'",
        ),
        (
            "{name: mail, kind: email, address: alice@example.com}",
            "{name: mail, kind: email, address: alice.example.com}",
            "users[0].contact_methods[0].address: 'alice.example.com' is not an email address",
        ),
        (
            "{name: mail, kind: email, address: alice@example.com}",
            "{name: mail, kind: fax, address: alice@example.com}",
            "users[0].contact_methods[0].kind: must be",
        ),
        (
            "{urgency: low, contact_method: mail}",
            "{urgency: low, contact_method: pigeon}",
            "users[0].notification_rules[2].contact_method: unknown contact method 'pigeon'",
        ),
        (
            "{urgency: low, contact_method: mail}",
            "{urgency: high, contact_method: hook}",
            "users[0].notification_rules[2]: this rule is listed twice",
        ),
        (
            "{name: phone, kind: sms",
            "{name: mail, kind: sms",
            "users[0].contact_methods[2].name: duplicate contact method 'mail'",
        ),
    ],
)
def test_mistakes_are_located(write_config: WriteFiles, old: str, new: str, expected: str) -> None:
    assert ORG.count(old) == 1, old
    found = problems(write_config, ORG.replace(old, new))
    assert any(expected in p for p in found), found
    assert all(re.search(r"org\.yaml:\d+: ", p) for p in found), found
    assert all("secret-token" not in p and "plain-text-secret" not in p for p in found)


def line_of(text: str, fragment: str) -> int:
    lines = text.lstrip().splitlines()
    return next(n for n, line in enumerate(lines, start=1) if fragment in line)


def test_messages_point_at_the_line(write_config: WriteFiles) -> None:
    text = ORG.replace("members: [alice, bob]\n", "members: [alice, carol]\n").replace(
        "targets: [{schedule: primary}]", "targets: [{schedule: nights}]"
    )
    found = problems(write_config, text)
    assert found[0].endswith(
        f"org.yaml:{line_of(text, 'carol')}: schedules[0].layers[0].members[1]: unknown user "
        "'carol': no file lists it under 'users'"
    )
    assert found[1].endswith(
        f"org.yaml:{line_of(text, 'nights')}: escalation_policies[0].levels[0].targets[0]."
        "schedule: unknown schedule 'nights': no file lists it under 'schedules'"
    )


def test_unset_secret_variables_are_warnings_at_validation(write_config: WriteFiles) -> None:
    loaded = load_config(write_config(**{"org.yaml": ORG}))
    warnings = [str(w) for w in unset_secret_variables(loaded, {})]
    assert any("users[0].contact_methods[1].options_env.secret" in w for w in warnings)
    assert any("ALICE_SMS is not set" in w for w in warnings)
    assert unset_secret_variables(loaded, ENV) == []


# ---- apply --------------------------------------------------------------------------------


def test_apply_creates_everything_and_reapplies_as_noop(factory: sessionmaker[Session]) -> None:
    first = apply(factory, cfg(ORG))
    assert described(first) == [
        "create user alice",
        "create user bob",
        "create contact method alice/mail",
        "create contact method alice/hook",
        "create contact method alice/phone",
        "create notification rules alice",
        "create team payments",
        "create schedule primary",
        "create escalation policy payments",
        "create service checkout",
    ]
    assert fields(first, "alice/hook") == [
        "kind: 'webhook'",
        "address: 'https://hooks.example.com/…'",
        "options: {secret: '(secret)'}",
    ]
    assert fields(first, "alice/phone") == ["kind: 'sms'", "address: 'twilio://…'"]
    text = str([c.to_json() for c in first.changes])
    assert HOOK_SECRET not in text and SMS_TOKEN not in text
    assert plan(factory, cfg(ORG)).empty
    assert plan(factory, cfg(ORG), prune=True).empty

    with factory() as s:
        ids = {u.username: u.id for u in s.scalars(sa.select(User))}
        alice = s.get_one(User, ids["alice"])
        assert alice.handoff_notice_minutes == 30
        assert s.get_one(User, ids["bob"]).handoff_notice_minutes == 60
        schedule = s.scalars(sa.select(Schedule)).one()
        assert (schedule.time_zone, schedule.team_id) == (
            "Europe/Berlin",
            s.scalars(sa.select(Team.id)).one(),
        )
        layers = s.scalars(sa.select(ScheduleLayer).order_by(ScheduleLayer.position)).all()
        assert [(lay.name, lay.members) for lay in layers] == [
            ("Weekly", [ids["alice"], ids["bob"]]),
            ("Weekends", [ids["bob"]]),
        ]
        assert layers[1].restrictions == [
            {
                "kind": "weekly",
                "start_weekday": 5,
                "start": "00:00",
                "end_weekday": 0,
                "end": "00:00",
            }
        ]
        policy = s.scalars(sa.select(EscalationPolicy)).one()
        assert [(lv.position, lv.delay_minutes, lv.targets) for lv in policy.levels] == [
            (0, 10, [{"type": "schedule", "id": schedule.id}]),
            (1, 30, [{"type": "user", "id": ids["bob"]}, {"type": "team", "id": policy.team_id}]),
        ]
        service = s.scalars(sa.select(Service)).one()
        assert (service.escalation_policy, service.support_hours) == (
            "payments",
            {
                "time_zone": "Europe/Berlin",
                "days": [0, 1, 2, 3, 4],
                "start": "09:00",
                "end": "17:00",
            },
        )
        methods = {m.name: m for m in s.scalars(sa.select(ContactMethod))}
        assert methods["hook"].secret == {
            "address": "https://hooks.example.com/alice",
            "options": {"secret": HOOK_SECRET},
        }
        assert methods["phone"].secret["address"] == SMS_URL
        assert methods["phone"].display == "twilio://…"
        rules = s.execute(
            sa.select(NotificationRule.urgency, NotificationRule.delay_minutes, ContactMethod.name)
            .join(ContactMethod)
            .order_by(NotificationRule.urgency, NotificationRule.delay_minutes)
        ).all()
        assert [tuple(r) for r in rules] == [
            ("high", 0, "hook"),
            ("high", 2, "phone"),
            ("low", 0, "mail"),
        ]
        raw = " ".join(s.execute(sa.text("SELECT secret FROM contact_methods")).scalars())
    assert HOOK_SECRET not in raw and SMS_TOKEN not in raw


def test_changes_are_planned_field_by_field(factory: sessionmaker[Session]) -> None:
    apply(factory, cfg(ORG))
    changed = (
        ORG.replace("members: [alice, bob]\n        start", "members: [bob, alice]\n        start")
        .replace("delay_minutes: 10", "delay_minutes: 5")
        .replace(
            "{urgency: high, delay_minutes: 2, contact_method: phone}",
            "{urgency: high, delay_minutes: 3, contact_method: phone}",
        )
        .replace('end: "17:00"', 'end: "18:00"')
        .replace("handoff_notice_minutes: 30", "handoff_notice_minutes: null")
    )
    p = apply(factory, cfg(changed))
    assert described(p) == [
        "update user alice",
        "update notification rules alice",
        "update schedule primary",
        "update escalation policy payments",
        "update service checkout",
    ]
    assert fields(p, "alice", "user") == ["handoff_notice_minutes: 30 -> (none)"]
    assert fields(p, "alice", "notification rules") == [
        "rules: +high after 3 min by phone -high after 2 min by phone"
    ]
    assert fields(p, "primary") == ["layers.Weekly.members: ['alice', 'bob'] -> ['bob', 'alice']"]
    assert fields(p, "payments", "escalation policy")[0].startswith("levels[1]: {delay_minutes: 10")
    assert fields(p, "checkout") == [
        "support_hours: {time_zone: 'Europe/Berlin', days: [0, 1, 2, 3, 4], start: '09:00', "
        "end: '17:00'} -> {time_zone: 'Europe/Berlin', days: [0, 1, 2, 3, 4], start: '09:00', "
        "end: '18:00'}"
    ]
    assert plan(factory, cfg(changed)).empty
    with factory() as s:
        assert (
            s.scalars(sa.select(User.handoff_notice_minutes).where(User.username == "alice")).one()
            is None
        )


def test_secrets_come_from_the_environment(factory: sessionmaker[Session]) -> None:
    # A new contact method cannot be created without its secret.
    with pytest.raises(ConfigError) as info:
        plan(factory, cfg(ORG), env={"ALICE_SMS": SMS_URL})
    [problem] = info.value.problems
    assert "ALICE_HOOK_SECRET is not set" in str(problem)
    assert "users[0].contact_methods[1]" in str(problem)
    apply(factory, cfg(ORG))
    # Later, with the variables unset, the stored secrets are kept, with warnings.
    quiet = plan(factory, cfg(ORG), env={})
    assert quiet.empty
    assert len(quiet.warnings) == 2 and all(
        "keeping the stored value" in str(w) for w in quiet.warnings
    )
    # Setting a variable rotates the secret; the plan shows that it changes, never what to.
    rotated = apply(factory, cfg(ORG), env={**ENV, "ALICE_HOOK_SECRET": "a-new-secret-0123456789"})
    assert fields(rotated, "alice/hook") == ["options.secret: '(secret)' -> '(new secret)'"]
    new_url = SMS_URL.replace("15557654321", "15550000000")
    moved = apply(factory, cfg(ORG), env={**ENV, "ALICE_SMS": new_url})
    assert fields(moved, "alice/phone") == ["address: '(secret)' -> '(new secret)'"]
    with factory() as s:
        phone = s.scalars(sa.select(ContactMethod).where(ContactMethod.name == "phone")).one()
        assert phone.secret["address"] == new_url
    # A variable that holds something unusable is a problem, without echoing it.
    with pytest.raises(ConfigError) as info:
        plan(factory, cfg(ORG), env={**ENV, "ALICE_SMS": "twilio://nope:leaked-value@1"})
    assert "leaked-value" not in str(info.value.problems)


def test_a_changed_address_must_be_verified_again(factory: sessionmaker[Session]) -> None:
    apply(factory, cfg(ORG))
    with factory() as s, s.begin():
        for method in s.scalars(sa.select(ContactMethod)):
            method.verified_at = NOW
    apply(factory, cfg(ORG.replace("address: alice@example.com}", "address: a@example.org}")))
    with factory() as s:
        verified = {m.name: m.verified_at for m in s.scalars(sa.select(ContactMethod))}
    assert verified["mail"] is None and verified["hook"] is not None


def test_contact_methods_are_pruned_only_when_listed_and_asked(
    factory: sessionmaker[Session],
) -> None:
    apply(factory, cfg(ORG))
    with factory() as s, s.begin():
        bob = s.scalars(sa.select(User).where(User.username == "bob")).one()
        s.add(
            ContactMethod(
                user_id=bob.id,
                name="own",
                kind="email",
                secret={"address": "bob@example.org", "options": {}},
                display="bob@example.org",
                created_at=NOW,
            )
        )
    without_phone = ORG.replace(
        "      - {name: phone, kind: sms, address_env: ALICE_SMS}\n", ""
    ).replace("      - {urgency: high, delay_minutes: 2, contact_method: phone}\n", "")
    # Rules are set exactly; the contact method stays without --prune.
    p = apply(factory, cfg(without_phone))
    assert described(p) == ["update notification rules alice"]
    p = plan(factory, cfg(without_phone), prune=True)
    # bob's files do not list contact methods: his own stays even with --prune.
    assert described(p) == [
        "delete contact method alice/phone (and the notification rules that use it)"
    ]
    apply(factory, cfg(without_phone), prune=True)
    with factory() as s:
        assert sorted(s.scalars(sa.select(ContactMethod.name))) == ["hook", "mail", "own"]


def test_overrides_are_not_configuration(factory: sessionmaker[Session]) -> None:
    apply(factory, cfg(ORG))
    with factory() as s, s.begin():
        schedule = s.scalars(sa.select(Schedule)).one()
        bob = s.scalars(sa.select(User).where(User.username == "bob")).one()
        s.add(
            ScheduleOverride(
                schedule_id=schedule.id,
                user_id=bob.id,
                start_at=NOW,
                end_at=NOW + timedelta(hours=4),
                created_at=NOW,
            )
        )
    assert plan(factory, cfg(ORG), prune=True).empty
    apply(
        factory,
        cfg(
            ORG.replace("rotation: {length: 1, unit: weeks}", "rotation: {length: 2, unit: weeks}")
        ),
    )
    with factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ScheduleOverride)) == 1
    without = yaml.safe_load(ORG)
    del without["schedules"]
    without["escalation_policies"][0]["levels"] = [{"targets": [{"user": "bob"}]}]
    p = plan(factory, load_sources({"org.yaml": without}), prune=True)
    assert "delete schedule primary (also deletes its overrides)" in described(p)


def test_prune_deletes_schedules_and_policies(factory: sessionmaker[Session]) -> None:
    apply(factory, cfg(ORG))
    only_people = yaml.safe_load(ORG)
    for key in ("schedules", "escalation_policies", "services"):
        del only_people[key]
    p = apply(factory, load_sources({"org.yaml": only_people}), prune=True)
    assert described(p) == [
        "delete service checkout (also deletes its 0 integration(s))",
        "delete escalation policy payments",
        "delete schedule primary (also deletes its overrides)",
    ]
    with factory() as s:
        assert s.scalars(sa.select(Schedule)).all() == []
        assert s.scalars(sa.select(EscalationPolicy)).all() == []


# ---- export -------------------------------------------------------------------------------


def test_export_round_trips_without_secrets(factory: sessionmaker[Session], tmp_path: Path) -> None:
    apply(factory, cfg(ORG))
    with factory() as s:
        text = export_text(s)
    assert HOOK_SECRET not in text and SMS_TOKEN not in text
    data = yaml.safe_load(text)
    [alice] = [u for u in data["users"] if u["username"] == "alice"]
    methods = {m["name"]: m for m in alice["contact_methods"]}
    # Email addresses are not secrets; URLs and signing secrets are named by variable.
    assert methods["mail"] == {"name": "mail", "kind": "email", "address": "alice@example.com"}
    assert methods["hook"] == {
        "name": "hook",
        "kind": "webhook",
        "address_env": "TOCSIN_ALICE_HOOK_ADDRESS",
        "options_env": {"secret": "TOCSIN_ALICE_HOOK_SECRET"},
    }
    assert methods["phone"]["address_env"] == "TOCSIN_ALICE_PHONE_ADDRESS"
    lines = text.splitlines()
    at = next(
        i for i, line in enumerate(lines) if "address_env: TOCSIN_ALICE_PHONE_ADDRESS" in line
    )
    assert lines[at - 1].strip().startswith("# TOCSIN_ALICE_PHONE_ADDRESS: stored encrypted")
    assert data["schedules"][0]["layers"][1]["restrictions"] == [
        {"kind": "weekly", "start_weekday": 5, "start": "00:00", "end_weekday": 0, "end": "00:00"}
    ]
    assert data["escalation_policies"][0]["levels"][1]["targets"] == [
        {"user": "bob"},
        {"team": "payments"},
    ]
    assert data["services"][0]["support_hours"]["days"] == [0, 1, 2, 3, 4]
    # It validates and, even with prune and without the variables, changes nothing.
    exported = load_sources({"-": data})
    quiet = plan(factory, exported, env={}, prune=True)
    assert quiet.empty, described(quiet)
    assert [str(w).split(" is not set")[0] for w in quiet.warnings] == [
        "-: users[0].contact_methods[0]: TOCSIN_ALICE_HOOK_ADDRESS, TOCSIN_ALICE_HOOK_SECRET",
        "-: users[0].contact_methods[2]: TOCSIN_ALICE_PHONE_ADDRESS",
    ]


def test_the_examples_reach_someone_for_every_urgent_service(
    factory: sessionmaker[Session],
) -> None:
    from tocsin.oncall.service import service_gaps

    examples = Path(__file__).resolve().parents[2] / "examples"
    loaded = load_config(examples)
    config = loaded.config
    assert {s.time_zone for s in config.schedules} == {"Europe/Berlin", "America/New_York"}
    assert all(s.escalation_policy for s in config.services)
    assert any(s.support_hours for s in config.services if s.urgency == "low")
    assert all(u.contact_methods and u.notification_rules for u in config.users)
    apply(factory, loaded, env={})
    with factory() as s:
        for service in s.scalars(sa.select(Service).where(Service.urgency == "high")):
            # Follow the sun, a weekly primary and secondary: two weeks without a gap, also
            # across the US and EU daylight-saving changes in March.
            for start in (NOW, datetime(2026, 3, 2, tzinfo=UTC)):
                assert service_gaps(s, service, start, start + timedelta(days=28)) == [], (
                    service.slug
                )
