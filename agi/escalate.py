"""``agi://host/escalate``: an operator pressed the escalation feature code (手上げ).

Called by dialplan/escalation.conf on the operator's channel as
``AGI(agi://host/escalate,<reason>,<caller channel>)`` just before the dialplan moves the
caller to the supervisors; it only records who escalated whom and why.  The move itself does
not depend on this route, so the service being down never blocks an escalation.
"""

from __future__ import annotations

import structlog

from agi.context import AgiContext
from agi.server import AgiRequest
from service.callbacks.escalation import REASONS
from service.ledger.machine import agent_id
from service.logs import get_logger

log = get_logger(__name__)


async def escalate(request: AgiRequest) -> None:
    headers = request.headers
    context: AgiContext = request.state
    reason = headers.get("agi_arg_1", "")
    caller_channel = headers.get("agi_arg_2", "")
    operator = agent_id(headers.get("agi_channel")) or "?"
    structlog.contextvars.bind_contextvars(operator=operator, reason=reason)
    if reason not in REASONS:
        log.warning("escalate_unknown_reason")
        reason = "other"
    if context.record_escalation is not None:
        await context.record_escalation(operator, reason, caller_channel)
    log.info("escalation_requested", caller_channel=caller_channel)
