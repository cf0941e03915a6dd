"""``agi://host/safetynet``: no supervisor answered an escalated caller.

Called by dialplan/safetynet.conf on the caller's channel as
``AGI(agi://host/safetynet,<QUEUESTATUS of the supervisors' queue>,<linkedid>)`` just before
the dialplan puts the caller back at the head of the client's operators' queue.  It raises the
wallboard alert (``callflow_alerts`` kind ``safety_net`` and the live stream).  The move does
not depend on it: the service being down never keeps the caller from an operator.
"""

from __future__ import annotations

import structlog

from agi.context import AgiContext
from agi.identifiers import ACCOUNT, UNIQUEID, valid
from agi.server import AgiRequest
from service.callflows.alerts import raise_alert
from service.logs import get_logger
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)

STATUSES = ("TIMEOUT", "FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL")


async def safetynet(request: AgiRequest) -> None:
    headers = request.headers
    context: AgiContext = request.state
    status = headers.get("agi_arg_1", "")
    linkedid = valid(UNIQUEID, headers.get("agi_arg_2"))
    client = valid(ACCOUNT, headers.get("agi_accountcode"))
    structlog.contextvars.bind_contextvars(linkedid=linkedid, client=client, status=status)
    if status not in STATUSES:
        status = "other"
    flows = context.callflows
    if flows is None:
        log.warning("safety_net_not_recorded", why="no database here")
        return
    pbx = flows.pbx_for(request.peer_host)
    detail = {"supervisor_queue_status": status,
              "reason": headers.get("agi_arg_3", "")[:40] or "escalated",
              "home_queue": headers.get("agi_arg_4", "")[:80]}
    try:
        async with flows.pool.acquire(timeout=2) as conn:
            await raise_alert(conn, kind="safety_net", pbx_id=pbx.pbx_id, linkedid=linkedid,
                              client=client, detail=detail, at=flows.clock())
    except TRANSIENT_ERRORS as exc:
        log.error("safety_net_not_recorded", error=str(exc) or type(exc).__name__)
        return
    log.warning("safety_net_no_supervisor")
