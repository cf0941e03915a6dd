"""SQL of call-back obligations, attempts and requests.

Every write is safe to repeat (unique keys, ``ON CONFLICT``, one call joined once), and the
worker claims calls with ``FOR UPDATE SKIP LOCKED``, so several instances may run it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from service.callbacks.rules import EndedCall, due_at, inbound_effect, outbound_attempt

DEFAULT_DEADLINE_S = 24 * 3600.0

CLAIM_ENDED = """
SELECT c.id, c.pbx_id, c.linkedid, c.direction, c.client, c.started_at, c.answered_at,
       c.outcome, c.forward_answered, c.caller_e164, c.caller_number, c.callee_e164,
       c.dial_result, c.placed_by, cl.callback_deadline_s
  FROM calls c LEFT JOIN clients cl ON cl.code = c.client
 WHERE c.ended_at IS NOT NULL AND c.callbacks_seen_at IS NULL
   -- an inbound call without its outcome yet (or ``unknown``: an outage) waits for it
   AND (c.direction = 'outbound' OR (c.outcome IS NOT NULL AND c.outcome <> 'unknown'))
 ORDER BY c.ended_at
 LIMIT $1
 FOR UPDATE OF c SKIP LOCKED
"""


async def open_or_join(conn: asyncpg.Connection, client: str, caller_e164: str | None,
                       caller_number: str | None, opened_at: datetime, deadline_s: float,
                       reason: str, call: tuple[str, str] | None) -> int:
    """The obligation a call (or message) at ``opened_at`` belongs to: the open one for
    (client, number), opened now if there is none; a call joins it once.  A call that reaches
    us late, from before a call back that already fulfilled an obligation, joins that one
    (the call back answered it too).  A number that cannot be called back gets a record of
    its own."""
    if call is not None:
        known = await conn.fetchval(
            "SELECT obligation_id FROM obligation_calls WHERE pbx_id = $1 AND linkedid = $2",
            *call)
        if known is not None:
            return int(known)
    covered = None if caller_e164 is None else await conn.fetchval(
        """UPDATE callback_obligations SET calls = calls + 1, updated_at = now(),
               opened_at = LEAST(opened_at, $3)
            WHERE id = (SELECT id FROM callback_obligations
                         WHERE client = $1 AND caller_e164 = $2 AND state = 'fulfilled'
                           AND fulfilled_at > $3
                         ORDER BY fulfilled_at LIMIT 1)
           RETURNING id""", client, caller_e164, opened_at)
    if covered is not None:
        obligation = covered
    elif caller_e164 is None:
        obligation = await conn.fetchval(
            """INSERT INTO callback_obligations (client, caller_e164, caller_number, state,
                   reason, opened_at) VALUES ($1, NULL, $2, 'cannot_call_back', $3, $4)
               RETURNING id""", client, caller_number, reason, opened_at)
    else:
        obligation = await conn.fetchval(
            """INSERT INTO callback_obligations (client, caller_e164, caller_number, state,
                   reason, opened_at, due_at) VALUES ($1, $2, $3, 'open', $4, $5, $6)
               ON CONFLICT (client, caller_e164) WHERE state = 'open' AND caller_e164 IS NOT NULL
               DO UPDATE SET calls = callback_obligations.calls + 1, updated_at = now(),
                   -- a call that reaches us late (spool, reconciliation) may be the first
                   opened_at = LEAST(callback_obligations.opened_at, EXCLUDED.opened_at),
                   due_at = LEAST(callback_obligations.due_at, EXCLUDED.due_at)
               RETURNING id""",
            client, caller_e164, caller_number, reason, opened_at,
            due_at(opened_at, deadline_s))
    if call is not None:
        await conn.execute("INSERT INTO obligation_calls (pbx_id, linkedid, obligation_id) "
                           "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", *call, obligation)
    if caller_e164 is not None and covered is None:
        await _catch_up(conn, int(obligation))
    return int(obligation)


# Call backs already in the ledger for an obligation just opened (or opened earlier by a late
# call): a missed call that reaches PostgreSQL after the call back that answered it (outage
# spool, reconciliation) must not leave an obligation open that was in fact fulfilled.
CATCH_UP = """
SELECT c.pbx_id, c.linkedid, c.placed_by, c.started_at, c.answered_at, c.dial_result
  FROM callback_obligations o
  JOIN calls c ON c.callee_e164 = o.caller_e164 AND c.client = o.client
 WHERE o.id = $1 AND o.state = 'open' AND c.direction = 'outbound'
   AND c.ended_at IS NOT NULL AND c.started_at >= o.opened_at
 ORDER BY c.started_at
