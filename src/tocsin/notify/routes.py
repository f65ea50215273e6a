"""/api/v1/users/{username}/contact-methods and /notification-rules: how a person wants to be
paged. Users manage their own; admins manage anyone's. Nobody else reads them (they are
phone numbers and private addresses), and addresses and options are never shown again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, Response
from sqlalchemy.orm import Session

from tocsin.api.deps import Db, DbRead, Reader, get_runtime
from tocsin.api.pagination import Page, PageParams, fetch_page
from tocsin.api.routing import IdPath, Pages, UsernamePath, api_router
from tocsin.auth.service import Principal
from tocsin.errors import ApiError
from tocsin.notify import pages
from tocsin.notify.contacts import check_contact, option_names
from tocsin.notify.models import ContactMethod, NotificationRule
from tocsin.notify.schemas import (
    ContactMethodCreate,
    ContactMethodOut,
    ContactMethodUpdate,
    NotificationRuleCreate,
    NotificationRuleOut,
    NotificationSettings,
    NotificationSettingsUpdate,
    TestNotificationOut,
)
from tocsin.orgs import service as orgs
from tocsin.orgs.models import User
from tocsin.orgs.schemas import error_responses
from tocsin.runtime import Runtime

router = api_router("/users/{username}", tags=["contact methods"], errors=(403, 404))


def _user(session: Session, principal: Principal, username: str) -> User:
    """The user whose contact details these are, if the caller may see and change them."""
    user = orgs.user_by_username(session, username)
    if principal.user_id != user.id and not principal.has_role("admin"):
        raise ApiError(403, "only an admin may see or change someone else's contact methods")
    return user


def _checked(kind: str, address: str, options: dict[str, Any]) -> str:
    try:
        return check_contact(kind, address, options)
    except ValueError as exc:
        raise ApiError(422, f"address: {exc}") from exc


def _method(session: Session, user: User, method_id: int) -> ContactMethod:
    method = session.get(ContactMethod, method_id)
    if method is None or method.user_id != user.id:
        raise ApiError(404, f"{user.username} has no contact method with id {method_id}")
    return method


def methods_out(user: User, rows: Sequence[ContactMethod]) -> list[ContactMethodOut]:
    return [
        ContactMethodOut(
            id=m.id,
            user=user.username,
            name=m.name,
            kind=m.kind,
            display=m.display,
            options=option_names((m.secret or {}).get("options")),
            enabled=m.enabled,
            verified_at=m.verified_at,
            created_at=m.created_at,
        )
        for m in rows
    ]


def rules_out(session: Session, user: User, rows: Sequence[NotificationRule]) -> list[Any]:
    wanted = {r.contact_method_id for r in rows}
    names = {
        row.id: row.name
        for row in session.execute(
            sa.select(ContactMethod.id, ContactMethod.name).where(ContactMethod.id.in_(wanted))
        )
    }
    return [
        NotificationRuleOut(
            id=r.id,
            user=user.username,
            urgency=r.urgency,
            delay_minutes=r.delay_minutes,
            contact_method=names.get(r.contact_method_id, ""),
        )
        for r in rows
    ]


def _name_free(session: Session, user: User, name: str, exclude_id: int | None = None) -> None:
    stmt = sa.select(ContactMethod.id).where(
        ContactMethod.user_id == user.id, ContactMethod.name == name
    )
    if exclude_id is not None:
        stmt = stmt.where(ContactMethod.id != exclude_id)
    if session.scalars(stmt.limit(1)).first() is not None:
        raise ApiError(409, f"{user.username} already has a contact method named {name!r}")


# ---- contact methods ------------------------------------------------------------------------


@router.get("/contact-methods", response_model=Page[ContactMethodOut])
def list_contact_methods(
    username: UsernamePath,
    principal: Principal = Reader,
    session: Session = DbRead,
    page: PageParams = Pages,
) -> Any:
    user = _user(session, principal, username)
    stmt = sa.select(ContactMethod).where(ContactMethod.user_id == user.id)
    rows, cursor = fetch_page(session, stmt, [ContactMethod.id], page, descending=False)
    return Page[ContactMethodOut](items=methods_out(user, rows), next_cursor=cursor)


@router.get("/contact-methods/{method_id}", response_model=ContactMethodOut)
def get_contact_method(
    username: UsernamePath,
    method_id: IdPath,
    principal: Principal = Reader,
    session: Session = DbRead,
) -> Any:
    user = _user(session, principal, username)
    return methods_out(user, [_method(session, user, method_id)])[0]


@router.post(
    "/contact-methods",
    response_model=ContactMethodOut,
    status_code=201,
    responses=error_responses(409),
)
def create_contact_method(
    username: UsernamePath,
    body: ContactMethodCreate,
    principal: Principal = Reader,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    user = _user(session, principal, username)
    shown = _checked(body.kind, body.address, body.options)
    _name_free(session, user, body.name)
    method = ContactMethod(
        user_id=user.id,
        name=body.name,
        kind=body.kind,
        secret={"address": body.address, "options": body.options},
        display=shown,
        enabled=body.enabled,
        created_at=runtime.clock.now(),
    )
    session.add(method)
    orgs.flush_or_conflict(
        session, f"{user.username} already has a contact method named {body.name!r}"
    )
    return methods_out(user, [method])[0]


@router.patch(
    "/contact-methods/{method_id}",
    response_model=ContactMethodOut,
    responses=error_responses(409),
)
def update_contact_method(
    username: UsernamePath,
    method_id: IdPath,
    body: ContactMethodUpdate,
    principal: Principal = Reader,
    session: Session = Db,
) -> Any:
    user = _user(session, principal, username)
    method = _method(session, user, method_id)
    changes = body.changes()
    if "name" in changes:
        _name_free(session, user, changes["name"], exclude_id=method.id)
        method.name = changes["name"]
    if "address" in changes or "options" in changes:
        stored = dict(method.secret or {})
        address = changes.get("address", stored.get("address", ""))
        options = changes.get("options", stored.get("options") or {})
        method.display = _checked(method.kind, address, options)
        method.secret = {"address": address, "options": options}
        # Where a page goes changed: the last test no longer says anything about it.
        method.verified_at = None
    if "enabled" in changes:
        method.enabled = changes["enabled"]
    orgs.flush_or_conflict(
        session, f"{user.username} already has a contact method named {method.name!r}"
    )
    return methods_out(user, [method])[0]


@router.delete("/contact-methods/{method_id}", status_code=204)
def delete_contact_method(
    username: UsernamePath,
    method_id: IdPath,
    principal: Principal = Reader,
    session: Session = Db,
) -> Response:
    """Its notification rules go with it."""
    user = _user(session, principal, username)
    method = _method(session, user, method_id)
    session.execute(
        sa.delete(NotificationRule).where(NotificationRule.contact_method_id == method.id)
    )
    session.delete(method)
    session.flush()
    return Response(status_code=204)


@router.post(
    "/contact-methods/{method_id}/test", response_model=TestNotificationOut, status_code=202
)
def test_contact_method(
    username: UsernamePath,
    method_id: IdPath,
    principal: Principal = Reader,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    """Queue a test message to the contact method, even a disabled one (to check it before
    enabling it); a successful send marks it verified."""
    user = _user(session, principal, username)
    method = _method(session, user, method_id)
    notification = pages.send_test(
        session, contact_method=method, now=runtime.clock.now(), actor=principal.actor
    )
    session.flush()
    return TestNotificationOut(
        id=notification.id,
        contact_method=method.name,
        state=notification.state,
        due_at=notification.due_at,
    )


# ---- settings ------------------------------------------------------------------------------


@router.get(
    "/notification-settings", response_model=NotificationSettings, tags=["notification rules"]
)
def get_settings(
    username: UsernamePath, principal: Principal = Reader, session: Session = DbRead
) -> Any:
    user = _user(session, principal, username)
    return NotificationSettings(handoff_notice_minutes=user.handoff_notice_minutes)


@router.patch(
    "/notification-settings", response_model=NotificationSettings, tags=["notification rules"]
)
def update_settings(
    username: UsernamePath,
    body: NotificationSettingsUpdate,
    principal: Principal = Reader,
    session: Session = Db,
) -> Any:
    """When the configuration files list the user, the next apply sets these from the files."""
    user = _user(session, principal, username)
    if "handoff_notice_minutes" in body.changes():
        user.handoff_notice_minutes = body.handoff_notice_minutes
    session.flush()
    return NotificationSettings(handoff_notice_minutes=user.handoff_notice_minutes)


# ---- notification rules --------------------------------------------------------------------


@router.get(
    "/notification-rules", response_model=Page[NotificationRuleOut], tags=["notification rules"]
)
def list_rules(
    username: UsernamePath,
    principal: Principal = Reader,
    session: Session = DbRead,
    page: PageParams = Pages,
) -> Any:
    """By urgency, then delay."""
    user = _user(session, principal, username)
    stmt = sa.select(NotificationRule).where(NotificationRule.user_id == user.id)
    rows, cursor = fetch_page(
        session,
        stmt,
        [NotificationRule.urgency, NotificationRule.delay_minutes, NotificationRule.id],
        page,
        descending=False,
    )
    return Page[NotificationRuleOut](items=rules_out(session, user, rows), next_cursor=cursor)


@router.post(
    "/notification-rules",
    response_model=NotificationRuleOut,
    status_code=201,
    tags=["notification rules"],
    responses=error_responses(409),
)
def create_rule(
    username: UsernamePath,
    body: NotificationRuleCreate,
    principal: Principal = Reader,
    session: Session = Db,
) -> Any:
    """One rule: for pages of this urgency, after this delay, by this contact method."""
    user = _user(session, principal, username)
    method = session.scalars(
        sa.select(ContactMethod).where(
            ContactMethod.user_id == user.id, ContactMethod.name == body.contact_method
        )
    ).one_or_none()
    if method is None:
        raise ApiError(404, f"{user.username} has no contact method named {body.contact_method!r}")
    duplicate = session.scalars(
        sa.select(NotificationRule.id).where(
            NotificationRule.user_id == user.id,
            NotificationRule.urgency == body.urgency,
            NotificationRule.contact_method_id == method.id,
            NotificationRule.delay_minutes == body.delay_minutes,
        )
    ).first()
    message = (
        f"{user.username} already has this rule ({body.urgency}, {body.delay_minutes} min, "
        f"{method.name})"
    )
    if duplicate is not None:
        raise ApiError(409, message)
    rule = NotificationRule(
        user_id=user.id,
        urgency=body.urgency,
        delay_minutes=body.delay_minutes,
        contact_method_id=method.id,
    )
    session.add(rule)
    orgs.flush_or_conflict(session, message)
    return rules_out(session, user, [rule])[0]


@router.delete("/notification-rules/{rule_id}", status_code=204, tags=["notification rules"])
def delete_rule(
    username: UsernamePath,
    rule_id: IdPath,
    principal: Principal = Reader,
    session: Session = Db,
) -> Response:
    user = _user(session, principal, username)
    rule = session.get(NotificationRule, rule_id)
    if rule is None or rule.user_id != user.id:
        raise ApiError(404, f"{user.username} has no notification rule with id {rule_id}")
    session.delete(rule)
    session.flush()
    return Response(status_code=204)
