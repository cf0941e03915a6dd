"""Reads for the pages (wallboard, operator screen pop, worklist), beside ``web_queries``.

Like every query for the web side, each takes ``clients`` (the caller's scope: a list of
client codes, or None for staff) and applies it in SQL.  Times are returned as they are
stored; the pages tick durations from them against the server's ``now`` (also returned), so
a page's own clock being off does not show a wrong wait.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg

from service.callbacks.escalation import REASONS
from service.callflows.alerts import open_alerts
from service.ledger.model import MISSED
from service.store.web_queries import CALL_FIELDS
from service.store.web_queries import alerts as ledger_alerts

# Calls the service level counts as offered to operators: not short abandons (the caller left
# at once), not after-hours calls, not greeting hang-ups, not forwards.
NOT_OFFERED = ("short_abandon", "after_hours", "ivr_hangup", "forwarded")
# Device states that mean "on a call" for an operator (app_queue's AST_DEVICE_*).
BUSY = ("in_use", "busy", "ring_in_use", "on_hold")
# The more important state wins when an operator is a member of several queues.
_RANK = {"ringing": 6, "ring_in_use": 5, "in_use": 5, "busy": 5, "on_hold": 5,
         "not_in_use": 3, "unknown": 1, "unavailable": 2, "invalid": 0}


def _rows(rows: Iterable[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows]


async def client_settings(conn: asyncpg.Connection, clients: list[str] | None
                          ) -> dict[str, dict[str, Any]]:
    """Display names and wallboard thresholds of the clients in scope, by code."""
    rows = await conn.fetch(
        """SELECT code, name, coalesce(nullif(name_ja, ''), name) AS name_ja,
                  coalesce(nullif(name_en, ''), name) AS name_en, queue, active,
                  service_level_s, service_level_target, long_wait_s, timezone,
                  repeat_window_s
             FROM clients WHERE ($1::text[] IS NULL OR code = ANY ($1)) ORDER BY code""",
        clients)
    return {r["code"]: dict(r) for r in rows}


def service_level(answered_fast: int, offered: int) -> float | None:
    """Share of offered calls answered within the client's threshold (None: no calls).

    >>> service_level(8, 10), service_level(0, 0)
    (0.8, None)
    """
    return round(answered_fast / offered, 3) if offered else None


def merge_operator(entry: dict[str, Any], row: dict[str, Any]) -> None:
    """Fold one queue membership into the operator's line: the most telling state, paused
    if paused anywhere (with why), the earliest "since" of that state, every queue."""
    entry["queues"].append(row["queue"])
    if _RANK.get(row["status"], 0) > _RANK.get(entry["status"], -1):
        entry["status"], entry["since"] = row["status"], row["status_since"]
    if row["paused"] and not entry["paused"]:
        entry["paused"], entry["paused_reason"] = True, row["paused_reason"]


async def today(conn: asyncpg.Connection, clients: list[str] | None, day_start: datetime,
                settings: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per client since ``day_start``: offered, answered, missed (with reasons), service
    level against the client's own threshold, and answered / missed by hour of the day."""
    rows = await conn.fetch(
        """SELECT c.client, c.outcome, count(*) AS n,
                  count(*) FILTER (WHERE c.outcome = 'answered'
                                   AND c.wait_s <= coalesce(cl.service_level_s, 20)) AS fast,
                  floor(extract(epoch FROM c.started_at - $2) / 3600)::int AS hour
             FROM calls c LEFT JOIN clients cl ON cl.code = c.client
            WHERE c.direction = 'inbound' AND c.started_at >= $2 AND c.ended_at IS NOT NULL
              AND c.client IS NOT NULL AND ($1::text[] IS NULL OR c.client = ANY ($1))
            GROUP BY 1, 2, 5""", clients, day_start)
    out: dict[str, dict[str, Any]] = {}
    for code, s in settings.items():
        if s["active"]:
            out[code] = _empty_day(code, s)
    for row in rows:
        entry = out.setdefault(row["client"], _empty_day(row["client"],
                                                         settings.get(row["client"], {})))
        hour = min(23, max(0, row["hour"]))
        if row["outcome"] == "answered":
            entry["answered"] += row["n"]
            entry["answered_fast"] += row["fast"]
            entry["hourly_answered"][hour] += row["n"]
        elif row["outcome"] in MISSED:
            entry["missed"] += row["n"]
            entry["missed_reasons"][row["outcome"]] = \
                entry["missed_reasons"].get(row["outcome"], 0) + row["n"]
            entry["hourly_missed"][hour] += row["n"]
        if row["outcome"] not in NOT_OFFERED:
            entry["offered"] += row["n"]
    for entry in out.values():
        entry["service_level"] = service_level(entry["answered_fast"], entry["offered"])
    return sorted(out.values(), key=lambda e: e["client"])


