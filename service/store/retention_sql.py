"""SQL of the retention purge: what of one client is older than its cutoff, counted or
deleted by the same conditions (a dry run counts exactly what a purge would delete)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

# (what, table, condition on $1 = client, $2 = cutoff).  Order matters when deleting:
# messages before the obligations they reference, the links of old calls before the
# obligations (so the counts of a dry run are what is deleted); calls cascade to stints and
# rings.
TARGETS: tuple[tuple[str, str, str], ...] = (
    ("messages", "messages", "client = $1 AND created_at < $2"),
    ("deliveries", "message_deliveries",
     "message_id IS NULL AND client = $1 AND created_at < $2"),
    ("push_items", "push_items", "client = $1 AND at < $2"),
    ("callback_requests", "callback_requests", "client = $1 AND requested_at < $2"),
    ("obligation_calls", "obligation_calls",
     """EXISTS (SELECT 1 FROM calls c WHERE c.pbx_id = obligation_calls.pbx_id
                AND c.linkedid = obligation_calls.linkedid AND c.client = $1
                AND c.started_at < $2)"""),
    # Obligations still open are owed: kept whatever their age.
    ("obligations", "callback_obligations",
     """client = $1 AND state <> 'open' AND opened_at < $2
        AND coalesce(fulfilled_at, closed_at, opened_at) < $2
        AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.obligation_id = callback_obligations.id
                        AND m.created_at >= $2)"""),
    ("calls", "calls", "client = $1 AND started_at < $2"),
)


async def count(conn: asyncpg.Connection, client: str, cutoff: datetime) -> dict[str, int]:
    out = {}
    for what, table, condition in TARGETS:
        out[what] = int(await conn.fetchval(
            f"SELECT count(*) FROM {table} WHERE {condition}", client, cutoff))
    return out


async def delete(conn: asyncpg.Connection, client: str, cutoff: datetime) -> dict[str, int]:
    out = {}
    async with conn.transaction():
        for what, table, condition in TARGETS:
            result = await conn.execute(f"DELETE FROM {table} WHERE {condition}", client, cutoff)
            out[what] = int(result.split()[-1])
    return out


async def clients_with_retention(conn: asyncpg.Connection,
                                 only: str | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT code, retention_s FROM clients WHERE retention_s IS NOT NULL "
        "AND ($1::text IS NULL OR code = $1) ORDER BY code", only)
