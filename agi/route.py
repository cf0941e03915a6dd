"""``agi://host/route``: where an incoming call goes.

Called by the dialplan as ``AGI(agi://host:port/route,${EXTEN})`` on the caller's channel.
Reads the DID and the caller ID, asks the routing policy, and answers with the channel
variables of agi/variables.py.  With no routing data loaded it sets nothing, and the dialplan's
static fallback queues the call.

The variables are set in one round trip, ``EXEC MSet "A=1,B=2,..."`` (Asterisk's MSet sets
each as Set would, with a VarSet event each), instead of one ``SET VARIABLE`` per variable:
a dozen fewer round trips per call for Asterisk and for us.  If MSet is refused, each
variable is set on its own.
"""

from __future__ import annotations

import asyncio

import structlog

from agi.context import AgiContext
from agi.protocol import mset_data, quote
from agi.server import AgiRequest
from service.logs import get_logger
from service.phone import to_e164
from service.routing.policy import decide, is_open, repeat_applies
from service.routing.repeat import RepeatHistory
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)

_LOOKUP_FAILURES: tuple[type[Exception], ...] = (TimeoutError, *TRANSIENT_ERRORS)


async def route(request: AgiRequest) -> None:
    headers = request.headers
    context: AgiContext = request.state
    did = headers.get("agi_arg_1") or headers.get("agi_extension", "")
    caller = headers.get("agi_callerid")
    uniqueid = headers.get("agi_uniqueid")
    structlog.contextvars.bind_contextvars(did=did, caller=caller)
    directory = context.routing.directory
    if directory is None:
        log.error("route_no_routing_data")  # the dialplan's fallback takes the call
        return
    now = context.clock()
    client = directory.client_for(did)
    history: RepeatHistory | None = None
    flags: tuple[str, ...] = ()
    opening = is_open(client, now) if client is not None else None
    if client is not None and opening is not None and opening[0] and \
            repeat_applies(client, caller):
        e164 = to_e164(caller)
        assert e164 is not None
        try:
            async with asyncio.timeout(context.repeat_timeout_s):
                history = await context.repeat_lookup(client.code, e164, now,
                                                      client.repeat.window_s, uniqueid)
        except _LOOKUP_FAILURES as exc:
            flags = ("repeat_check_unavailable",)
            log.warning("route_repeat_check_unavailable", error=type(exc).__name__)
    decision = decide(directory, did, caller, now, history, flags=flags, opening=opening)
    structlog.contextvars.bind_contextvars(client=decision.client)
    pairs = decision.variables()
    reply = await request.send_command(f"EXEC MSet {quote(mset_data(pairs))}")
    if reply.code != 200 or reply.result != "0":
        log.warning("route_mset_refused", reply=reply.text)
        for name, value in pairs:
            single = await request.set_variable(name, value)
            if not single.ok:
                log.warning("route_variable_refused", variable=name, reply=single.text)
    # Every decision is in the ledger (VarSet events); the log line is for debugging.
    log.debug("routed", action=decision.action, queue=decision.queue,
              escalated=decision.escalated, flags=",".join(decision.flags))
