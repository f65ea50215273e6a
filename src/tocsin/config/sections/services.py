"""services: what can break, who owns it, how its alerts group, and the integrations feeding it.

Internal services (Tocsin's own, ``Service.internal``) are never touched, pruned or exported.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, TypeAdapter
from sqlalchemy.orm import Session

from tocsin.config.located import Locator
from tocsin.config.models import (
    AlertmanagerIntegration,
    AlertmanagerOptions,
    BasicAuth,
    BearerAuth,
    Grouping,
    IntegrationSpec,
    OrgConfig,
    PagerDutyIntegration,
    RequestAuth,
    ServiceSpec,
    WebhookIntegration,
    WebhookOptions,
)
from tocsin.config.plan import (
    NEW_SECRET_SHOWN,
    SECRET_SHOWN,
    Change,
    Context,
    FieldChange,
    create_or_update,
    diff_fields,
)
from tocsin.config.problems import Problem
from tocsin.config.secrets import placeholder_env, redact, resolve_auth
from tocsin.config.sections.base import ExportNotes
from tocsin.config.sections.owner import slug_of, team_id, team_slugs, unknown_team
from tocsin.incidents.models import Incident
from tocsin.oncall.definitions import SupportHours
from tocsin.orgs.models import Integration, Service

_grouping = TypeAdapter[Any](Grouping)


def _service_desired(spec: ServiceSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "team": spec.team,
        "escalation_policy": spec.escalation_policy,
        "urgency": spec.urgency,
        "auto_resolve_seconds": spec.auto_resolve_seconds,
        "ack_timeout_seconds": spec.ack_timeout_seconds,
        "grouping": spec.grouping.model_dump(mode="json", exclude_none=True),
        "support_hours": spec.support_hours.stored() if spec.support_hours else None,
    }


def _service_current(row: Service, teams: dict[int, str]) -> dict[str, Any]:
    return {
        "name": row.name,
        "description": row.description,
        "team": slug_of(teams, row.team_id),
        "escalation_policy": row.escalation_policy,
        "urgency": row.urgency,
        "auto_resolve_seconds": row.auto_resolve_seconds,
        "ack_timeout_seconds": row.ack_timeout_seconds,
        "grouping": row.grouping,
        "support_hours": _stored_hours(row.support_hours),
    }


def _stored_hours(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Stored support hours in the files' key order (JSONB keeps its own), for plans."""
    if value is None:
        return None
    try:
        return SupportHours.model_validate(value).stored()
    except ValueError:
        return value


def _options_diff(current: dict[str, Any], desired: dict[str, Any]) -> list[FieldChange]:
    out: list[FieldChange] = []
    for key in sorted(set(current) | set(desired)):
        old, new = current.get(key), desired.get(key)
        if old == new:
            continue
        shown_old, shown_new = redact(old), redact(new)
        if shown_old == shown_new:  # only a secret differs
            shown_old, shown_new = SECRET_SHOWN, NEW_SECRET_SHOWN
        out.append(FieldChange(f"options.{key}", shown_old, shown_new))
    return out


