"""``agi://host/handraise``: 手上げ with hold, from the phones (service/callflows/handraise.py).

* ``AGI(agi://host/handraise,hold,${BRIDGEPEER},${CHANNEL(linkedid)})`` on the operator's
  channel (feature code ``*8``, dialplan/handraise.conf): records the handraise, raises the
  wallboard alert and sets ``HANDRAISE_ID``; the dialplan then moves the caller to hold.
  Without it (service down) the dialplan escalates the caller the old way (supervisors'
  queue): an operator asking for help is never ignored.
* ``AGI(agi://host/handraise,ring,<id>)`` on the caller's channel, on hold: rings the
  operator's and the supervisors' phones into the consult room.
* ``AGI(agi://host/handraise,joined,<id>)`` on a phone that answered that ring
  (``joined,<id>,listen`` for a supervisor rung to listen, muted: ``POST
  /api/handraise/<id>/listen``).
"""

from __future__ import annotations

import dataclasses

import structlog

from agi.context import AgiContext
from agi.identifiers import ACCOUNT, CHANNEL, UNIQUEID, valid
from agi.server import AgiRequest
from service.ami.adapter import AmiError
from service.callflows.handraise import HandraiseError, HoldRequest, joined, open_hold, ring_helpers
from service.ledger.machine import agent_id
from service.logs import get_logger
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)

_FAILURES: tuple[type[Exception], ...] = (HandraiseError, AmiError, TimeoutError,
                                          *TRANSIENT_ERRORS)


async def handraise(request: AgiRequest) -> None:
    headers = request.headers
    context: AgiContext = request.state
    step = headers.get("agi_arg_1", "")
    flows = context.callflows
    channel = valid(CHANNEL, headers.get("agi_channel"))
    who = agent_id(headers.get("agi_channel")) or "?"
    structlog.contextvars.bind_contextvars(step=step, who=who)
    if flows is None or channel is None:
        log.warning("handraise_not_served", why="no database here" if flows is None
                    else "unreadable channel")
        return
    pbx = flows.pbx_for(request.peer_host)
    try:
        if step == "hold":
            caller = valid(CHANNEL, headers.get("agi_arg_2"))
            if caller is None:
                log.warning("handraise_not_served", why="no caller")
                return
            hold = HoldRequest(pbx_id=pbx.pbx_id, linkedid=valid(UNIQUEID,
                                                                 headers.get("agi_arg_3")),
                               client=valid(ACCOUNT, headers.get("agi_accountcode")),
                               operator=who, caller_channel=caller, via="feature_code",
                               requested_by=who)
            async with flows.pool.acquire(timeout=2) as conn:
                if hold.client is None and hold.linkedid is not None:
                    # An operator's Local channel has no account code; the call has.
                    hold = dataclasses.replace(hold, client=await conn.fetchval(
                        "SELECT client FROM calls WHERE pbx_id = $1 AND linkedid = $2",
                        pbx.pbx_id, hold.linkedid))
                handraise_id = await open_hold(conn, hold, flows.clock())
            await request.set_variable("HANDRAISE_ID", handraise_id)
            log.info("handraise_hold", handraise=handraise_id)
        elif step in ("ring", "joined"):
            text = headers.get("agi_arg_2", "")
            if not text.isdigit():
                log.warning("handraise_id_unreadable")
                return
            async with flows.pool.acquire(timeout=2) as conn:
                if step == "ring":
                    ami = flows.ami_of(pbx.pbx_id)
                    if ami is None:
                        log.warning("handraise_not_rung", why="no AMI session here")
                        return
                    rung = await ring_helpers(ami, conn, pbx, int(text), flows.clock())
                    log.info("handraise_rung", handraise=int(text), phones=",".join(rung))
                else:
                    mode = "listen" if headers.get("agi_arg_3") == "listen" else ""
                    role = await joined(conn, int(text), who, channel, flows.clock(), mode)
                    log.info("handraise_joined", handraise=int(text), role=role)
        else:
            log.warning("handraise_unknown_step")
    except _FAILURES as exc:
        log.error("handraise_failed", error=str(exc) or type(exc).__name__)
