"""SQL of the ledger: idempotent upserts of calls, stints and ring attempts, and the reads the
ledger itself needs (open calls to take over).

Every write is an upsert of the full current row on its natural key, so the same records
written twice, or replayed from the spool after a crash, change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from service.ledger.model import Call
from service.ledger.records import Record, calls_from_records

CALL_COLUMNS = (
    "pbx_id", "linkedid", "direction", "client", "did", "caller_number", "caller_e164",
    "caller_name", "caller_withheld", "caller_uniqueid", "uniqueids", "started_at", "queued_at",
    "answered_at", "ended_at", "outcome", "wait_s", "talk_s", "answered_by", "escalated",
    "escalation_reason", "fallback_routed", "voicemail_left", "voicemail_box", "forwarded_to",
    "forward_answered", "route_action", "route_queue", "route_flags", "transfers",
    "hangup_cause", "callee_number", "callee_e164", "placed_by", "dial_result", "end_seen",
)
STINT_COLUMNS = (
    "pbx_id", "linkedid", "seq", "queue", "caller_uniqueid", "joined_at", "left_at",
    "connected_at", "ended_at", "position", "agent", "interface", "result", "wait_s", "talk_s",
    "asterisk_hold_s",
)
RING_COLUMNS = (
    "pbx_id", "member_uniqueid", "linkedid", "stint_seq", "queue", "interface", "agent",
    "member_channel", "started_at", "ended_at", "result", "ring_ms",
)


def _upsert(table: str, columns: Sequence[str], key: Sequence[str],
            rules: dict[str, str], extra: str = "", where: str = "") -> str:
    """INSERT ... ON CONFLICT DO UPDATE that merges instead of overwriting.

    A row may be written by consumers that know different parts of a call (an instance
    that took over mid-call, a resync that adopted a call it never saw begin), so a newer
    record never erases what an older one knew: by default a column takes the new value
    when it has one (``COALESCE``); ``rules`` gives other merges (earliest time, OR, ...).
    """
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(
        f"{c} = " + rules.get(c, f"COALESCE(EXCLUDED.{c}, {table}.{c})").format(t=table, c=c)
        for c in columns if c not in key)
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}{extra}{where}")


_EARLIEST = "LEAST({t}.{c}, EXCLUDED.{c})"
_EVER = "{t}.{c} OR EXCLUDED.{c}"
_NEWEST = "EXCLUDED.{c}"
# An inbound call decided as not answered says so for good: a connect written while it
# looked like an answer (AgentConnect before the caller's BridgeEnter) whose caller turned
# out to be gone is taken back, not kept by the merge.
_NOT_ANSWERED = ("EXCLUDED.direction = 'inbound' AND EXCLUDED.outcome IS NOT NULL "
                 "AND EXCLUDED.outcome <> 'answered'")
_UNANSWERED_STINT = "EXCLUDED.result IN ('abandoned', 'timeout', 'no_agents', 'exit_key', " \
    "'withdrawn')"


def _unless(condition: str, otherwise: str) -> str:
    return f"CASE WHEN {condition} THEN EXCLUDED.{{c}} ELSE {otherwise} END"

# A call settled by reconciliation keeps its settled outcome unless the AMI stream later
# shows its end after all (a replay of the same events, another instance's late records).
UPSERT_CALL = _upsert(
    "calls", CALL_COLUMNS, ("pbx_id", "linkedid"), {
        "started_at": _EARLIEST, "queued_at": _EARLIEST,
        "answered_at": _unless(_NOT_ANSWERED, _EARLIEST),
        "answered_by": _unless(_NOT_ANSWERED, "COALESCE(EXCLUDED.{c}, {t}.{c})"),
        "talk_s": _unless(_NOT_ANSWERED, "COALESCE(EXCLUDED.{c}, {t}.{c})"),
        "escalated": _EVER, "fallback_routed": _EVER, "voicemail_left": _EVER,
        # Withheld only if no consumer ever saw a number.
        "caller_withheld": "{t}.{c} AND EXCLUDED.{c}",
        "uniqueids": "ARRAY(SELECT DISTINCT u FROM unnest({t}.{c} || EXCLUDED.{c}) AS u "
                     "ORDER BY u)",
        "transfers": "GREATEST({t}.{c}, EXCLUDED.{c})",
        "end_seen": _NEWEST, "direction": _NEWEST,
    },
    ", updated_at = now(), settled_by = NULL, settled_note = NULL",
    " WHERE calls.settled_by IS NULL OR EXCLUDED.end_seen")
UPSERT_STINT = _upsert(
    "stints", STINT_COLUMNS, ("pbx_id", "linkedid", "seq"), {
        "joined_at": _EARLIEST, "connected_at": _unless(_UNANSWERED_STINT, _EARLIEST),
        "agent": _unless(_UNANSWERED_STINT, "COALESCE(EXCLUDED.{c}, {t}.{c})"),
        "interface": _unless(_UNANSWERED_STINT, "COALESCE(EXCLUDED.{c}, {t}.{c})"),
        "talk_s": _unless(_UNANSWERED_STINT, "COALESCE(EXCLUDED.{c}, {t}.{c})"),
        "result": "CASE WHEN EXCLUDED.{c} = 'waiting' THEN {t}.{c} ELSE EXCLUDED.{c} END",
    })
UPSERT_RING = _upsert(
    "ring_attempts", RING_COLUMNS, ("pbx_id", "member_uniqueid"), {
        "started_at": _EARLIEST,
        "result": "CASE WHEN EXCLUDED.{c} = 'ringing' THEN {t}.{c} ELSE EXCLUDED.{c} END",
    })


def _ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _args(row: dict[str, Any], columns: Sequence[str]) -> list[Any]:
    return [_ts(row[c]) if c.endswith("_at") else row[c] for c in columns]


async def write_records(conn: asyncpg.Connection, records: Iterable[Record]) -> None:
    """Write a batch in one transaction: calls first, so stints and rings find their call."""
    calls, stints, rings = [], [], []
    for kind, row in records:
        if kind == "call":
            calls.append(_args(row, CALL_COLUMNS))
        elif kind == "stint":
            stints.append(_args(row, STINT_COLUMNS))
        elif kind == "ring":
            rings.append(_args(row, RING_COLUMNS))
        else:
            raise ValueError(f"unknown record kind {kind!r}")
    async with conn.transaction():
        if calls:
            await conn.executemany(UPSERT_CALL, calls)
        if stints:
            await conn.executemany(UPSERT_STINT, stints)
        if rings:
            await conn.executemany(UPSERT_RING, rings)


async def load_open_calls(conn: asyncpg.Connection, pbx_id: str) -> list[Call]:
    """Calls of this PBX whose end has not been recorded, with their stints and rings."""
    rows = await conn.fetch("SELECT * FROM calls WHERE pbx_id = $1 AND ended_at IS NULL",
                            pbx_id)
    if not rows:
        return []
    linkedids = [r["linkedid"] for r in rows]
    stint_rows = await conn.fetch(
        "SELECT * FROM stints WHERE pbx_id = $1 AND linkedid = ANY($2) ORDER BY seq",
        pbx_id, linkedids)
    ring_rows = await conn.fetch(
        "SELECT * FROM ring_attempts WHERE pbx_id = $1 AND linkedid = ANY($2) "
        "ORDER BY started_at", pbx_id, linkedids)
    records: list[Record] = []
    for kind, table in (("call", rows), ("stint", stint_rows), ("ring", ring_rows)):
        for r in table:
            records.append([kind, {k: _epoch(v) if k.endswith("_at") else v
                                   for k, v in dict(r).items()}])
    return calls_from_records(records)
