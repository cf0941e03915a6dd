"""Outbound decisions (evidence and contact history) in PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from service.compliance.policy import ContactHistory, OutboundDecision


async def contact_history(conn: asyncpg.Connection, client: str | None, callee_e164: str,
                          day: tuple[datetime, datetime]) -> ContactHistory:
    """Allowed attempts to the callee for the client on its local ``day``, and the last one
    (a click-to-call whose Originate failed rang nobody and is not counted)."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE decided_at >= $3 AND decided_at < $4) AS today,
                  max(decided_at) AS last
           FROM outbound_decisions
           WHERE client IS NOT DISTINCT FROM $1 AND callee_e164 = $2 AND allowed
             AND result IS DISTINCT FROM 'failed' AND path <> 'message'""",
        client, callee_e164, day[0], day[1])
    return ContactHistory(int(row["today"]), row["last"])


async def histories(conn: asyncpg.Connection, client: str,
                    callees: list[str], since: datetime) -> dict[str, list[datetime]]:
    """Allowed attempt times since ``since`` per callee: the worklist's rows in one query."""
    rows = await conn.fetch(
        """SELECT callee_e164, array_agg(decided_at ORDER BY decided_at) AS times
           FROM outbound_decisions WHERE client = $1 AND callee_e164 = ANY ($2) AND allowed
             AND result IS DISTINCT FROM 'failed' AND path <> 'message' AND decided_at >= $3
           GROUP BY callee_e164""", client, callees, since)
    return {r["callee_e164"]: list(r["times"]) for r in rows}


async def record_decision(conn: asyncpg.Connection, decision: OutboundDecision, *,
                          decided_at: datetime, client: str | None, callee_e164: str | None,
                          dialled: str, path: str, requested_by: str | None,
                          operator: str | None, pbx_id: str | None = None,
                          uniqueid: str | None = None) -> int:
    override = decision.overridden
    return int(await conn.fetchval(
        """INSERT INTO outbound_decisions (decided_at, client, callee_e164, dialled, path,
               requested_by, operator, allowed, rule, reason, callee_zone, callee_local,
               opens_at, override_by, override_reason, pbx_id, uniqueid)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
           RETURNING id""",
        decided_at, client, callee_e164, dialled[:40], path, requested_by, operator,
        decision.allowed, decision.rule, decision.reason, decision.callee_zone,
        decision.callee_local.isoformat() if decision.callee_local else None,
        decision.opens_at, override.by if override else None,
        override.reason if override else None, pbx_id, uniqueid))


async def set_result(conn: asyncpg.Connection, decision_id: int, result: str) -> None:
    # A call the guard already confirmed (``dialled``) keeps that.
    await conn.execute("UPDATE outbound_decisions SET result = $2 WHERE id = $1 "
                       "AND result IS NULL", decision_id, result)


async def confirm_placed(conn: asyncpg.Connection, decision_id: int, callee_e164: str | None,
                         now: datetime, max_age_s: float = 300.0) -> asyncpg.Record | None:
    """The allowed click-to-call / scheduled decision ``decision_id`` for this callee, made
    at most ``max_age_s`` before ``now`` and not confirmed yet; marked ``dialled`` (once)."""
    return await conn.fetchrow(
        """UPDATE outbound_decisions SET result = 'dialled'
           WHERE id = $1 AND callee_e164 = $2 AND allowed
             -- NULL: the Originate's answer is not written yet (a phone may answer first)
             AND (result IS NULL OR result = 'originated')
             AND path IN ('click_to_call', 'scheduled')
             AND decided_at <= $3 AND decided_at > $3 - $4 * interval '1 second'
           RETURNING *""", decision_id, callee_e164, now, max_age_s)
