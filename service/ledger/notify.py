"""Tell every instance about call changes: ``NOTIFY orikaeshi_calls`` after each batch is
committed.  The repeat filter of the route AGI and the live dashboards listen.

A payload is a small JSON object (well under PostgreSQL's 8000-byte limit): which call, whose,
from which number, and where it stands.  Listeners that need more read the row.
"""

from __future__ import annotations

import json
import time
from typing import Any

import asyncpg

from service.ledger.records import Record
from service.logs import get_logger
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)

CHANNEL = "orikaeshi_calls"
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more (and the whole statement with
# it); leave room for the server's own encoding.
MAX_PAYLOAD_BYTES = 7900
# Dropped, in this order, from a payload that would be too long: listeners read the row.
_SHEDDABLE = ("caller_name", "escalation_reason", "answered_by", "caller", "agent", "queue",
              "client")


def bounded(message: dict[str, Any]) -> str:
    """``message`` as JSON, under :data:`MAX_PAYLOAD_BYTES`: the longest free-text fields
    are dropped (``truncated: true``) until it fits; ids are bounded at the AMI edge.

    >>> len(bounded({"kind": "call", "client": "K" * 9000}).encode()) < MAX_PAYLOAD_BYTES
    True
    """
    text = json.dumps(message, separators=(",", ":"))
    for key in _SHEDDABLE:
        if len(text.encode()) < MAX_PAYLOAD_BYTES:
            return text
        if message.get(key) is not None:
            message = {**message, key: None, "truncated": True}
            text = json.dumps(message, separators=(",", ":"))
    if len(text.encode()) >= MAX_PAYLOAD_BYTES:
        text = json.dumps({"kind": "resync", "truncated": True})
    return text


def payloads(records: list[Record], now: float) -> list[str]:
    """One message per call record, and one per ring still ringing (the operator's screen
    pop); ``ts`` is when it was sent, for latency measurements."""
    out = []
    clients: dict[tuple[str, str], str | None] = {}
    for kind, row in records:
        if kind == "call":
            clients[(row["pbx_id"], row["linkedid"])] = row["client"]
            out.append(bounded({
                "kind": "call", "pbx": row["pbx_id"], "linkedid": row["linkedid"],
                "direction": row["direction"], "client": row["client"],
                "caller": row["caller_e164"], "started_at": row["started_at"],
                "answered_at": row["answered_at"], "ended_at": row["ended_at"],
                "outcome": row["outcome"], "answered_by": row["answered_by"],
                "escalated": row["escalated"],
                "escalation_reason": row["escalation_reason"],
                "event_at": row.get("last_event_at"), "ts": now}))
    for kind, row in records:
        if kind == "ring" and row["result"] == "ringing":
            out.append(bounded({
                "kind": "ring", "pbx": row["pbx_id"], "linkedid": row["linkedid"],
                "agent": row["agent"], "queue": row["queue"],
                "client": clients.get((row["pbx_id"], row["linkedid"])), "ts": now}))
    return out


class CallNotifier:
    """The ledger writer's ``on_written`` hook."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def __call__(self, records: list[Any]) -> None:
        messages = payloads(records, time.time())
        if not messages:
            return
        try:
            async with self.pool.acquire(timeout=2) as conn:
                await conn.execute("SELECT pg_notify($1, m) FROM unnest($2::text[]) AS m",
                                   CHANNEL, messages)
        except TRANSIENT_ERRORS as exc:
            # Listeners resynchronise from the tables when they reconnect; the ledger row
            # itself is already committed.
            log.warning("call_notify_failed", error=str(exc) or type(exc).__name__)
