"""Tell every instance about call changes: ``NOTIFY orikaeshi_calls`` after each batch is
committed.  The repeat filter of the route AGI and the live dashboards listen.

A payload is a small JSON object (well under PostgreSQL's 8000-byte limit): which call, whose,
from which number, and where it stands.  Listeners that need more read the row.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from service.ledger.records import Record
from service.logs import get_logger
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)

CHANNEL = "orikaeshi_calls"


def payloads(records: list[Record]) -> list[str]:
    out = []
    for kind, row in records:
        if kind != "call":
            continue
        out.append(json.dumps({
            "pbx": row["pbx_id"], "linkedid": row["linkedid"], "direction": row["direction"],
            "client": row["client"], "caller": row["caller_e164"],
            "started_at": row["started_at"], "answered_at": row["answered_at"],
            "ended_at": row["ended_at"], "outcome": row["outcome"],
            "escalated": row["escalated"]}, separators=(",", ":")))
    return out


class CallNotifier:
    """The ledger writer's ``on_written`` hook."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def __call__(self, records: list[Any]) -> None:
        messages = payloads(records)
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
