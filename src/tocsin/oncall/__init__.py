"""On-call schedules: who is on call when, rendered from layered rotations and overrides."""

from tocsin.oncall.rendering import (
    OVERRIDE,
    LayerSpec,
    Override,
    Restriction,
    RotationUnit,
    ScheduleSpec,
    Shift,
    UserId,
    gaps,
    on_call_at,
    render,
    render_layer,
    resolve_local,
)

__all__ = [
    "OVERRIDE",
    "LayerSpec",
    "Override",
    "Restriction",
    "RotationUnit",
    "ScheduleSpec",
    "Shift",
    "UserId",
    "gaps",
    "on_call_at",
    "render",
    "render_layer",
    "resolve_local",
]
