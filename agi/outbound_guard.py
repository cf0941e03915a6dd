"""``agi://host/outbound_guard``: may the operator's handset dial this number now?

Called by dialplan/outbound-guard.conf as
``AGI(agi://host/outbound_guard,<dialled number>,<client>)`` (the client is the phone's
``CHANNEL(accountcode)``) before the outbound context's ``Dial``.  Asks the same policy as
click-to-call (service.compliance: calling hours in the callee's time, contact limits,
do-not-call), which also records the decision, and answers with ``OUTBOUND_ALLOWED``,
``OUTBOUND_RULE`` and ``OUTBOUND_PROMPT``.

Fails closed: if the decision cannot be made *and recorded* (database down, no routing data,
a slow answer), the call is refused with the "cannot check" prompt; the dialplan refuses too
when this AGI cannot be reached at all.  See docs/compliance.md for why.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from agi import variables as v
from agi.context import AgiContext
from agi.identifiers import ACCOUNT, UNIQUEID, valid
from agi.protocol import mset_data, quote
from agi.server import AgiRequest
from service.clients.model import Client
from service.compliance.policy import OutboundDecision
from service.ledger.machine import agent_id
from service.logs import get_logger
from service.phone import mask
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)

_FAILURES: tuple[type[Exception], ...] = (TimeoutError, *TRANSIENT_ERRORS)

_NUMBER = re.compile(r"^\+?[0-9]{1,32}$")

PROMPTS = {
    "calling_hours": "orikaeshi/outbound-refused-hours",
    "max_attempts": "orikaeshi/outbound-refused-limit",
    "min_gap": "orikaeshi/outbound-refused-limit",
    "do_not_call": "orikaeshi/outbound-refused-dnc",
    "not_callable": "orikaeshi/outbound-guard-unavailable",
    "unavailable": "orikaeshi/outbound-guard-unavailable",
}
# The answer may not hold the operator long; past this the dial is refused (fail closed).
DECISION_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class HandsetDial:
    number: str
    client: Client | None
    client_code: str | None   # as the phone gave it, even when no such client is loaded
    operator: str
    uniqueid: str | None
    pbx_host: str | None
    placed_decision: int | None = None  # OUTBOUND_DECISION: click-to-call already decided


OutboundCheck = Callable[[HandsetDial, datetime], Awaitable[OutboundDecision]]


def _decision_id(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 19 else None


def answer(decision: OutboundDecision | None) -> list[tuple[str, str]]:
    """The variables for a decision (None: no decision could be made).

    >>> answer(None)
    [('OUTBOUND_ALLOWED', '0'), ('OUTBOUND_RULE', 'unavailable'), \
('OUTBOUND_PROMPT', 'orikaeshi/outbound-guard-unavailable')]
    """
    if decision is None:
        return [(v.OUTBOUND_ALLOWED, "0"), (v.OUTBOUND_RULE, "unavailable"),
                (v.OUTBOUND_PROMPT, PROMPTS["unavailable"])]
    return [(v.OUTBOUND_ALLOWED, "1" if decision.allowed else "0"),
            (v.OUTBOUND_RULE, decision.evidence_rule),
            (v.OUTBOUND_PROMPT, "" if decision.allowed else
             PROMPTS.get(decision.rule, PROMPTS["unavailable"]))]


async def outbound_guard(request: AgiRequest) -> None:
    headers = request.headers
    context: AgiContext = request.state
    number = headers.get("agi_arg_1", "").strip()
    code = headers.get("agi_arg_2") or headers.get("agi_accountcode") or ""
    code = valid(ACCOUNT, code) or ""
    operator = agent_id(headers.get("agi_channel")) or "?"
    structlog.contextvars.bind_contextvars(operator=operator, client=code or None,
                                           callee=mask(number))
    directory = context.routing.directory
    decision: OutboundDecision | None = None
    check = context.check_outbound
    if not _NUMBER.match(number):
        log.warning("outbound_guard_unreadable_number")
    elif check is None or directory is None:
        log.error("outbound_guard_unavailable", why="no routing data or no database")
    else:
        uniqueid = headers.get("agi_uniqueid", "")
        dial = HandsetDial(number=number, client=directory.clients.get(code) if code else None,
                           client_code=code or None, operator=operator,
                           uniqueid=valid(UNIQUEID, uniqueid),
                           pbx_host=request.peer_host,
                           placed_decision=_decision_id(headers.get("agi_arg_3", "")))
        try:
            async with asyncio.timeout(DECISION_TIMEOUT_S):
                decision = await check(dial, context.clock())
        except _FAILURES as exc:
            log.error("outbound_guard_unavailable", error=type(exc).__name__)
    pairs = answer(decision)
    reply = await request.send_command(f"EXEC MSet {quote(mset_data(pairs))}")
    if reply.code != 200 or reply.result != "0":
        for name, value in pairs:
            await request.set_variable(name, value)
