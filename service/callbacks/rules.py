"""Call-back rules.  Pure: what an ended call means for the client's obligations.

* A missed inbound call (any missed outcome but ``unknown``, which waits for reconciliation;
  a forward to the client's own phone that nobody answered is missed too) with a usable
  number opens an obligation to call back, or joins the open one for the same (client,
  number).  Without a usable number it is recorded as "cannot call back".
* An answered inbound call fulfils nothing: the caller still waits for the client.
* An outbound call to the number, for that client, after the obligation opened, is an
  attempt; answered, it fulfils the obligation, *verified* (seen on the PBX).  A client
  saying "done" fulfils it *reported*; the two are never confused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from service.ledger.model import MISSED

CALLBACK_OUTCOMES = MISSED - {"unknown"}


@dataclass(frozen=True)
class EndedCall:
    pbx_id: str
    linkedid: str
    direction: str
    client: str | None
    started_at: datetime
    answered_at: datetime | None
    outcome: str | None
    forward_answered: bool | None
    caller_e164: str | None
    caller_number: str | None
    callee_e164: str | None
    dial_result: str | None
    placed_by: str | None


def is_missed(call: EndedCall) -> bool:
    """Nobody took the call: what the outcome says, or a forward known to be unanswered
    (an unknown forward result is not assumed missed: the client's phone may have rung)."""
    if call.outcome == "forwarded":
        return call.forward_answered is False
    return call.outcome in CALLBACK_OUTCOMES


def inbound_effect(call: EndedCall) -> str | None:
    """``open`` (or join), ``cannot_call_back``, or None (nothing owed)."""
    if call.direction != "inbound" or call.client is None or not is_missed(call):
        return None
    return "open" if call.caller_e164 else "cannot_call_back"


def outbound_attempt(call: EndedCall) -> tuple[str, bool] | None:
    """(result, fulfils) for a call-back attempt, or None when it is not one."""
    if call.direction != "outbound" or not call.client or not call.callee_e164:
        return None
    result = call.dial_result or "failed"
    return result, result == "answered" and call.answered_at is not None


def due_at(opened_at: datetime, deadline_s: float) -> datetime:
    return opened_at + timedelta(seconds=deadline_s)
