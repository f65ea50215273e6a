"""users: who can be paged and who may act, and how each wants to be paged (contact methods
and notification rules, see contacts.py). Passwords and tokens are never configured here."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import Session

from tocsin.config.located import Locator
from tocsin.config.models import OrgConfig, UserSpec
from tocsin.config.plan import Change, Context, FieldChange, diff_fields
from tocsin.config.problems import Problem
from tocsin.config.sections import contacts
from tocsin.config.sections.base import ExportNotes
from tocsin.orgs.models import User


def _desired(spec: UserSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "email": spec.email,
        "role": spec.role,
        "time_zone": spec.time_zone,
        "handoff_notice_minutes": spec.handoff_notice_minutes,
    }


def _current(row: User) -> dict[str, Any]:
    return {
        "name": row.name,
        "email": row.email,
        "role": row.role,
        "time_zone": row.time_zone,
        "handoff_notice_minutes": row.handoff_notice_minutes,
    }


class UsersSection:
    key = "users"
    kind = "user"
    id_field = "username"

    def identity(self, item: Any) -> str:
        spec: UserSpec = item
        return spec.username

    def check(self, config: OrgConfig, at: Locator) -> list[Problem]:
        problems: list[Problem] = []
        seen: dict[str, int] = {}
        for index, user in enumerate(config.users):
            email = user.email.lower()
            if email in seen:
                first = seen[email]
                problems.append(
                    at.problem(
                        "users",
                        index,
                        ("email",),
                        f"email {user.email!r} is already used by user "
                        f"{config.users[first].username!r} ({at.where('users', first)})",
                    )
                )
            else:
                seen[email] = index
            for loc, message in contacts.check_user(user):
                problems.append(at.problem("users", index, loc, message))
        return problems

    def plan(self, session: Session, config: OrgConfig, ctx: Context) -> list[Change]:
        rows = {u.username: u for u in session.scalars(sa.select(User))}
        wanted = {u.username for u in config.users}
        deleted = set() if not ctx.prune else set(rows) - wanted
        # An email may move between users, but not to one held by a user the files leave alone.
        kept_emails = {
            row.email.lower(): name
            for name, row in rows.items()
            if name not in wanted and name not in deleted
        }
        changes: list[Change] = []
        for name in sorted(deleted):
            changes.append(Change("user", "delete", name, target_id=rows[name].id))
        for index, spec in enumerate(config.users):
            owner = kept_emails.get(spec.email.lower())
            if owner is not None:
                ctx.problems.append(
                    ctx.at.problem(
                        "users",
                        index,
                        ("email",),
                        f"email {spec.email!r} belongs to user {owner!r}, who is not in the "
                        "files (add that user to the files, or apply with --prune)",
                    )
                )
            desired = _desired(spec)
            row = rows.get(spec.username)
            if row is None:
                fields = tuple(FieldChange(k, None, v) for k, v in desired.items())
                changes.append(Change("user", "create", spec.username, fields, desired=desired))
            elif diff := diff_fields(_current(row), desired):
                changes.append(
                    Change(
                        "user",
                        "update",
                        spec.username,
                        tuple(diff),
                        target_id=row.id,
                        desired=desired,
                    )
                )
        changes += contacts.plan_methods(session, config, ctx, deleted)
        changes += contacts.plan_rules(session, config, ctx)
        return changes

    def execute(self, session: Session, change: Change, ctx: Context) -> None:
        if change.kind in (contacts.METHOD, contacts.RULES):
            contacts.execute(session, change, ctx)
        elif change.action == "create":
            row = User(username=change.name, created_at=ctx.now, **change.desired)
            session.add(row)
            if change.desired["handoff_notice_minutes"] is None:
                # The column's default fills in an explicit None on insert: clear it after.
                session.flush()
                row.handoff_notice_minutes = None
        elif change.action == "update":
            row = session.get_one(User, change.target_id)
            for name, value in change.desired.items():
                setattr(row, name, value)
        else:
            session.delete(session.get_one(User, change.target_id))

    def export(self, session: Session, notes: ExportNotes) -> list[BaseModel]:
        rows = session.scalars(sa.select(User).order_by(User.username))
        rules = contacts.current_rules(session)
        return [
            UserSpec(
                username=r.username,
                **_current(r),
                contact_methods=contacts.export_methods(session, r, notes),
                notification_rules=contacts.export_rules(r, rules),
            )
            for r in rows
        ]