class ServicesSection:
    key = "services"
    kind = "service"
    id_field = "slug"

    def identity(self, item: Any) -> str:
        spec: ServiceSpec = item
        return spec.slug

    # --- checks without a database -------------------------------------------------------

    def check(self, config: OrgConfig, at: Locator) -> list[Problem]:
        problems: list[Problem] = []
        teams = {t.slug for t in config.teams}
        policies = {p.slug for p in config.escalation_policies}
        keys: dict[str, str] = {}
        for index, service in enumerate(config.services):
            problems += unknown_team(at, self.key, index, service.team, teams)
            if service.escalation_policy is not None and service.escalation_policy not in policies:
                problems.append(
                    at.problem(
                        "services",
                        index,
                        ("escalation_policy",),
                        f"unknown escalation policy {service.escalation_policy!r}: no file "
                        "lists it under 'escalation_policies'",
                    )
                )
            names: set[str] = set()
            for position, integration in enumerate(service.integrations):
                if integration.name in names:
                    problems.append(
                        at.problem(
                            "services",
                            index,
                            ("integrations", position, "name"),
                            f"duplicate integration name {integration.name!r} in this service",
                        )
                    )
                names.add(integration.name)
                if integration.key is None:
                    continue
                here = f"{service.slug}/{integration.name}"
                if integration.key in keys:
                    problems.append(
                        at.problem(
                            "services",
                            index,
                            ("integrations", position, "key"),
                            f"duplicate integration key: {keys[integration.key]} uses it too",
                        )
                    )
                else:
                    keys[integration.key] = here
        return problems

    # --- plan ----------------------------------------------------------------------------

    def plan(self, session: Session, config: OrgConfig, ctx: Context) -> list[Change]:
        rows = {s.slug: s for s in session.scalars(sa.select(Service))}
        teams = team_slugs(session)
        by_service: dict[int, dict[str, Integration]] = {}
        for integ in session.scalars(sa.select(Integration)):
            by_service.setdefault(integ.service_id, {})[integ.name] = integ

        changes, deleted_services, deleted_integrations = self._plan_prune(
            session, config, ctx, rows, by_service
        )
        key_owner = self._keys_that_stay(
            config, rows, by_service, deleted_services, deleted_integrations
        )
        integration_changes: list[Change] = []
        for index, spec in enumerate(config.services):
            row = rows.get(spec.slug)
            if row is not None and row.internal:
                ctx.problems.append(
                    ctx.at.problem(
                        "services", index, ("slug",), f"{spec.slug!r} is reserved for Tocsin itself"
                    )
                )
                continue
            desired = _service_desired(spec)
            current = _service_current(row, teams) if row is not None else {}
            changes += create_or_update(
                "service",
                spec.slug,
                diff_fields(current, desired),
                target_id=row.id if row is not None else None,
                desired=desired,
            )
            existing = by_service.get(row.id, {}) if row is not None else {}
            for position, integ_spec in enumerate(spec.integrations):
                change = self._plan_integration(
                    ctx, index, position, spec.slug, integ_spec, existing.get(integ_spec.name)
                )
                if integ_spec.key is not None:
                    owner = key_owner.get(integ_spec.key)
                    if owner is not None and owner != f"{spec.slug}/{integ_spec.name}":
                        ctx.problems.append(
                            ctx.at.problem(
                                "services",
                                index,
                                ("integrations", position, "key"),
                                f"this key already belongs to integration {owner}",
                            )
                        )
                if change is not None:
                    integration_changes.append(change)
        return changes + integration_changes

    def _plan_prune(
        self,
        session: Session,
        config: OrgConfig,
        ctx: Context,
        rows: dict[str, Service],
        by_service: dict[int, dict[str, Integration]],
    ) -> tuple[list[Change], set[int], set[int]]:
        """Deletions of services and integrations the files leave out (only with prune)."""
        changes: list[Change] = []
        deleted_services: set[int] = set()
        deleted_integrations: set[int] = set()
        if not ctx.prune:
            return changes, deleted_services, deleted_integrations
        wanted = {s.slug: s for s in config.services}
        for slug, row in sorted(rows.items()):
            if row.internal or slug in wanted:
                continue
            deleted_services.add(row.id)
            note = self._delete_note(session, row, by_service.get(row.id, {}))
            changes.append(Change("service", "delete", slug, note=note, target_id=row.id))
        for slug, spec in wanted.items():
            kept = rows.get(slug)
            if kept is None or kept.internal:
                continue
            names = {i.name for i in spec.integrations}
            for name, integ in sorted(by_service.get(kept.id, {}).items()):
                if name not in names and integ.type != "internal":
                    deleted_integrations.add(integ.id)
                    changes.append(
                        Change("integration", "delete", f"{slug}/{name}", target_id=integ.id)
                    )
        return changes, deleted_services, deleted_integrations

    @staticmethod
    def _delete_note(session: Session, row: Service, integrations: dict[str, Integration]) -> str:
        incidents = session.scalar(
            sa.select(sa.func.count()).select_from(Incident).where(Incident.service_id == row.id)
        )
        parts = [f"{len(integrations)} integration(s)"]
        if incidents:
            parts.append(f"{incidents} incident(s) and their alerts")
        return "also deletes its " + " and ".join(parts)

    @staticmethod
    def _keys_that_stay(
        config: OrgConfig,
        rows: dict[str, Service],
        by_service: dict[int, dict[str, Integration]],
        deleted_services: set[int],
        deleted_integrations: set[int],
    ) -> dict[str, str]:
        """Integration key -> owner, for keys still in use after this apply, except the ones the
        files set explicitly (those are checked against this map)."""
        explicit = {
            (s.slug, i.name) for s in config.services for i in s.integrations if i.key is not None
        }
        slug_of = {row.id: slug for slug, row in rows.items()}
        owners: dict[str, str] = {}
        for service_id, integrations in by_service.items():
            if service_id in deleted_services:
                continue
            for name, integ in integrations.items():
                if integ.id in deleted_integrations or (slug_of[service_id], name) in explicit:
                    continue
                owners[integ.key] = f"{slug_of[service_id]}/{name}"
        return owners

    def _plan_integration(
        self,
        ctx: Context,
        service_index: int,
        position: int,
        service: str,
        spec: IntegrationSpec,
        row: Integration | None,
    ) -> Change | None:
        name = f"{service}/{spec.name}"
        current_options = dict(row.options or {}) if row is not None else {}
        options = self._desired_options(ctx, service_index, position, name, spec, current_options)
        if options is None:
            return None
        desired: dict[str, Any] = {
            "service": service,
            "name": spec.name,
            "type": spec.type,
            "key": spec.key,
            "options": options,
        }
        if row is None:
            fields = [
                FieldChange("type", None, spec.type),
                FieldChange("key", None, "(from file)" if spec.key else "(generated)"),
                *_options_diff({}, options),
            ]
            return Change("integration", "create", name, tuple(fields), desired=desired)
        fields = []
        if row.type != spec.type:
            fields.append(FieldChange("type", row.type, spec.type))
        if spec.key is not None and row.key != spec.key:
            fields.append(FieldChange("key", SECRET_SHOWN, NEW_SECRET_SHOWN))
        fields.extend(_options_diff(current_options, options))
        if not fields:
            return None
        return Change(
            "integration", "update", name, tuple(fields), target_id=row.id, desired=desired
        )

    @staticmethod
    def _desired_options(
        ctx: Context,
        service_index: int,
        position: int,
        name: str,
        spec: IntegrationSpec,
        current: dict[str, Any],
    ) -> dict[str, Any] | None:
        if isinstance(spec, PagerDutyIntegration):
            return {}
        options = spec.options.model_dump(mode="json", exclude_defaults=True, exclude={"auth"})
        if spec.options.auth is None:
            return options
        resolved = resolve_auth(spec.options.auth, current.get("auth"), ctx.env)
        loc = ("integrations", position, "options", "auth")
        if resolved.stored is None:
            ctx.problems.append(
                ctx.at.problem(
                    "services",
                    service_index,
                    loc,
                    f"environment variable {resolved.missing_env} is not set; it must hold the "
                    f"secret for {name}",
                )
            )
            return None
        if resolved.kept:
            ctx.warnings.append(
                ctx.at.problem(
                    "services",
                    service_index,
                    loc,
                    f"{resolved.missing_env} is not set; keeping the stored secret of {name}",
                    warning=True,
                )
            )
        return {**options, "auth": resolved.stored}

    # --- apply ---------------------------------------------------------------------------

    def execute(self, session: Session, change: Change, ctx: Context) -> None:
        if change.kind == "integration":
            self._execute_integration(session, change, ctx)
            return
        if change.action == "delete":
            session.delete(session.get_one(Service, change.target_id))
            return
        values = dict(change.desired)
        team = values.pop("team")
        values["team_id"] = team_id(session, team)
        if change.action == "create":
            session.add(Service(slug=change.name, created_at=ctx.now, **values))
        else:
            row = session.get_one(Service, change.target_id)
            for key, value in values.items():
                setattr(row, key, value)

    @staticmethod
    def _execute_integration(session: Session, change: Change, ctx: Context) -> None:
        if change.action == "delete":
            session.delete(session.get_one(Integration, change.target_id))
            return
        desired = change.desired
        if change.action == "create":
            service_id = session.scalars(
                sa.select(Service.id).where(Service.slug == desired["service"])
            ).one()
            session.add(
                Integration(
                    service_id=service_id,
                    name=desired["name"],
                    type=desired["type"],
                    key=desired["key"] or ctx.new_key(),
                    options=desired["options"],
                    created_at=ctx.now,
                )
            )
            return
        row = session.get_one(Integration, change.target_id)
        row.type = desired["type"]
        row.options = desired["options"]
        if desired["key"] is not None:
            row.key = desired["key"]

    # --- export --------------------------------------------------------------------------

    def export(self, session: Session, notes: ExportNotes) -> list[BaseModel]:
        teams = team_slugs(session)
        out: list[BaseModel] = []
        services = session.scalars(
            sa.select(Service).where(Service.internal.is_(False)).order_by(Service.slug)
        )
        for row in services:
            integrations = session.scalars(
                sa.select(Integration)
                .where(Integration.service_id == row.id, Integration.type != "internal")
                .order_by(Integration.name)
            )
            values = _service_current(row, teams)
            values["grouping"] = _grouping.validate_python(row.grouping or {"type": "none"})
            if row.support_hours is not None:
                values["support_hours"] = SupportHours.model_validate(row.support_hours)
            out.append(
                ServiceSpec(
                    slug=row.slug,
                    **values,
                    integrations=[
                        self._export_integration(row.slug, i, notes) for i in integrations
                    ],
                )
            )
        return out

    @staticmethod
    def _export_integration(service: str, row: Integration, notes: ExportNotes) -> BaseModel:
        options = dict(row.options or {})
        stored_auth = options.pop("auth", None)
        auth = _export_auth(service, row.name, stored_auth, notes)
        if row.type == "webhook":
            return WebhookIntegration(
                name=row.name,
                type="webhook",
                key=row.key,
                options=WebhookOptions.model_validate({**options, "auth": auth}),
            )
        if row.type == "alertmanager":
            return AlertmanagerIntegration(
                name=row.name,
                type="alertmanager",
                key=row.key,
                options=AlertmanagerOptions.model_validate({**options, "auth": auth}),
            )
        return PagerDutyIntegration(name=row.name, type="pagerduty", key=row.key)


def _export_auth(
    service: str, integration: str, stored: Any, notes: ExportNotes
) -> RequestAuth | None:
    """A hashed secret cannot be exported: name a variable instead, and say so next to it."""
    if not isinstance(stored, dict):
        return None
    auth: RequestAuth
    if stored.get("type") == "bearer":
        var = placeholder_env(service, integration, "token")
        auth = BearerAuth(type="bearer", token_env=var)
    elif stored.get("type") == "basic":
        var = placeholder_env(service, integration, "password")
        auth = BasicAuth(type="basic", username=stored.get("username", ""), password_env=var)
    else:
        return None
    notes.comment(
        var,
        "stored only as a SHA-256 hash, so it cannot be exported: set this variable to "
        "change the secret; while it is unset, apply keeps the stored one",
    )
    return auth
