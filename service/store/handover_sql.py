"""SQL of the handover (引き継ぎ): a client's calls, stints, rings, messages, obligations and
attempts read in batches for export, and written back idempotently on import."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

# Columns that belong to one database, not to the call: never exported, never imported.
LOCAL_COLUMNS = {"calls": {"id", "callbacks_seen_at", "updated_at"},
                 "messages": {"id"}, "callback_obligations": {"id", "updated_at"}}


async def column_types(conn: asyncpg.Connection, table: str) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = $1", table)
    return {r["column_name"]: r["data_type"] for r in rows}


async def calls_batch(conn: asyncpg.Connection, client: str, since: datetime | None,
                      after_id: int, limit: int = 1000) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM calls WHERE client = $1 AND ($2::timestamptz IS NULL OR "
        "started_at >= $2) AND id > $3 ORDER BY id LIMIT $4", client, since, after_id, limit)


async def stints_and_rings(conn: asyncpg.Connection, keys: list[tuple[str, str]]
                           ) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    pbx, linked = [k[0] for k in keys], [k[1] for k in keys]
    stints = await conn.fetch(
        "SELECT s.* FROM stints s JOIN unnest($1::text[], $2::text[]) AS k(pbx_id, linkedid) "
        "USING (pbx_id, linkedid) ORDER BY s.pbx_id, s.linkedid, s.seq", pbx, linked)
    rings = await conn.fetch(
        "SELECT r.* FROM ring_attempts r JOIN unnest($1::text[], $2::text[]) AS "
        "k(pbx_id, linkedid) USING (pbx_id, linkedid) ORDER BY r.started_at", pbx, linked)
    return stints, rings


async def messages(conn: asyncpg.Connection, client: str,
                   since: datetime | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM messages WHERE client = $1 AND ($2::timestamptz IS NULL OR "
        "created_at >= $2) ORDER BY id", client, since)


async def obligations(conn: asyncpg.Connection, client: str,
                      since: datetime | None) -> list[asyncpg.Record]:
    """Obligations opened since ``since``, and every one still open (what is owed)."""
    return await conn.fetch(
        "SELECT * FROM callback_obligations WHERE client = $1 AND ($2::timestamptz IS NULL "
        "OR opened_at >= $2 OR state = 'open') ORDER BY id", client, since)


async def obligation_links(conn: asyncpg.Connection, ids: list[int]
                           ) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    attempts = await conn.fetch("SELECT * FROM callback_attempts WHERE obligation_id = ANY ($1) "
                                "ORDER BY started_at", ids)
    calls = await conn.fetch("SELECT * FROM obligation_calls WHERE obligation_id = ANY ($1) "
                             "ORDER BY pbx_id, linkedid", ids)
    return attempts, calls


async def insert(conn: asyncpg.Connection, table: str, values: dict[str, Any],
                 conflict: str = "DO NOTHING", returning: str | None = None) -> Any:
    """INSERT one row of ``values`` (column names come from the table itself, never from
    the bundle: callers pass only known columns)."""
    columns = list(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "
           f"ON CONFLICT {conflict}")
    if returning:
        return await conn.fetchval(f"{sql} RETURNING {returning}", *values.values())
    return await conn.execute(sql, *values.values())


async def imported(conn: asyncpg.Connection, key: str) -> int | None:
    """The local id a bundle row was imported as, if it was."""
    row = await conn.fetchrow("SELECT local_id FROM handover_imports WHERE source_key = $1", key)
    return None if row is None else row["local_id"]


async def mark_imported(conn: asyncpg.Connection, key: str, kind: str,
                        local_id: int | None) -> None:
    await conn.execute("INSERT INTO handover_imports (source_key, kind, local_id) "
                       "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", key, kind, local_id)
