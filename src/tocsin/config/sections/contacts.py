"""users[].contact_methods and users[].notification_rules: planned, applied and exported with
the users that own them.

A user without the `contact_methods` key leaves their contact methods to the API; with it, the
listed ones are created and updated, and `--prune` deletes the others. `notification_rules`,
when present, is the user's complete set of rules (like a team's members).

Secrets (a secret address, secret options) come from environment variables at apply time and
are stored encrypted. With a variable unset, an existing contact method keeps its stored value
(with a warning), which is how an exported configuration re-applies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tocsin.config.models import (
    ContactMethodSpec,
    NotificationRuleSpec,
    OrgConfig,
    UserSpec,
)
from tocsin.config.plan import NEW_SECRET_SHOWN, SECRET_SHOWN, Change, Context, FieldChange
from tocsin.config.secrets import placeholder_env
from tocsin.config.sections.base import ExportNotes
from tocsin.notify.contacts import SECRET_OPTIONS, address_is_secret, check_contact
from tocsin.notify.models import ContactMethod, NotificationRule
from tocsin.orgs.models import User

METHOD = "contact method"
RULES = "notification rules"
_NOT_EXPORTED = (
    "stored encrypted and not exported: set this variable to change it; while it is unset, "
    "apply keeps the stored value"
)


def check_user(user: UserSpec) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems within one user's contact methods and rules, as (path, message)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    names: set[str] = set()
    for index, method in enumerate(user.contact_methods or []):
        if method.name in names:
            problems.append(
                (("contact_methods", index, "name"), f"duplicate contact method {method.name!r}")
            )
        names.add(method.name)
        if method.address is not None and not method.options_env:
            try:
                check_contact(method.kind, method.address, method.options)
            except ValueError as exc:
                problems.append((("contact_methods", index, "address"), str(exc)))
    seen: set[tuple[str, int, str]] = set()
    for index, rule in enumerate(user.notification_rules or []):
        if rule.contact_method not in names:
            problems.append(
                (
                    ("notification_rules", index, "contact_method"),
                    f"unknown contact method {rule.contact_method!r}: list it under this user's "
                    "'contact_methods'",
                )
            )
        key = (rule.urgency, rule.delay_minutes, rule.contact_method)
        if key in seen:
            problems.append((("notification_rules", index), "this rule is listed twice"))
        seen.add(key)
    return problems


# ---- plan -----------------------------------------------------------------------------------


def _env_value(raw: str, current: Any) -> Any:
    """An option's value from its variable: JSON when the option is a list or a mapping."""
    if isinstance(current, list | dict) or raw.lstrip().startswith(("{", "[")):
        return json.loads(raw)
    return raw