"""


async def _catch_up(conn: asyncpg.Connection, obligation_id: int) -> None:
    for row in await conn.fetch(CATCH_UP, obligation_id):
        result = row["dial_result"] or "failed"
        await _attempt(conn, obligation_id, row["pbx_id"], row["linkedid"], row["placed_by"],
                       row["started_at"], row["answered_at"], result,
                       result == "answered" and row["answered_at"] is not None)


async def _attempt(conn: asyncpg.Connection, obligation_id: int, pbx_id: str, linkedid: str,
                   placed_by: str | None, started_at: datetime, answered_at: datetime | None,
                   result: str, fulfils: bool) -> bool:
    """Keep the attempt (a later, better-informed record of the same call replaces its
    result); an answered one fulfils the obligation, verified.  True if it did."""
    await conn.execute(
        """INSERT INTO callback_attempts (obligation_id, pbx_id, linkedid, placed_by,
               started_at, answered_at, result) VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (obligation_id, pbx_id, linkedid) DO UPDATE SET
               result = EXCLUDED.result, answered_at = EXCLUDED.answered_at,
               placed_by = COALESCE(EXCLUDED.placed_by, callback_attempts.placed_by)""",
        obligation_id, pbx_id, linkedid, placed_by, started_at, answered_at, result)
    if not fulfils:
        return False
    done = await conn.execute(
        """UPDATE callback_obligations SET state = 'fulfilled', fulfilment = 'verified',
               fulfilled_at = $2, fulfilled_by = $3, fulfilled_pbx = $4,
               fulfilled_linkedid = $5, updated_at = now()
           WHERE id = $1 AND state = 'open'""",
        obligation_id, answered_at, placed_by, pbx_id, linkedid)
    return bool(done.endswith(" 1"))


async def record_attempt(conn: asyncpg.Connection, call: EndedCall) -> list[int]:
    """An outbound call to a number with open obligations: an attempt on each; answered,
    it fulfils them (verified).  Returns the obligations it fulfilled."""
    effect = outbound_attempt(call)
    if effect is None:
        return []
    result, fulfils = effect
    rows = await conn.fetch(
        "SELECT id FROM callback_obligations WHERE client = $1 AND caller_e164 = $2 "
        "AND state = 'open' AND opened_at <= $3", call.client, call.callee_e164,
        call.started_at)
    fulfilled = []
    for row in rows:
        if await _attempt(conn, int(row["id"]), call.pbx_id, call.linkedid, call.placed_by,
                          call.started_at, call.answered_at, result, fulfils):
            fulfilled.append(int(row["id"]))
    return fulfilled


async def process_ended_calls(conn: asyncpg.Connection, limit: int = 500) -> int:
    """Apply the call-back rules to ended calls not looked at yet; returns how many."""
    async with conn.transaction():
        rows = await conn.fetch(CLAIM_ENDED, limit)
        for row in rows:
            call = EndedCall(**{k: row[k] for k in EndedCall.__dataclass_fields__})
            effect = inbound_effect(call)
            if effect is not None:
                assert call.client is not None
                await open_or_join(conn, call.client, call.caller_e164, call.caller_number,
                                   call.started_at,
                                   row["callback_deadline_s"] or DEFAULT_DEADLINE_S,
                                   "missed", (call.pbx_id, call.linkedid))
            else:
                await record_attempt(conn, call)
        if rows:
            await conn.execute("UPDATE calls SET callbacks_seen_at = now() WHERE id = ANY($1)",
                               [r["id"] for r in rows])
    return len(rows)


async def expire_overdue(conn: asyncpg.Connection, grace_s: float, now: datetime) -> int:
    """Obligations still open ``grace_s`` after they were due become ``expired``; ``now``
    is the service's clock, not the database's."""
    result = await conn.execute(
        "UPDATE callback_obligations SET state = 'expired', updated_at = now() "
        "WHERE state = 'open' AND due_at < $2::timestamptz - $1::float8 * interval '1 second'",
        grace_s, now)
    return int(result.split()[-1])


async def report_fulfilled(conn: asyncpg.Connection, obligation_id: int,
                           clients: list[str] | None, user: str, note: str | None) -> bool:
    """The client says it called back: fulfilled, *reported*.  ``clients`` limits which
    clients' obligations the user may touch (None: any)."""
    result = await conn.execute(
        """UPDATE callback_obligations SET state = 'fulfilled', fulfilment = 'reported',
               fulfilled_at = now(), fulfilled_by = $2, note = $3, updated_at = now()
           WHERE id = $1 AND state = 'open' AND ($4::text[] IS NULL OR client = ANY ($4))""",
        obligation_id, user, note, clients)
    return result.endswith(" 1")


async def cancel(conn: asyncpg.Connection, obligation_id: int, clients: list[str] | None,
                 user: str, note: str) -> bool:
    result = await conn.execute(
        """UPDATE callback_obligations SET state = 'cancelled', note = $3,
               fulfilled_by = $2, updated_at = now()
           WHERE id = $1 AND state = 'open' AND ($4::text[] IS NULL OR client = ANY ($4))""",
        obligation_id, user, note, clients)
    return result.endswith(" 1")


async def obligations(conn: asyncpg.Connection, *, clients: list[str] | None = None,
                      states: list[str] | None = None, limit: int = 100,
                      caller_e164: str | None = None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT o.*, (SELECT count(*) FROM callback_attempts a WHERE a.obligation_id = o.id)
                  AS attempts
             FROM callback_obligations o
            WHERE ($1::text[] IS NULL OR o.client = ANY ($1))
              AND ($2::text[] IS NULL OR o.state = ANY ($2))
              AND ($3::text IS NULL OR o.caller_e164 = $3)
            ORDER BY o.due_at NULLS LAST, o.id LIMIT $4""",
        clients, states, caller_e164, limit)
    return [dict(r) for r in rows]
