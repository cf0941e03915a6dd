"""The repeat lookup the route AGI uses: one indexed query.

Counts the caller's earlier inbound calls to the client inside the client's window, after the
last fulfilled call back: a verified one (an answered outbound call to the number for that
client, seen in the ledger) or a reported one (the client said so).  The current call is left
out by its AGI channel's Uniqueid.  Served by ``calls_repeat``, ``calls_callback`` and
``callback_obligations_fulfilled``; with 10 million calls in history it stays under 2 ms (see
bench/repeat_lookup.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from service.routing.repeat import RepeatHistory
from service.store.db import create_pool

# Connections kept open for the lookup, all made at start.  One answers ~2,000 lookups/s;
# more than a few only queue on the PostgreSQL host's cores.
LOOKUP_CONNECTIONS = 6

# The lower bound (the window's start, or the last call back if later) is one scalar
# subquery, so PostgreSQL evaluates it first and uses it as an index condition on
# calls_repeat: only the caller's calls inside it are read from the heap (to leave out the
# current call), never the caller's whole history.
REPEAT_SQL = """
WITH callback AS MATERIALIZED (
    SELECT greatest(
        (SELECT max(answered_at) FROM calls
          WHERE client = $1 AND callee_e164 = $2 AND direction = 'outbound'
            AND dial_result = 'answered' AND answered_at <= $3),
        (SELECT max(fulfilled_at) FROM callback_obligations
          WHERE client = $1 AND caller_e164 = $2 AND state = 'fulfilled'
            AND fulfilled_at <= $3)) AS at
), counted AS MATERIALIZED (
    SELECT c.started_at FROM calls c
     WHERE c.client = $1 AND c.caller_e164 = $2 AND c.direction = 'inbound'
       AND c.started_at > (SELECT greatest($3 - $4::interval, coalesce(at, '-infinity'))
                             FROM callback)
       AND c.started_at <= $3
       AND ($5::text IS NULL OR NOT ($5 = ANY (c.uniqueids)))
)
SELECT (SELECT count(*) FROM counted) AS calls,
       (SELECT min(started_at) FROM counted) AS first_at,
       (SELECT max(started_at) FROM counted) AS last_at,
       (SELECT at FROM callback) AS last_callback_at,
       (SELECT count(*) FROM callback_obligations
         WHERE client = $1 AND caller_e164 = $2 AND state = 'open') AS open_obligations
"""


async def create_lookup_pool(url: str) -> asyncpg.Pool:
    """The lookup's own pool, so that a busy ledger writer never delays a call."""
    return await create_pool(url, min_size=LOOKUP_CONNECTIONS, max_size=LOOKUP_CONNECTIONS,
                             read_only_fast=True, init=_warm)


async def _warm(conn: asyncpg.Connection) -> None:
    """Run the lookup once on each new connection, before any call waits on it: a fresh
    PostgreSQL backend loads the catalog entries of ``calls`` and its indexes and plans the
    statement on first use, and several doing so at once under load took 120-240 ms (seen with
    bench/agi_route.py), past the route's budget."""
    await conn.fetchrow(REPEAT_SQL, "", "", datetime.now(UTC), timedelta(0), None)


class SqlRepeatLookup:
    """:class:`service.routing.repeat.RepeatLookup` over PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def __call__(self, client: str, caller_e164: str, now: datetime, window_s: float,
                       exclude_uniqueid: str | None = None) -> RepeatHistory:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(REPEAT_SQL, client, caller_e164, now,
                                      timedelta(seconds=window_s), exclude_uniqueid)
        assert row is not None
        return RepeatHistory(calls=row["calls"], first_at=row["first_at"],
                             last_at=row["last_at"], last_callback_at=row["last_callback_at"],
                             open_obligations=row["open_obligations"])