def _resolve(
    ctx: Context,
    user_index: int,
    method_index: int,
    owner: str,
    spec: ContactMethodSpec,
    current: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """The address and options to store, read from the files and the environment; None (with a
    problem recorded) when they cannot be."""
    here = ("contact_methods", method_index)
    name = f"{owner}/{spec.name}"
    stored_options: Mapping[str, Any] = (current or {}).get("options") or {}
    kept: list[str] = []
    missing: list[str] = []
    if spec.address is not None:
        address = spec.address
    elif ctx.env.get(spec.address_env or ""):
        address = ctx.env[spec.address_env or ""]
    elif current is not None and current.get("address"):
        address, kept = str(current["address"]), [spec.address_env or ""]
    else:
        address, missing = "", [spec.address_env or ""]
    options = dict(spec.options)
    for key, var in sorted(spec.options_env.items()):
        raw = ctx.env.get(var)
        if raw:
            try:
                options[key] = _env_value(raw, stored_options.get(key))
            except ValueError:
                ctx.problems.append(
                    ctx.at.problem(
                        "users",
                        user_index,
                        (*here, "options_env", key),
                        f"environment variable {var} must hold JSON for option {key} of {name}",
                    )
                )
                return None
        elif key in stored_options:
            options[key] = stored_options[key]
            kept.append(var)
        else:
            missing.append(var)
    if missing:
        ctx.problems.append(
            ctx.at.problem(
                "users",
                user_index,
                here,
                f"environment variable {', '.join(missing)} is not set; it must hold the "
                f"secret for contact method {name}",
            )
        )
        return None
    if kept:
        ctx.warnings.append(
            ctx.at.problem(
                "users",
                user_index,
                here,
                f"{', '.join(kept)} is not set; keeping the stored value of {name}",
                warning=True,
            )
        )
    try:
        shown = check_contact(spec.kind, address, options)
    except ValueError as exc:
        ctx.problems.append(ctx.at.problem("users", user_index, here, f"{name}: {exc}"))
        return None
    return {"address": address, "options": options, "display": shown}


def _shown_options(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (SECRET_SHOWN if k in SECRET_OPTIONS else v) for k, v in sorted(options.items())}


def _method_fields(current: ContactMethod | None, desired: Mapping[str, Any]) -> list[FieldChange]:
    """What a plan shows: kinds, display forms and option names, never a secret."""
    new_secret = {"address": desired["address"], "options": desired["options"]}
    if current is None:
        fields = [
            FieldChange("kind", None, desired["kind"]),
            FieldChange("address", None, desired["display"]),
        ]
        if desired["options"]:
            fields.append(FieldChange("options", None, _shown_options(desired["options"])))
        if not desired["enabled"]:
            fields.append(FieldChange("enabled", None, False))
        return fields
    fields = []
    if current.kind != desired["kind"]:
        fields.append(FieldChange("kind", current.kind, desired["kind"]))
    old_secret = dict(current.secret or {})
    if old_secret.get("address") != new_secret["address"]:
        old, new = current.display, desired["display"]
        if old == new:  # only a secret part differs
            old, new = SECRET_SHOWN, NEW_SECRET_SHOWN
        fields.append(FieldChange("address", old, new))
    old_options = old_secret.get("options") or {}
    for key in sorted(set(old_options) | set(new_secret["options"])):
        before, after = old_options.get(key), new_secret["options"].get(key)
        if before == after:
            continue
        if key in SECRET_OPTIONS:
            before = SECRET_SHOWN if before is not None else None
            after = NEW_SECRET_SHOWN if after is not None else None
        fields.append(FieldChange(f"options.{key}", before, after))
    if current.enabled != desired["enabled"]:
        fields.append(FieldChange("enabled", current.enabled, desired["enabled"]))
    return fields


def plan_methods(
    session: Session, config: OrgConfig, ctx: Context, deleted_users: set[str]
) -> list[Change]:
    users = {u.username: u.id for u in session.scalars(sa.select(User))}
    by_user: dict[int, dict[str, ContactMethod]] = {}
    for stored in session.scalars(sa.select(ContactMethod)):
        by_user.setdefault(stored.user_id, {})[stored.name] = stored
    changes: list[Change] = []
    for user_index, spec in enumerate(config.users):
        if spec.contact_methods is None:
            continue
        existing = by_user.get(users[spec.username], {}) if spec.username in users else {}
        if ctx.prune and spec.username not in deleted_users:
            listed = {m.name for m in spec.contact_methods}
            for name, unlisted in sorted(existing.items()):
                if name not in listed:
                    changes.append(
                        Change(
                            METHOD,
                            "delete",
                            f"{spec.username}/{name}",
                            note="and the notification rules that use it",
                            target_id=unlisted.id,
                        )
                    )
        for method_index, method in enumerate(spec.contact_methods):
            row = existing.get(method.name)
            resolved = _resolve(
                ctx,
                user_index,
                method_index,
                spec.username,
                method,
                dict(row.secret or {}) if row is not None else None,
            )
            if resolved is None:
                continue
            desired = {
                "user": spec.username,
                "name": method.name,
                "kind": method.kind,
                "enabled": method.enabled,
                **resolved,
            }
            fields = _method_fields(row, desired)
            if row is None:
                name = f"{spec.username}/{method.name}"
                changes.append(Change(METHOD, "create", name, tuple(fields), desired=desired))
            elif fields:
                changes.append(
                    Change(
                        METHOD,
                        "update",
                        f"{spec.username}/{method.name}",
                        tuple(fields),
                        target_id=row.id,
                        desired=desired,
                    )
                )
    return changes


def _rule_text(urgency: str, delay: int, method: str) -> str:
    return f"{urgency} after {delay} min by {method}"


def _rule_key(rule: NotificationRuleSpec) -> tuple[str, int, str]:
    return (rule.urgency, rule.delay_minutes, rule.contact_method)


def current_rules(session: Session) -> dict[int, list[tuple[str, int, str]]]:
    rows = session.execute(
        sa.select(
            NotificationRule.user_id,
            NotificationRule.urgency,
            NotificationRule.delay_minutes,
            ContactMethod.name,
        ).join(ContactMethod, ContactMethod.id == NotificationRule.contact_method_id)
    )
    out: dict[int, list[tuple[str, int, str]]] = {}
    for user_id, urgency, delay, name in rows:
        out.setdefault(user_id, []).append((urgency, delay, name))
    return {k: sorted(v) for k, v in out.items()}


def plan_rules(session: Session, config: OrgConfig, ctx: Context) -> list[Change]:
    users = {u.username: u.id for u in session.scalars(sa.select(User))}
    stored = current_rules(session)
    changes: list[Change] = []
    for spec in config.users:
        if spec.notification_rules is None:
            continue
        desired = sorted({_rule_key(r) for r in spec.notification_rules})
        current = stored.get(users[spec.username], []) if spec.username in users else []
        if desired == current:
            continue
        field = FieldChange(
            "rules",
            [_rule_text(*r) for r in current] if current else None,
            [_rule_text(*r) for r in desired],
        )
        changes.append(
            Change(
                RULES,
                "update" if current else "create",
                spec.username,
                (field,),
                desired={"rules": desired},
            )
        )
    return changes


# ---- apply ----------------------------------------------------------------------------------


def execute(session: Session, change: Change, ctx: Context) -> None:
    if change.kind == RULES:
        _execute_rules(session, change)
        return
    if change.action == "delete":
        session.delete(session.get_one(ContactMethod, change.target_id))
        return
    desired = change.desired
    secret = {"address": desired["address"], "options": desired["options"]}
    if change.action == "create":
        user_id = session.scalars(sa.select(User.id).where(User.username == desired["user"])).one()
        session.add(
            ContactMethod(
                user_id=user_id,
                name=desired["name"],
                kind=desired["kind"],
                secret=secret,
                display=desired["display"],
                enabled=desired["enabled"],
                created_at=ctx.now,
            )
        )
        return
    row = session.get_one(ContactMethod, change.target_id)
    if row.kind != desired["kind"] or dict(row.secret or {}) != secret:
        # Where a page goes changed: the last test no longer says anything about it.
        row.verified_at = None
    row.kind = desired["kind"]
    row.secret = secret
    row.display = desired["display"]
    row.enabled = desired["enabled"]


def _execute_rules(session: Session, change: Change) -> None:
    user_id = session.scalars(sa.select(User.id).where(User.username == change.name)).one()
    methods = {
        name: method_id
        for method_id, name in session.execute(
            sa.select(ContactMethod.id, ContactMethod.name).where(ContactMethod.user_id == user_id)
        )
    }
    session.execute(sa.delete(NotificationRule).where(NotificationRule.user_id == user_id))
    for urgency, delay, name in change.desired["rules"]:
        session.add(
            NotificationRule(
                user_id=user_id,
                urgency=urgency,
                delay_minutes=delay,
                contact_method_id=methods[name],
            )
        )


# ---- export ---------------------------------------------------------------------------------


def export_methods(
    session: Session, user: User, notes: ExportNotes
) -> list[ContactMethodSpec] | None:
    rows = session.scalars(
        sa.select(ContactMethod)
        .where(ContactMethod.user_id == user.id)
        .order_by(ContactMethod.name)
    ).all()
    if not rows:
        return None
    out: list[ContactMethodSpec] = []
    for row in rows:
        secret = dict(row.secret or {})
        address = str(secret.get("address", ""))
        options = dict(secret.get("options") or {})
        fields: dict[str, Any] = {"name": row.name, "kind": row.kind, "enabled": row.enabled}
        if address_is_secret(row.kind, address):
            var = placeholder_env(user.username, row.name, "address")
            notes.comment(var, _NOT_EXPORTED)
            fields["address_env"] = var
        else:
            fields["address"] = address
        fields["options"] = {k: v for k, v in options.items() if k not in SECRET_OPTIONS}
        fields["options_env"] = {}
        for key in sorted(set(options) & SECRET_OPTIONS):
            var = placeholder_env(user.username, row.name, key)
            notes.comment(var, _NOT_EXPORTED)
            fields["options_env"][key] = var
        out.append(ContactMethodSpec.model_validate(fields))
    return out


def export_rules(
    user: User, stored: Mapping[int, list[tuple[str, int, str]]]
) -> list[NotificationRuleSpec] | None:
    rules = stored.get(user.id)
    if not rules:
        return None
    return [
        NotificationRuleSpec.model_validate(
            {"urgency": urgency, "delay_minutes": delay, "contact_method": name}
        )
        for urgency, delay, name in rules
    ]
