"""Wallboard alerts raised by the call flows (the escalation safety net, 手上げ with hold).

An alert is a row of ``callflow_alerts`` (open until cleared) and a message on the live
stream: ``NOTIFY orikaeshi_calls`` with ``{"kind": "alert", "alert": <kind>, ...}``, which every
instance's stream fans out to the wallboards (service/web/stream.py), filtered by client for
client users.  The row is what a page reloads after a gap in the stream.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from service.ledger.notify import CHANNEL

KINDS = ("safety_net", "handraise")


async def raise_alert(conn: asyncpg.Connection, *, kind: str, pbx_id: str,
                      linkedid: str | None, client: str | None, detail: dict[str, Any],
                      at: datetime) -> int:
    """Keep the alert and tell every wallboard; returns its id."""
    if kind not in KINDS:
        raise ValueError(f"alert kind must be one of {', '.join(KINDS)}")
    async with conn.transaction():
        alert_id: int = await conn.fetchval(
            "INSERT INTO callflow_alerts (kind, pbx_id, linkedid, client, detail, raised_at) "
            "VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING id",
            kind, pbx_id, linkedid, client, json.dumps(detail, ensure_ascii=False), at)
        message = {"kind": "alert", "alert": kind, "id": alert_id, "pbx": pbx_id,
                   "linkedid": linkedid, "client": client, "raised_at": at.isoformat(),
                   **{k: v for k, v in detail.items() if isinstance(v, str | int | float)}}
        # NOTIFY is sent at commit: a page never hears of an alert it cannot read.
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL,
                           json.dumps(message, ensure_ascii=False)[:7000])
    return alert_id


async def open_alerts(conn: asyncpg.Connection, clients: list[str] | None
                      ) -> list[dict[str, Any]]:
    """Alerts not yet cleared, oldest first (``clients`` None: every client)."""
    rows = await conn.fetch(
        """SELECT id, kind, pbx_id, linkedid, client, detail, raised_at
             FROM callflow_alerts
            WHERE cleared_at IS NULL AND ($1::text[] IS NULL OR client = ANY ($1))
            ORDER BY raised_at, id LIMIT 500""", clients)
    return [{**dict(row), "detail": json.loads(row["detail"])} for row in rows]


async def clear_alert(conn: asyncpg.Connection, alert_id: int, by: str, at: datetime) -> bool:
    """Mark an alert seen and dealt with; False when there is no such open alert."""
    done = await conn.execute(
        "UPDATE callflow_alerts SET cleared_at = $3, cleared_by = $2 "
        "WHERE id = $1 AND cleared_at IS NULL", alert_id, by, at)
    return done.endswith(" 1")
