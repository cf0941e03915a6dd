"""手上げ: an operator (or a supervisor for them) sends the caller to the supervisors.

The caller leaves the operator by a blind transfer of the operator's channel to the
escalation context (dialplan/escalation.conf), whose extension is the reason: there the
caller is marked ``ESCALATED=1``, ``ESCALATION_REASON=<reason>`` (the ledger records both)
and queued for the supervisors, who hear the reason as their whisper.  Every request is kept
in ``escalations`` (who, on which call, why, how, and whether it worked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from service.ami.adapter import AmiClient, AmiError
from service.config import PbxConfig
from service.logs import get_logger

log = get_logger(__name__)

REASONS = ("complaint", "complaint_naming_operator", "payment_dispute", "other")
# The digit an operator presses after the feature code, as in dialplan/escalation.conf.
REASON_KEYS = {"1": "complaint", "2": "complaint_naming_operator", "3": "payment_dispute",
               "9": "other"}


@dataclass(frozen=True)
class FeatureCodeEscalation:
    """What the ``escalate`` AGI learns when an operator presses the feature code."""

    operator: str             # the operator's extension (from their channel's name)
    reason: str               # one of REASONS
    caller_channel: str       # the caller's channel (BRIDGEPEER), which the dialplan moves
    linkedid: str | None      # the call, as the ledger knows it
    client: str | None        # the account code the route set
    pbx_host: str | None      # the address the FastAGI session came from


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


async def record_feature_code(pool: asyncpg.Pool, pbxs: Sequence[PbxConfig],
                              request: FeatureCodeEscalation) -> int:
    """Keep an escalation the ``escalate`` AGI reported.  The dialplan moves the caller
    whatever happens here; whether the move worked shows in the ledger (``escalated``)."""
    # The PBX whose AMI host sent the FastAGI session (the first one if none matches).
    pbx = next((p for p in pbxs if p.ami_host == request.pbx_host), pbxs[0])
    async with pool.acquire(timeout=5) as conn:
        client = request.client
        if client is None and request.linkedid is not None:
            # An operator's Local channel does not carry the account code; the call does.
            client = await conn.fetchval(
                "SELECT client FROM calls WHERE pbx_id = $1 AND linkedid = $2",
                pbx.pbx_id, request.linkedid)
        return await record(conn, pbx_id=pbx.pbx_id, linkedid=request.linkedid,
                            client=client, channel=request.caller_channel,
                            reason=request.reason, requested_by=request.operator,
                            via="feature_code", moved=True,
                            detail="feature code; the dialplan moves the caller")


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
