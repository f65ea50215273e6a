"""The on-call job handlers: escalation steps and the hand-off notice scan.

Imported wherever a Runtime runs (tocsin.runtime); importing it also registers the escalation
lifecycle hook (tocsin.oncall.escalation).
"""

from __future__ import annotations

from tocsin.engine.worker import JobContext, handler
from tocsin.oncall import escalation, handoff


@handler(escalation.STEP_JOB)
def escalation_step(ctx: JobContext) -> None:
    escalation.run_step(ctx.session, ctx.job.payload, ctx.clock.now())


@handler(handoff.HANDOFF_JOB)
def handoff_notices(ctx: JobContext) -> None:
    lookback = float(ctx.job.payload.get("lookback_seconds", handoff.LOOKBACK_SECONDS))
    handoff.send_handoff_notices(ctx.session, ctx.clock.now(), lookback_seconds=lookback)
