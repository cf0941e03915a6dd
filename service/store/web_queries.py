"""Reads for the API and the pages.  Every query takes ``clients`` (the caller's scope: a list
of client codes, or None for staff who see every client) and applies it in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from service.ledger.model import MISSED

CALL_FIELDS = """c.id, c.pbx_id, c.linkedid, c.direction, c.client, c.did, c.caller_number,
    c.caller_e164, c.caller_name, c.caller_withheld, c.started_at, c.queued_at, c.answered_at,
    c.ended_at, c.outcome, c.wait_s, c.talk_s, c.answered_by, c.escalated,
    c.escalation_reason, c.fallback_routed, c.voicemail_left, c.route_flags, c.callee_e164,
    c.placed_by, c.dial_result, c.end_seen, c.settled_by"""


def _rows(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows]


async def calls(conn: asyncpg.Connection, clients: list[str] | None, *, client: str | None,
                since: datetime | None, until: datetime | None, outcome: str | None,
                caller: str | None, direction: str | None, missed_only: bool, limit: int,
                before_id: int | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {CALL_FIELDS} FROM calls c
            WHERE ($1::text[] IS NULL OR c.client = ANY ($1))
              AND ($2::text IS NULL OR c.client = $2)
              AND ($3::timestamptz IS NULL OR c.started_at >= $3)
              AND ($4::timestamptz IS NULL OR c.started_at < $4)
              AND ($5::text IS NULL OR c.outcome = $5)
              AND ($6::text IS NULL OR c.caller_e164 = $6 OR c.callee_e164 = $6)
              AND ($7::text IS NULL OR c.direction = $7)
              AND (NOT $8 OR c.outcome = ANY ($9))
              -- newest first by when the call started (rows can arrive late: spool,
              -- reconcile); the cursor stays an id, read back into its (time, id)
              AND ($10::bigint IS NULL OR (c.started_at, c.id) <
                   (SELECT b.started_at, b.id FROM calls b WHERE b.id = $10))
            ORDER BY c.started_at DESC, c.id DESC LIMIT $11""",
        clients, client, since, until, outcome, caller, direction, missed_only,
        sorted(MISSED), before_id, limit + 1)
    return _rows(rows)


async def call(conn: asyncpg.Connection, clients: list[str] | None,
               call_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {CALL_FIELDS} FROM calls c WHERE c.id = $1 "
        "AND ($2::text[] IS NULL OR c.client = ANY ($2))", call_id, clients)
    if row is None:
        return None
    result = dict(row)
    result["stints"] = _rows(await conn.fetch(
        "SELECT seq, queue, joined_at, left_at, connected_at, ended_at, agent, result, "
        "wait_s, talk_s FROM stints WHERE pbx_id = $1 AND linkedid = $2 ORDER BY seq",
        row["pbx_id"], row["linkedid"]))
    result["rings"] = _rows(await conn.fetch(
        "SELECT stint_seq, queue, agent, started_at, ended_at, result, ring_ms "
        "FROM ring_attempts WHERE pbx_id = $1 AND linkedid = $2 ORDER BY started_at",
        row["pbx_id"], row["linkedid"]))
    return result


async def call_by_linkedid(conn: asyncpg.Connection, clients: list[str] | None, pbx_id: str,
                           linkedid: str) -> dict[str, Any] | None:
    call_id = await conn.fetchval(
        "SELECT id FROM calls WHERE pbx_id = $1 AND linkedid = $2", pbx_id, linkedid)
    return None if call_id is None else await call(conn, clients, call_id)


async def clients_list(conn: asyncpg.Connection, clients: list[str] | None
                       ) -> list[dict[str, Any]]:
    return _rows(await conn.fetch(
        "SELECT code, name, active, dids, timezone, queue, greeting_script, notes, plan_calls, "
        "callback_deadline_s, calling_hours_start, calling_hours_end, "
        "coalesce(nullif(name_ja, ''), name) AS name_ja, "
        "coalesce(nullif(name_en, ''), name) AS name_en FROM clients "
        "WHERE ($1::text[] IS NULL OR code = ANY ($1)) ORDER BY code", clients))


async def client_card(conn: asyncpg.Connection, clients: list[str] | None, code: str
                      ) -> dict[str, Any] | None:
    rows = await clients_list(conn, clients)
    return next((r for r in rows if r["code"] == code), None)


async def screen_pop(conn: asyncpg.Connection, clients: list[str] | None, pbx_id: str,
                     linkedid: str) -> dict[str, Any] | None:
    """What an operator sees when a call rings: client card, the caller's history with this
    client, open call backs, why it was escalated."""
    current = await call_by_linkedid(conn, clients, pbx_id, linkedid)
    if current is None:
        return None
    card = await client_card(conn, clients, current["client"]) if current["client"] else None
    history: list[dict[str, Any]] = []
    owed: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    if current["caller_e164"] and current["client"]:
        history = _rows(await conn.fetch(
            f"""SELECT {CALL_FIELDS} FROM calls c WHERE c.client = $1
                AND (c.caller_e164 = $2 OR c.callee_e164 = $2) AND c.id <> $3
                ORDER BY c.started_at DESC LIMIT 20""",
            current["client"], current["caller_e164"], current["id"]))
        owed = _rows(await conn.fetch(
            "SELECT id, state, reason, opened_at, due_at, calls FROM callback_obligations "
            "WHERE client = $1 AND caller_e164 = $2 AND state = 'open'",
            current["client"], current["caller_e164"]))
        messages = _rows(await conn.fetch(
            "SELECT id, disposition, body, taken_by, created_at FROM messages "
            "WHERE client = $1 AND caller_e164 = $2 ORDER BY created_at DESC LIMIT 10",
            current["client"], current["caller_e164"]))
    return {"call": current, "client": card, "history": history, "open_callbacks": owed,
            "messages": messages}


