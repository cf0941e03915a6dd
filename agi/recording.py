"""``agi://host/recording``: a call of a client whose policy is "record every call" started
recording (dialplan/recording.conf ran MixMonitor); keep its row, so that the recording can
be found and played by those allowed.  ``AGI(agi://host/recording,<linkedid>)`` on the
caller's channel; the recording itself never waits for the service."""

from __future__ import annotations

import structlog

from agi.context import AgiContext
from agi.identifiers import ACCOUNT, UNIQUEID, valid
from agi.server import AgiRequest
from service.callflows.recordings import record_started
from service.logs import get_logger
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)


async def recording(request: AgiRequest) -> None:
    headers = request.headers
    context: AgiContext = request.state
    linkedid = valid(UNIQUEID, headers.get("agi_arg_1"))
    client = valid(ACCOUNT, headers.get("agi_accountcode"))
    structlog.contextvars.bind_contextvars(linkedid=linkedid, client=client)
    flows = context.callflows
    if flows is None or linkedid is None:
        log.warning("recording_not_recorded", why="no database here" if flows is None
                    else "no linkedid")
        return
    pbx = flows.pbx_for(request.peer_host)
    try:
        async with flows.pool.acquire(timeout=2) as conn:
            await record_started(conn, pbx_id=pbx.pbx_id, linkedid=linkedid, client=client,
                                 reason="policy", requested_by=None, at=flows.clock())
    except TRANSIENT_ERRORS as exc:
        # The file exists all the same; `orikaeshi` can list the spool to find it.
        log.error("recording_not_recorded", error=str(exc) or type(exc).__name__)
        return
    log.info("recording_started")
