"""Every top-level configuration key, in the order they are applied (referenced ones first)."""

from __future__ import annotations

from tocsin.config.sections.base import ExportNotes, Section
from tocsin.config.sections.policies import EscalationPoliciesSection
from tocsin.config.sections.schedules import SchedulesSection
from tocsin.config.sections.services import ServicesSection
from tocsin.config.sections.teams import TeamsSection
from tocsin.config.sections.users import UsersSection

SECTIONS: tuple[Section, ...] = (
    UsersSection(),
    TeamsSection(),
    SchedulesSection(),
    EscalationPoliciesSection(),
    ServicesSection(),
)

__all__ = ["SECTIONS", "ExportNotes", "Section"]
