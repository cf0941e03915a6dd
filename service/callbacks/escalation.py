"""手上げ: an operator (or a supervisor for them) sends the caller to the supervisors.

The caller leaves the operator by a blind transfer of the operator's channel to the
escalation context (dialplan/escalation.conf), whose extension is the reason: there the
caller is marked ``ESCALATED=1``, ``ESCALATION_REASON=<reason>`` (the ledger records both)
and queued for the supervisors, who hear the reason as their whisper.  Every request is kept
in ``escalations`` (who, on which call, why, how, and whether it worked).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from service.ami.adapter import AmiClient, AmiError
from service.logs import get_logger

log = get_logger(__name__)

REASONS = ("complaint", "complaint_naming_operator", "payment_dispute", "other")
# The digit an operator presses after the feature code, as in dialplan/escalation.conf.
REASON_KEYS = {"1": "complaint", "2": "complaint_naming_operator", "3": "payment_dispute",
               "9": "other"}


@dataclass(frozen=True)
class EscalationResult:
    moved: bool
    detail: str
    escalation_id: int | None = None


async def record(conn: asyncpg.Connection, *, pbx_id: str, linkedid: str | None,
                 client: str | None, channel: str, reason: str, requested_by: str, via: str,
                 moved: bool, detail: str) -> int:
    return int(await conn.fetchval(
        """INSERT INTO escalations (pbx_id, linkedid, client, channel, reason, requested_by,
               via, result, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           RETURNING id""",
        pbx_id, linkedid, client, channel, reason, requested_by, via,
        "moved" if moved else "failed", detail))


async def escalate(ami: AmiClient, conn: asyncpg.Connection, *, pbx_id: str,
                   call: tuple[str, str, str | None], reason: str, requested_by: str,
                   context: str = "orikaeshi-escalate") -> EscalationResult:
    """Move the caller of ``call`` (linkedid, the operator's bridged channel, client) onto
    the supervisors' queue."""
    if reason not in REASONS:
        return EscalationResult(False, f"reason must be one of {', '.join(REASONS)}")
    linkedid, channel, client = call
    try:
        answer = await ami.send_action({"Action": "BlindTransfer", "Channel": channel,
                                        "Context": context, "Exten": reason})
        moved = getattr(answer, "response", "") == "Success"
        detail = getattr(answer, "message", "") or "refused"
    except AmiError as exc:
        moved, detail = False, str(exc)
    escalation_id = await record(conn, pbx_id=pbx_id, linkedid=linkedid, client=client,
                                 channel=channel, reason=reason, requested_by=requested_by,
                                 via="api", moved=moved, detail=detail)
    log.info("escalated" if moved else "escalation_failed", linkedid=linkedid, reason=reason,
             detail=detail)
    return EscalationResult(moved, detail, escalation_id)
