"""``agi://host/presence``: an operator's presence feature code (dialplan/presence.conf).

``AGI(agi://host/presence,<login|logout|pause|unpause>,<reason key>)`` on the operator's own
phone channel: the service makes the change over AMI (QueueAdd / QueueRemove / QueuePause with
the reason) and keeps the span; it answers ``PRESENCE_RESULT`` (ok | failed) so the dialplan
can say which.  The operator is the phone's extension, never a number typed in.
"""

from __future__ import annotations

import structlog

from agi.context import AgiContext
from agi.server import AgiRequest
from service.callflows.presence import ACTIONS, REASON_KEYS, PresenceError, change
from service.ledger.machine import agent_id
from service.logs import get_logger
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)

_FAILURES: tuple[type[Exception], ...] = (PresenceError, TimeoutError, *TRANSIENT_ERRORS)


async def presence(request: AgiRequest) -> None:
    headers = request.headers
    context: AgiContext = request.state
    action = headers.get("agi_arg_1", "")
    reason = REASON_KEYS.get(headers.get("agi_arg_2", ""), "other") if action == "pause" \
        else None
    operator = agent_id(headers.get("agi_channel")) or ""
    structlog.contextvars.bind_contextvars(operator=operator, action=action, reason=reason)
    flows = context.callflows
    result = "failed"
    if flows is None or action not in ACTIONS or not operator.isalnum():
        log.warning("presence_not_served")
    else:
        pbx = flows.pbx_for(request.peer_host)
        ami = flows.ami_of(pbx.pbx_id)
        try:
            if ami is None:
                raise PresenceError("no AMI session on this instance")
            async with flows.pool.acquire(timeout=2) as conn:
                await change(ami, conn, pbx, operator=operator, action=action, reason=reason,
                             queues=None, via="feature_code", at=flows.clock())
            result = "ok"
            log.info("presence_changed")
        except _FAILURES as exc:
            log.warning("presence_failed", error=str(exc) or type(exc).__name__)
    await request.set_variable("PRESENCE_RESULT", result)
