"""SQL of the retention purge: what of one client is older than its cutoff, counted or
deleted by the same conditions (a dry run counts exactly what a purge would delete)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

# A call is kept, whatever its age, while an open call back still needs it (it is one of the
# missed calls the obligation lists) or continuous reconciliation left a difference about it
# that nobody resolved yet (the supervisor must still be able to see what the ledger says).
_CALL_NEEDED = """(EXISTS (SELECT 1 FROM reconcile_differences d
                WHERE d.pbx_id = {c}.pbx_id AND d.linkedid = {c}.linkedid
                  AND d.resolved_at IS NULL)
        OR EXISTS (SELECT 1 FROM obligation_calls oc
                   JOIN callback_obligations o ON o.id = oc.obligation_id
                   WHERE oc.pbx_id = {c}.pbx_id AND oc.linkedid = {c}.linkedid
                     AND o.state = 'open'))"""

# Asterisk's own records copied for reconciliation (the cdr and queue_log tables): a row goes
# with the purged call it belongs to (one of the call's channels; rows cdr_pgsql or realtime
# wrote carry no PBX, '').  Rows of no call in the ledger are not the client's: kept.
# (Their times are UTC without a zone, as Asterisk writes them.)
_COPY_OF_PURGED_CALL = """{time} < ($2::timestamptz AT TIME ZONE 'UTC') AND EXISTS (
        SELECT 1 FROM calls c WHERE c.client = $1 AND c.started_at < $2
           AND c.uniqueids @> ARRAY[{table}.{key}] AND {table}.pbx_id IN (c.pbx_id, '')
           AND NOT """ + _CALL_NEEDED.format(c="c") + ")"

# (what, table, condition on $1 = client, $2 = cutoff).  Order matters when deleting:
# messages before the obligations they reference, the links of old calls before the
# obligations (so the counts of a dry run are what is deleted), Asterisk's copies before
# the calls they are matched with; calls cascade to stints and rings.  Nothing deleted
# earlier is what a later condition keeps a row for (open obligations, differences).
TARGETS: tuple[tuple[str, str, str], ...] = (
    ("messages", "messages", "client = $1 AND created_at < $2"),
    ("deliveries", "message_deliveries",
     "message_id IS NULL AND client = $1 AND created_at < $2"),
    ("push_items", "push_items", "client = $1 AND at < $2"),
    ("callback_requests", "callback_requests", "client = $1 AND requested_at < $2"),
    # The evidence of the outbound policy: kept while the callee is owed a call back (the
    # attempts made for that obligation).
    ("outbound_decisions", "outbound_decisions",
     """client = $1 AND decided_at < $2
        AND NOT EXISTS (SELECT 1 FROM callback_obligations o
                        WHERE o.client = $1 AND o.state = 'open'
                          AND o.caller_e164 = outbound_decisions.callee_e164)"""),
    # Scheduled call backs that are over (placed, refused, failed, cancelled); pending ones,
    # and those of a call back still open, are kept.
    ("scheduled_callbacks", "scheduled_callbacks",
     """client = $1 AND state <> 'pending' AND updated_at < $2
        AND NOT EXISTS (SELECT 1 FROM callback_obligations o
                        WHERE o.id = scheduled_callbacks.obligation_id AND o.state = 'open')"""),
    # Messages to callees (e-mail, fax) that are over; held or pending ones are still to
    # go, and those of a call back still open are kept with it.
    ("callee_messages", "callee_messages",
     """client = $1 AND state NOT IN ('pending', 'held') AND updated_at < $2
        AND NOT EXISTS (SELECT 1 FROM callback_obligations o
                        WHERE o.id = callee_messages.obligation_id AND o.state = 'open')"""),
    ("cdr", "cdr", _COPY_OF_PURGED_CALL.format(time="start", table="cdr", key="uniqueid")),
    ("queue_log", "queue_log",
     _COPY_OF_PURGED_CALL.format(time="time", table="queue_log", key="callid")),
    ("obligation_calls", "obligation_calls",
     """EXISTS (SELECT 1 FROM calls c WHERE c.pbx_id = obligation_calls.pbx_id
                AND c.linkedid = obligation_calls.linkedid AND c.client = $1
                AND c.started_at < $2 AND NOT """ + _CALL_NEEDED.format(c="c") + ")"),
    # Obligations still open are owed: kept whatever their age.
    ("obligations", "callback_obligations",
     """client = $1 AND state <> 'open' AND opened_at < $2
        AND coalesce(fulfilled_at, closed_at, opened_at) < $2
        AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.obligation_id = callback_obligations.id
                        AND m.created_at >= $2)"""),
    ("calls", "calls",
     "client = $1 AND started_at < $2 AND NOT " + _CALL_NEEDED.format(c="calls")),
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
        "SELECT code, retention_s, timezone FROM clients WHERE retention_s IS NOT NULL "
        "AND ($1::text IS NULL OR code = $1) ORDER BY code", only)