def _empty_day(code: str, s: dict[str, Any]) -> dict[str, Any]:
    return {"client": code, "offered": 0, "answered": 0, "answered_fast": 0, "missed": 0,
            "missed_reasons": {}, "service_level": None,
            "service_level_s": s.get("service_level_s", 20.0),
            "service_level_target": s.get("service_level_target", 0.8),
            "hourly_answered": [0] * 24, "hourly_missed": [0] * 24}


async def operators(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """One line per operator: state, since when, paused and why, and the live call they
    are on (from the ledger: answered ring attempt of a call not ended)."""
    members = await conn.fetch(
        "SELECT operator, member_name, queue, status, paused, paused_reason, status_since "
        "FROM operator_states ORDER BY operator, queue")
    on_call = {r["agent"]: dict(r) for r in await conn.fetch(
        """SELECT DISTINCT ON (r.agent) r.agent, r.linkedid, r.pbx_id, c.client,
                  c.caller_e164, c.caller_name, coalesce(s.connected_at, c.answered_at,
                  r.ended_at, r.started_at) AS talking_since
             FROM ring_attempts r
             JOIN stints s ON s.pbx_id = r.pbx_id AND s.linkedid = r.linkedid
                          AND s.seq = r.stint_seq
             JOIN calls c ON c.pbx_id = r.pbx_id AND c.linkedid = r.linkedid
            WHERE r.result = 'answered' AND s.ended_at IS NULL AND c.ended_at IS NULL
              AND c.started_at > now() - interval '1 day'
            ORDER BY r.agent, r.started_at DESC""")}
    out: dict[str, dict[str, Any]] = {}
    for row in members:
        entry = out.setdefault(row["operator"], {
            "operator": row["operator"], "member_name": row["member_name"], "queues": [],
            "status": None, "since": None, "paused": False, "paused_reason": ""})
        merge_operator(entry, dict(row))
    for agent, call in on_call.items():
        entry = out.setdefault(agent, {"operator": agent, "member_name": "", "queues": [],
                                       "status": "in_use", "since": None, "paused": False,
                                       "paused_reason": ""})
        entry["call"] = call
    return sorted(out.values(), key=lambda e: e["operator"])


async def live_calls(conn: asyncpg.Connection, clients: list[str] | None
                     ) -> list[dict[str, Any]]:
    """Inbound calls not ended, each with where it stands: ``greeting`` (not queued yet),
    ``waiting`` (in a queue) or ``talking``, and since when."""
    rows = await conn.fetch(
        f"""SELECT {CALL_FIELDS},
                   (SELECT s.queue FROM stints s WHERE s.pbx_id = c.pbx_id
                       AND s.linkedid = c.linkedid ORDER BY s.seq DESC LIMIT 1) AS queue,
                   (SELECT s.joined_at FROM stints s WHERE s.pbx_id = c.pbx_id
                       AND s.linkedid = c.linkedid AND s.result = 'waiting'
                       AND s.left_at IS NULL ORDER BY s.seq DESC LIMIT 1) AS waiting_since,
                   (SELECT s.connected_at FROM stints s WHERE s.pbx_id = c.pbx_id
                       AND s.linkedid = c.linkedid AND s.connected_at IS NOT NULL
                       AND s.ended_at IS NULL ORDER BY s.seq DESC LIMIT 1) AS talking_since,
                   (SELECT s.agent FROM stints s WHERE s.pbx_id = c.pbx_id
                       AND s.linkedid = c.linkedid AND s.connected_at IS NOT NULL
                       AND s.ended_at IS NULL ORDER BY s.seq DESC LIMIT 1) AS talking_with
              FROM calls c WHERE c.ended_at IS NULL AND c.direction = 'inbound'
               AND c.started_at > now() - interval '1 day'
               AND ($1::text[] IS NULL OR c.client = ANY ($1))
             ORDER BY c.started_at""", clients)
    out = []
    for row in rows:
        call = dict(row)
        call["state"], call["since"] = call_state(call)
        out.append(call)
    return out


def call_state(call: dict[str, Any]) -> tuple[str, Any]:
    """Where a live call stands, and since when (what the wallboard's timer counts from)."""
    if call.get("talking_since") is not None:
        return "talking", call["talking_since"]
    if call.get("waiting_since") is not None:
        return "waiting", call["waiting_since"]
    if call.get("answered_at") is not None:
        return "talking", call["answered_at"]
    return "greeting", call["started_at"]


async def queues(conn: asyncpg.Connection, clients: list[str] | None
                 ) -> list[dict[str, Any]]:
    """Callers waiting per queue and since when the longest one waits; every client's queue
    is listed, even with nobody waiting."""
    rows = await conn.fetch(
        """SELECT s.queue, count(*) AS waiting, min(s.joined_at) AS oldest_joined_at,
                  extract(epoch FROM now() - min(s.joined_at)) AS longest_wait_s
             FROM stints s JOIN calls c ON c.pbx_id = s.pbx_id AND c.linkedid = s.linkedid
            WHERE c.ended_at IS NULL AND s.result = 'waiting' AND s.left_at IS NULL
              AND c.started_at > now() - interval '1 day'
              AND ($1::text[] IS NULL OR c.client = ANY ($1))
            GROUP BY s.queue""", clients)
    found = {r["queue"]: dict(r) for r in rows}
    owners = await conn.fetch("SELECT code, queue FROM clients WHERE active "
                              "AND ($1::text[] IS NULL OR code = ANY ($1))", clients)
    out = []
    for owner in owners:
        entry = found.pop(owner["queue"], None) or {
            "queue": owner["queue"], "waiting": 0, "oldest_joined_at": None,
            "longest_wait_s": None}
        out.append({**entry, "client": owner["code"]})
    out.extend({**entry, "client": None} for entry in found.values())
    return sorted(out, key=lambda e: (e["client"] is None, e["client"] or "", e["queue"]))


async def repeat_context(conn: asyncpg.Connection, client: str, caller_e164: str,
                         current_id: int | None, window_s: float) -> dict[str, Any]:
    """What the supervisor of an escalated repeat caller needs and the short whisper no
    longer says: which call this is, the first call of the streak and its time, the call
    backs owed, the last operator who spoke with the caller."""
    last_callback = await conn.fetchval(
        "SELECT max(fulfilled_at) FROM callback_obligations WHERE client = $1 "
        "AND caller_e164 = $2 AND state = 'fulfilled'", client, caller_e164)
    streak = await conn.fetchrow(
        """SELECT count(*) AS calls, min(started_at) AS first_at FROM calls
            WHERE client = $1 AND caller_e164 = $2 AND direction = 'inbound'
              AND started_at > now() - $3::float8 * interval '1 second'
              AND ($4::timestamptz IS NULL OR started_at > $4)""",
        client, caller_e164, window_s, last_callback)
    owed = await conn.fetch(
        "SELECT id, opened_at, due_at, calls FROM callback_obligations WHERE client = $1 "
        "AND caller_e164 = $2 AND state = 'open' ORDER BY opened_at", client, caller_e164)
    last = await conn.fetchrow(
        """SELECT answered_by, started_at FROM calls WHERE client = $1 AND caller_e164 = $2
              AND direction = 'inbound' AND answered_by IS NOT NULL
              AND ($3::bigint IS NULL OR id <> $3)
            ORDER BY started_at DESC LIMIT 1""", client, caller_e164, current_id)
    return {"calls": int(streak["calls"]) if streak else 0,
            "first_at": streak["first_at"] if streak else None,
            "owed": len(owed), "owed_calls": sum(int(o["calls"]) for o in owed),
            "owed_since": owed[0]["opened_at"] if owed else None,
            "last_operator": last["answered_by"] if last else None,
            "last_operator_at": last["started_at"] if last else None}


def escalation_kind(reason: str | None, calls_in_window: int) -> str:
    """``repeat_caller`` or ``operator_escalation``: the routing policy says repeat_caller;
    a call escalated without a stated reason is a repeat caller when this is at least the
    caller's second call to the client in the window (the dialplan's own repeat rule), else
    an operator's.

    >>> escalation_kind("repeat_caller", 0), escalation_kind("complaint", 3)
    ('repeat_caller', 'operator_escalation')
    >>> escalation_kind("unspecified", 2), escalation_kind(None, 1)
    ('repeat_caller', 'operator_escalation')
    """
    if reason == "repeat_caller":
        return "repeat_caller"
    if reason in REASONS or reason == "transfer":
        return "operator_escalation"
    return "repeat_caller" if calls_in_window >= 2 else "operator_escalation"


async def alerts(conn: asyncpg.Connection, clients: list[str] | None,
                 settings: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every alert that says what it is, with a ``key`` (for acknowledgement) and ``since``
    (newest first): repeat caller, operator escalation, long wait, overdue call back,
    delivery failed.  PBX links are added by the caller (they are this process's state)."""
    out: list[dict[str, Any]] = []
    long_wait = min((s["long_wait_s"] for s in settings.values()), default=60.0)
    for alert in await ledger_alerts(conn, clients, long_wait):
        if alert["kind"] == "escalation":
            call = alert["call"]
            context = await repeat_context(
                conn, call["client"], call["caller_e164"], call["id"],
                settings.get(call["client"], {}).get("repeat_window_s", 72 * 3600)) \
                if call["client"] and call["caller_e164"] else {"calls": 1}
            by = await conn.fetchrow(
                "SELECT reason, requested_by FROM escalations WHERE pbx_id = $1 AND "
                "linkedid = $2 ORDER BY id DESC LIMIT 1", call["pbx_id"], call["linkedid"])
            reason = by["reason"] if by else call["escalation_reason"]
            kind = escalation_kind(reason, context["calls"])
            out.append({"kind": kind, "key": f"{kind}:{call['pbx_id']}:{call['linkedid']}",
                        "since": call["started_at"], "call": call, "reason": reason,
                        "requested_by": by["requested_by"] if by else None,
                        "repeat": context if kind == "repeat_caller" else None})
        elif alert["kind"] == "long_wait":
            call = alert["call"]
            limit = settings.get(call["client"], {}).get("long_wait_s", 60.0)
            waited = (datetime.now(call["joined_at"].tzinfo) - call["joined_at"]).total_seconds()
            if waited >= limit:
                out.append({"kind": "long_wait", "key": f"long_wait:{call['id']}",
                            "since": call["joined_at"], "call": call, "limit_s": limit})
        else:
            obligation = alert["obligation"]
            out.append({"kind": "overdue_callback", "key": f"overdue:{obligation['id']}",
                        "since": obligation["due_at"], "obligation": obligation})
    for row in await conn.fetch(
            """SELECT * FROM (
                   SELECT d.id, d.channel, d.attempts, d.last_error, m.client,
                          m.id AS message_id, m.caller_name, m.caller_number,
                          m.caller_e164, coalesce((SELECT max(a.finished_at)
                              FROM message_delivery_attempts a WHERE a.delivery_id = d.id),
                              d.created_at) AS failed_at
                     FROM message_deliveries d JOIN messages m ON m.id = d.message_id
                    WHERE d.state = 'failed' AND d.created_at > now() - interval '7 days'
                      AND ($1::text[] IS NULL OR m.client = ANY ($1))) f
                ORDER BY failed_at DESC LIMIT 50""", clients):
        out.append({"kind": "delivery_failed", "key": f"delivery:{row['id']}",
                    "since": row["failed_at"], "delivery": dict(row)})
    # The call flows' alerts (docs/callflows.md): no supervisor answered an escalated caller
    # (safety_net), an operator asked for help with the caller on hold (handraise).
    for alert in await open_alerts(conn, clients):
        out.append({"kind": alert["kind"], "key": f"{alert['kind']}:{alert['id']}",
                    "since": alert["raised_at"], "alert": alert})
    return out


async def acked(conn: asyncpg.Connection, keys: list[str]) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch("SELECT key, acked_by, acked_at FROM alert_acks "
                            "WHERE key = ANY ($1)", keys)
    return {r["key"]: dict(r) for r in rows}


async def ack(conn: asyncpg.Connection, key: str, user: str) -> None:
    await conn.execute(
        "INSERT INTO alert_acks (key, acked_by) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        key, user)
    await conn.execute("SELECT pg_notify('orikaeshi_calls', $1)",
                       '{"kind":"alert","ack":true}')


async def current_ring(conn: asyncpg.Connection, operator: str) -> tuple[str, str] | None:
    """(pbx, linkedid) of the call ringing or answered at the operator's phone now, or of
    the one that ended in the last two minutes (its pop stays, marked ended)."""
    row = await conn.fetchrow(
        """SELECT r.pbx_id, r.linkedid FROM ring_attempts r
             JOIN calls c ON c.pbx_id = r.pbx_id AND c.linkedid = r.linkedid
            WHERE r.agent = $1 AND r.started_at > now() - interval '1 day'
              AND (c.ended_at IS NULL OR c.ended_at > now() - interval '2 minutes')
              AND (r.result IN ('ringing', 'answered') OR c.ended_at IS NULL)
            ORDER BY r.started_at DESC LIMIT 1""", operator)
    return None if row is None else (row["pbx_id"], row["linkedid"])


async def my_rings(conn: asyncpg.Connection, pbx_id: str, linkedid: str, operator: str
                   ) -> list[dict[str, Any]]:
    return _rows(await conn.fetch(
        "SELECT started_at, ended_at, result FROM ring_attempts WHERE pbx_id = $1 "
        "AND linkedid = $2 AND agent = $3 ORDER BY started_at", pbx_id, linkedid, operator))


def pop_state(call: dict[str, Any], rings: list[dict[str, Any]], operator: str | None
              ) -> tuple[str, Any]:
    """The operator's view of a call: ``ringing`` (at my phone), ``talking`` (with me),
    ``taken`` (another operator answered it), ``ended``; and since when.

    >>> from datetime import datetime as d
    >>> t0, t1 = d(2026, 1, 1, 9), d(2026, 1, 1, 9, 1)
    >>> pop_state({"answered_by": "202", "answered_at": t1, "ended_at": None}, [], "201")
    ('taken', datetime.datetime(2026, 1, 1, 9, 1))
    >>> pop_state({"answered_by": None, "answered_at": None, "ended_at": None},
    ...           [{"started_at": t0, "result": "ringing"}], "201")[0]
    'ringing'
    """
    if call.get("answered_by") and operator and call["answered_by"] != operator:
        return "taken", call.get("answered_at")
    if call.get("ended_at") is not None:
        return "ended", call["ended_at"]
    if call.get("answered_by") == operator and call.get("answered_at") is not None:
        return "talking", call["answered_at"]
    if rings and rings[-1]["result"] == "answered":
        return "talking", rings[-1].get("ended_at") or rings[-1]["started_at"]
    if rings and rings[-1]["result"] != "ringing":
        return "missed_ring", rings[-1].get("ended_at") or rings[-1]["started_at"]
    return "ringing", rings[-1]["started_at"] if rings else call.get("started_at")


async def caller_names(conn: asyncpg.Connection, pairs: list[tuple[str, str]]
                       ) -> dict[tuple[str, str], str]:
    """The name the caller last presented to each client, for (client, number) pairs."""
    if not pairs:
        return {}
    rows = await conn.fetch(
        """SELECT DISTINCT ON (c.client, c.caller_e164) c.client, c.caller_e164, c.caller_name
             FROM calls c JOIN unnest($1::text[], $2::text[]) AS p(client, e164)
               ON c.client = p.client AND c.caller_e164 = p.e164
            WHERE c.caller_name IS NOT NULL AND c.caller_name <> ''
            ORDER BY c.client, c.caller_e164, c.started_at DESC""",
        [p[0] for p in pairs], [p[1] for p in pairs])
    return {(r["client"], r["caller_e164"]): r["caller_name"] for r in rows}
