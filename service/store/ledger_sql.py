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

from service.ledger.model import Call, RingAttempt, Stint
from service.ledger.records import Record

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


def _upsert(table: str, columns: Sequence[str], key: Sequence[str], extra: str = "",
            where: str = "") -> str:
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}{extra}{where}")


# A call settled by reconciliation keeps its settled outcome unless the AMI stream later
# shows its end after all (a replay of the same events, another instance's late records).
UPSERT_CALL = _upsert("calls", CALL_COLUMNS, ("pbx_id", "linkedid"),
                      ", updated_at = now(), settled_by = NULL, settled_note = NULL",
                      " WHERE calls.settled_by IS NULL OR EXCLUDED.end_seen")
UPSERT_STINT = _upsert("stints", STINT_COLUMNS, ("pbx_id", "linkedid", "seq"))
UPSERT_RING = _upsert("ring_attempts", RING_COLUMNS, ("pbx_id", "member_uniqueid"))


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
    calls = {}
    for r in rows:
        calls[r["linkedid"]] = Call(
            pbx_id=pbx_id, linkedid=r["linkedid"], direction=r["direction"],
            started_at=_epoch(r["started_at"]) or 0.0, did=r["did"], client=r["client"],
            caller_number=r["caller_number"], caller_name=r["caller_name"],
            caller_uniqueid=r["caller_uniqueid"], uniqueids=list(r["uniqueids"]),
            route_action=r["route_action"], route_queue=r["route_queue"],
            route_flags=r["route_flags"], escalated=r["escalated"],
            escalation_reason=r["escalation_reason"], fallback_routed=r["fallback_routed"],
            voicemail_left=r["voicemail_left"], voicemail_box=r["voicemail_box"],
            transfers=r["transfers"], forwarded_to=r["forwarded_to"],
            forward_answered=r["forward_answered"], answered_at=_epoch(r["answered_at"]),
            answered_by=r["answered_by"], callee_number=r["callee_number"],
            placed_by=r["placed_by"], dial_result=r["dial_result"],
            last_event_at=_epoch(r["updated_at"]) or 0.0)
    stints: dict[tuple[str, int], Stint] = {}
    for s in stint_rows:
        stint = Stint(seq=s["seq"], queue=s["queue"], caller_uniqueid=s["caller_uniqueid"],
                      joined_at=_epoch(s["joined_at"]) or 0.0, position=s["position"],
                      left_at=_epoch(s["left_at"]), connected_at=_epoch(s["connected_at"]),
                      ended_at=_epoch(s["ended_at"]), agent=s["agent"],
                      interface=s["interface"], result=s["result"],
                      asterisk_hold_s=s["asterisk_hold_s"])
        calls[s["linkedid"]].stints.append(stint)
        stints[(s["linkedid"], s["seq"])] = stint
    for g in ring_rows:
        stint_of_ring = stints.get((g["linkedid"], g["stint_seq"]))
        if stint_of_ring is None:
            continue
        stint_of_ring.rings.append(RingAttempt(
            member_uniqueid=g["member_uniqueid"], member_channel=g["member_channel"] or "",
            queue=g["queue"], interface=g["interface"] or "", agent=g["agent"] or "",
            started_at=_epoch(g["started_at"]) or 0.0, stint_seq=g["stint_seq"],
            ended_at=_epoch(g["ended_at"]), result=g["result"], ring_ms=g["ring_ms"]))
    return list(calls.values())
