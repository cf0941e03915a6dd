"""Asking the outbound policy on any path, with the evidence written in the same
transaction: the one function click-to-call, scheduled call backs, the handset AGI and
messages to callees call.

Two attempts to one callee at the same moment (two operators, two instances) must not both
pass a daily limit of N: the check and the record run under a transaction-scoped advisory
lock on (client, callee).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING

import asyncpg

from service.clients.model import Client, OutboundRules
from service.compliance.policy import (
    ContactHistory,
    OutboundDecision,
    Override,
    callee_day,
    decide_outbound,
)
from service.config import PbxConfig
from service.logs import get_logger
from service.phone import mask, to_e164
from service.store import compliance_sql

if TYPE_CHECKING:
    from agi.outbound_guard import HandsetDial, OutboundCheck

log = get_logger(__name__)

# A handset with no client (no account code on the phone) is still under the law's window.
LAW_WINDOW = (time(8, 0), time(21, 0))


@dataclass(frozen=True)
class Checked:
    decision: OutboundDecision
    decision_id: int
    callee_e164: str | None


async def check_outbound(conn: asyncpg.Connection, client: Client | None, number: str, *,
                         path: str, now: datetime, requested_by: str | None,
                         operator: str | None, override: Override | None = None,
                         pbx_id: str | None = None, uniqueid: str | None = None,
                         default_tz: str = "Asia/Tokyo",
                         placed_decision: int | None = None) -> Checked:
    """Decide (policy.decide_outbound) and record the decision; returns both.

    ``placed_decision``: the handset path of a call back that click-to-call or the scheduler
    already decided and Originated (``OUTBOUND_DECISION`` on the channel).  When that row is
    fresh, allowed and for this callee, it is confirmed (``result = dialled``) and returned:
    one call, one attempt.  Anything else is decided afresh."""
    e164 = to_e164(number)
    if placed_decision is not None and e164 is not None:
        row = await compliance_sql.confirm_placed(conn, placed_decision, e164, now)
        if row is not None:
            log.info("outbound_confirmed", decision=placed_decision, path=row["path"],
                     callee=mask(e164))
            return Checked(OutboundDecision(
                True, "allowed", f"{row['reason']} (decided at {row['path']})",
                row["callee_zone"] or default_tz, None), placed_decision, e164)
    rules = client.outbound if client else OutboundRules()
    window = client.calling_hours if client else LAW_WINDOW
    tz = client.timezone if client else default_tz
    code = client.code if client else None
    async with conn.transaction():
        if e164 is not None:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 13))",
                               f"{code}|{e164}")
            history = await compliance_sql.contact_history(
                conn, code, e164, callee_day(e164, now, rules, tz))
        else:
            history = ContactHistory()
        decision = decide_outbound(e164, now, calling_hours=window, client_tz=tz, rules=rules,
                                   history=history, override=override)
        decision_id = await compliance_sql.record_decision(
            conn, decision, decided_at=now, client=code, callee_e164=e164, dialled=number,
            path=path, requested_by=requested_by, operator=operator, pbx_id=pbx_id,
            uniqueid=uniqueid)
    event = "outbound_allowed" if decision.allowed else "outbound_refused"
    (log.info if decision.allowed else log.warning)(
        event, client=code, callee=mask(e164 or number), path=path, rule=decision.rule,
        by=requested_by, override_by=override.by if override and decision.overridden else None)
    return Checked(decision, decision_id, e164)


def handset_check(pool: asyncpg.Pool, pbxs: Sequence[PbxConfig]) -> OutboundCheck:
    """What the ``outbound_guard`` FastAGI route asks for each guarded dial (a handset, or a
    call back reaching the outbound context): decided and recorded on the ``handset`` path,
    or the call back's own decision confirmed.  The PBX is the one whose AMI host the AGI
    session came from."""

    async def check(dial: HandsetDial, now: datetime) -> OutboundDecision:
        pbx_id = next((p.pbx_id for p in pbxs if p.ami_host == dial.pbx_host), None)
        async with pool.acquire(timeout=1) as conn:
            checked = await check_outbound(conn, dial.client, dial.number, path="handset",
                                           now=now, requested_by=dial.operator,
                                           operator=dial.operator, pbx_id=pbx_id,
                                           uniqueid=dial.uniqueid,
                                           placed_decision=dial.placed_decision)
        return checked.decision

    return check