async def alerts(conn: asyncpg.Connection, clients: list[str] | None,
                 long_wait_s: float) -> list[dict[str, Any]]:
    """Escalated callers on the line, callers waiting too long, call backs overdue."""
    out: list[dict[str, Any]] = []
    for row in await conn.fetch(
            f"""SELECT {CALL_FIELDS} FROM calls c WHERE c.ended_at IS NULL AND c.escalated
                  AND c.started_at > now() - interval '1 day'
                  AND ($1::text[] IS NULL OR c.client = ANY ($1))""", clients):
        out.append({"kind": "escalation", "call": dict(row),
                    "reason": row["escalation_reason"] or "escalated"})
    for row in await conn.fetch(
            """SELECT c.id, c.client, c.caller_e164, c.caller_name, s.queue, s.joined_at
                 FROM stints s JOIN calls c ON c.pbx_id = s.pbx_id AND c.linkedid = s.linkedid
                WHERE c.ended_at IS NULL AND s.result = 'waiting' AND s.left_at IS NULL
                  AND s.joined_at < now() - $2::float8 * interval '1 second'
                  AND c.started_at > now() - interval '1 day'
                  AND ($1::text[] IS NULL OR c.client = ANY ($1))""", clients, long_wait_s):
        out.append({"kind": "long_wait", "call": dict(row)})
    for row in await conn.fetch(
            """SELECT id, client, caller_e164, caller_number, due_at, calls
                 FROM callback_obligations WHERE state = 'open' AND due_at < now()
                  AND ($1::text[] IS NULL OR client = ANY ($1)) ORDER BY due_at LIMIT 100""",
            clients):
        out.append({"kind": "overdue_callback", "obligation": dict(row)})
    return out


async def messages(conn: asyncpg.Connection, clients: list[str] | None, *,
                   client: str | None, limit: int, before_id: int | None
                   ) -> list[dict[str, Any]]:
    return _rows(await conn.fetch(
        """SELECT m.*, (SELECT json_agg(json_build_object('channel', d.channel, 'state',
                  d.state, 'attempts', d.attempts, 'last_error', d.last_error))
                  FROM message_deliveries d WHERE d.message_id = m.id) AS deliveries
             FROM messages m
            WHERE ($1::text[] IS NULL OR m.client = ANY ($1))
              AND ($2::text IS NULL OR m.client = $2) AND ($3::bigint IS NULL OR m.id < $3)
            ORDER BY m.id DESC LIMIT $4""", clients, client, before_id, limit + 1))


async def escalations(conn: asyncpg.Connection, clients: list[str] | None, *, limit: int,
                      before_id: int | None) -> list[dict[str, Any]]:
    return _rows(await conn.fetch(
        """SELECT * FROM escalations WHERE ($1::text[] IS NULL OR client = ANY ($1))
              AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3""",
        clients, before_id, limit + 1))


async def live_operator_channel(conn: asyncpg.Connection, operator: str,
                                pbx_id: str | None = None
                                ) -> tuple[str, str, str | None, str] | None:
    """(linkedid, the operator's channel in the bridge, client, PBX) of the call the
    operator is on now, from the ledger (any instance can answer this).  Extensions are
    per PBX: ``pbx_id`` narrows the search to one; without it the newest call wins."""
    row = await conn.fetchrow(
        """SELECT r.linkedid, r.member_channel, c.client, r.pbx_id
             FROM ring_attempts r
             JOIN stints s ON s.pbx_id = r.pbx_id AND s.linkedid = r.linkedid
                          AND s.seq = r.stint_seq
             JOIN calls c ON c.pbx_id = r.pbx_id AND c.linkedid = r.linkedid
            WHERE r.agent = $1 AND r.result = 'answered' AND s.ended_at IS NULL
              AND c.ended_at IS NULL AND c.started_at > now() - interval '1 day'
              AND ($2::text IS NULL OR r.pbx_id = $2)
            ORDER BY r.started_at DESC LIMIT 1""", operator, pbx_id)
    return None if row is None else (row["linkedid"], row["member_channel"], row["client"],
                                     row["pbx_id"])


async def callback_pbx(conn: asyncpg.Connection, client: str, caller_e164: str,
                       pbx_ids: list[str]) -> str | None:
    """The PBX a call back goes out on: of ``pbx_ids`` (those configured), the one the
    caller last called the client on."""
    pbx: str | None = await conn.fetchval(
        "SELECT pbx_id FROM calls WHERE client = $1 AND caller_e164 = $2 "
        "AND pbx_id = ANY($3) ORDER BY started_at DESC LIMIT 1", client, caller_e164, pbx_ids)
    return pbx


def day_start(now: datetime, tz: str = "Asia/Tokyo") -> datetime:
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo(tz))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)



async def record_spy_use(conn: asyncpg.Connection, *, supervisor: str, phone: str,
                         operator: str, mode: str, result: str, channel: str | None = None,
                         linkedid: str | None = None, detail: str | None = None) -> int:
    """One row of the spying audit (dashboard button or feature code)."""
    return int(await conn.fetchval(
        """INSERT INTO spy_audit (supervisor, supervisor_phone, operator, spied_channel,
               linkedid, mode, result, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           RETURNING id""", supervisor, phone, operator, channel, linkedid, mode, result,
        detail))
