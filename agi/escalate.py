"""``agi://host/escalate``: an operator pressed the escalation feature code (手上げ).

Called by dialplan/escalation.conf on the operator's channel as
``AGI(agi://host/escalate,<reason>,<caller channel>,<linkedid>)`` just before the dialplan
moves the caller to the supervisors; it only records who escalated which call and why.  The
move itself does not depend on this route, so the service being down never blocks an
escalation (the ledger still sees ``ESCALATED``/``ESCALATION_REASON`` on the caller).
"""

from __future__ import annotations

import structlog

from agi.context import AgiContext
from agi.identifiers import ACCOUNT, CHANNEL, UNIQUEID, valid
from agi.server import AgiRequest
from service.callbacks.escalation import REASONS, FeatureCodeEscalation
from service.ledger.machine import agent_id
from service.logs import get_logger
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)

async def escalate(request: AgiRequest) -> None:
    headers = request.headers
    context: AgiContext = request.state
    reason = headers.get("agi_arg_1", "")
    linkedid = valid(UNIQUEID, headers.get("agi_arg_3"))
    client = valid(ACCOUNT, headers.get("agi_accountcode"))
    operator = agent_id(headers.get("agi_channel")) or "?"
    structlog.contextvars.bind_contextvars(operator=operator, linkedid=linkedid, client=client)
    if reason not in REASONS:
        log.warning("escalate_unknown_reason")
        reason = "other"
    structlog.contextvars.bind_contextvars(reason=reason)
    escalation = FeatureCodeEscalation(
        operator=operator, reason=reason,
        caller_channel=valid(CHANNEL, headers.get("agi_arg_2")) or "?",
        linkedid=linkedid, client=client, pbx_host=request.peer_host)
    if context.record_escalation is not None:
        try:
            await context.record_escalation(escalation)
        except TRANSIENT_ERRORS as exc:
            # The caller is moved anyway; the ledger still shows the escalation.
            log.error("escalation_not_recorded", error=str(exc) or type(exc).__name__)
            return
    log.info("escalation_requested")
