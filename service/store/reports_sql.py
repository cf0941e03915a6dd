"""SQL of the monthly client report: aggregates over the ledger's rows, done in PostgreSQL.

Every statement takes a list of (client, period start, period end, time zone, service-level
threshold) as parallel arrays, so the report of one client and of every client at once are
the same statements (``unnest`` joined to ``calls`` on ``calls_client_started``).  Rows come
back grouped small (by outcome and facts, by local day and hour); service/reports/monthly.py
adds them up with the pure rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.clients.model import Client


@dataclass(frozen=True)
class Scope:
    client: str
    start: datetime
    end: datetime
    timezone: str
    threshold_s: float


PERIODS = """
WITH p AS (SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::text[],
                                $5::float8[]) AS p(client, start_at, end_at, tz, threshold))
"""

# One pass over the period's inbound calls, three groupings (GROUPING SETS): by outcome and
# the facts the report splits calls by (kind 0), by local day (kind 1), by local hour
# (kind 2).  The outer bounds on started_at let the planner read only the periods' range
# (calls_started) when it reports on every client at once, instead of the whole ledger.
CALL_FIGURES = PERIODS + """
, c AS (
    SELECT p.client, p.threshold, c.outcome, c.forward_answered, c.escalated,
           c.escalation_reason, c.voicemail_left, c.wait_s, c.talk_s,
           (c.started_at AT TIME ZONE p.tz) AS local_time
      FROM p JOIN calls c ON c.client = p.client AND c.started_at >= p.start_at
                         AND c.started_at < p.end_at AND c.direction = 'inbound'
     WHERE c.started_at >= (SELECT min(start_at) FROM p)
       AND c.started_at < (SELECT max(end_at) FROM p)
)
SELECT client,
       CASE WHEN GROUPING(outcome) = 0 THEN 0 WHEN GROUPING(local_time::date) = 0 THEN 1
            ELSE 2 END AS kind,
       outcome, forward_answered, escalated, escalation_reason, voicemail_left,
       local_time::date AS day, extract(hour FROM local_time)::int AS hour,
       count(*) AS calls,
       count(*) FILTER (WHERE outcome = 'answered') AS answered,
       count(*) FILTER (WHERE outcome = ANY ($6::text[])
                        OR (outcome = 'forwarded' AND forward_answered = false)) AS missed,
       count(*) FILTER (WHERE outcome = 'answered' AND wait_s <= threshold) AS within,
       coalesce(sum(wait_s), 0) AS wait_sum, count(wait_s) AS wait_n, max(wait_s) AS wait_max,
       coalesce(sum(talk_s) FILTER (WHERE outcome = 'answered'), 0) AS talk_sum,
       count(talk_s) FILTER (WHERE outcome = 'answered') AS talk_n
  FROM c
 GROUP BY GROUPING SETS (
     (client, outcome, forward_answered, escalated, escalation_reason, voicemail_left),
     (client, local_time::date),
     (client, extract(hour FROM local_time)::int))
"""

MESSAGES = PERIODS + """
SELECT p.client, m.disposition, count(*) AS taken,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM message_deliveries d
                                       WHERE d.message_id = m.id AND d.state = 'delivered'))
           AS delivered,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM message_deliveries d
                                       WHERE d.message_id = m.id AND d.state = 'failed'))
           AS failed
  FROM p JOIN messages m ON m.client = p.client AND m.created_at >= p.start_at
                        AND m.created_at < p.end_at
 GROUP BY 1, 2
"""

# Obligations: what happened to them inside the period, and what was still owed at its end.
# An obligation stops being open at fulfilled_at (fulfilled) or closed_at (expired,
# cancelled; set by a trigger, migration 0010; rows closed before it fall back to due_at /
# updated_at).
CALLBACKS = PERIODS + """
, o AS (
    SELECT o.*, CASE o.state WHEN 'fulfilled' THEN o.fulfilled_at
                             WHEN 'expired' THEN coalesce(o.closed_at, o.due_at)
                             WHEN 'cancelled' THEN coalesce(o.closed_at, o.updated_at)
                END AS ended_at
      FROM callback_obligations o WHERE o.client = ANY ($1::text[])
)
SELECT p.client,
       count(*) FILTER (WHERE o.state <> 'cannot_call_back' AND o.opened_at >= p.start_at
                        AND o.opened_at < p.end_at) AS opened,
       count(*) FILTER (WHERE o.state = 'cannot_call_back' AND o.opened_at >= p.start_at
                        AND o.opened_at < p.end_at) AS cannot_call_back,
       count(*) FILTER (WHERE o.fulfilment = 'verified' AND o.ended_at >= p.start_at
                        AND o.ended_at < p.end_at) AS fulfilled_verified,
       count(*) FILTER (WHERE o.fulfilment = 'reported' AND o.ended_at >= p.start_at
                        AND o.ended_at < p.end_at) AS fulfilled_reported,
       count(*) FILTER (WHERE o.state = 'expired' AND o.ended_at >= p.start_at
                        AND o.ended_at < p.end_at) AS expired,
       count(*) FILTER (WHERE o.state = 'cancelled' AND o.ended_at >= p.start_at
                        AND o.ended_at < p.end_at) AS cancelled,
       count(*) FILTER (WHERE o.state <> 'cannot_call_back' AND o.opened_at < p.end_at
                        AND (o.ended_at IS NULL OR o.ended_at >= p.end_at))
           AS still_owed_at_month_end
  FROM p JOIN o ON o.client = p.client
 GROUP BY 1
"""

CLIENT_SETTINGS = """
SELECT code, name, name_ja, name_en, timezone, plan_calls, plan_counts, plan_outbound,
       overage_price,
       service_level_s, short_abandon_s, report_contacts, report_emails, report_webhook,
       push_mode, push_every_s, push_daily_at, retention_s, active
  FROM clients WHERE ($1::text[] IS NULL OR code = ANY ($1)) ORDER BY code
"""


def _arrays(scopes: list[Scope]) -> tuple[list[Any], ...]:
    return ([s.client for s in scopes], [s.start for s in scopes], [s.end for s in scopes],
            [s.timezone for s in scopes], [s.threshold_s for s in scopes])


async def call_figures(conn: asyncpg.Connection, scopes: list[Scope],
                       missed: list[str]) -> list[asyncpg.Record]:
    """Rows of kind 0 (by outcome and facts), 1 (by local day), 2 (by local hour)."""
    return await conn.fetch(CALL_FIGURES, *_arrays(scopes), missed)


async def message_groups(conn: asyncpg.Connection, scopes: list[Scope]) -> list[asyncpg.Record]:
    return await conn.fetch(MESSAGES, *_arrays(scopes))


async def callback_figures(conn: asyncpg.Connection,
                           scopes: list[Scope]) -> list[asyncpg.Record]:
    return await conn.fetch(CALLBACKS, *_arrays(scopes))


# What else the month held, per client: outbound usage (the outbound_usage function of
# migration 0012: calls the PBX saw, decisions of the policy), messages sent to callees,
# 手上げ (count, hold and help seconds) and complaints (a client sees only their number).
OTHER_FIGURES = PERIODS + """
SELECT p.client, u.calls AS outbound_calls, u.answered AS outbound_answered,
       u.talk_s AS outbound_talk_s, u.allowed AS outbound_allowed,
       u.refused AS outbound_refused, u.overridden AS outbound_overridden,
       (SELECT count(*) FROM callee_messages m WHERE m.client = p.client AND m.state = 'sent'
           AND m.sent_at >= p.start_at AND m.sent_at < p.end_at) AS messages_sent,
       h.handraises, h.hold_s, h.hold_max_s, h.help_s,
       (SELECT count(*) FROM complaints k WHERE k.client = p.client
           AND k.created_at >= p.start_at AND k.created_at < p.end_at) AS complaints
  FROM p
 CROSS JOIN LATERAL outbound_usage(p.client, p.start_at, p.end_at) u
 CROSS JOIN LATERAL (
    SELECT count(*) AS handraises, coalesce(sum(hold_s), 0) AS hold_s,
           max(hold_s) AS hold_max_s, coalesce(sum(help_s), 0) AS help_s
      FROM handraises x WHERE x.client = p.client AND x.held_at >= p.start_at
       AND x.held_at < p.end_at) h
"""


async def other_figures(conn: asyncpg.Connection, scopes: list[Scope]) -> list[asyncpg.Record]:
    return await conn.fetch(OTHER_FIGURES, *_arrays(scopes))


async def client_settings(conn: asyncpg.Connection,
                          clients: list[str] | None) -> list[asyncpg.Record]:
    return await conn.fetch(CLIENT_SETTINGS, clients)


async def save_report_settings(conn: asyncpg.Connection, client: Client) -> None:
    """The clients file's report settings onto the client's row (called by load_document)."""
    await conn.execute(
        """UPDATE clients SET name_ja = $2, name_en = $3, plan_counts = $4, overage_price = $5,
               service_level_s = $6, report_contacts = $7, push_mode = $8, push_every_s = $9,
               push_daily_at = $10, retention_s = $11, plan_outbound = $12 WHERE code = $1""",
        client.code, client.name_ja, client.name_en, client.plan_counts, client.overage_price,
        client.service_level_s, list(client.report_contacts), client.push_mode,
        client.push_every_s, client.push_daily_at, client.retention_s, client.plan_outbound)


async def audit(conn: asyncpg.Connection, actor: str, action: str, client: str | None,
                detail: str | None = None) -> None:
    """Who viewed or exported which client's data (data_access_audit)."""
    await conn.execute("INSERT INTO data_access_audit (actor, action, client, detail) "
                       "VALUES ($1, $2, $3, $4)", actor, action, client, detail)


async def audit_rows(conn: asyncpg.Connection, *, client: str | None = None,
                     limit: int = 200) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, at, actor, action, client, detail FROM data_access_audit "
        "WHERE ($1::text IS NULL OR client = $1) ORDER BY at DESC, id DESC LIMIT $2",
        client, limit)
    return [dict(r) for r in rows]


async def missed_calls(conn: asyncpg.Connection, scope: Scope,
                       missed: list[str]) -> list[dict[str, Any]]:
    """The period's missed calls, local times, with the state of the call back they opened
    (for the xlsx's list)."""
    rows = await conn.fetch(
        """SELECT c.started_at AT TIME ZONE $4 AS started_at, c.caller_number, c.caller_e164,
                  c.caller_name, c.outcome, c.wait_s, c.voicemail_left,
                  o.state AS callback_state
             FROM calls c
             LEFT JOIN obligation_calls oc ON oc.pbx_id = c.pbx_id AND oc.linkedid = c.linkedid
             LEFT JOIN callback_obligations o ON o.id = oc.obligation_id
            WHERE c.client = $1 AND c.started_at >= $2 AND c.started_at < $3
              AND c.direction = 'inbound'
              AND (c.outcome = ANY ($5::text[])
                   OR (c.outcome = 'forwarded' AND c.forward_answered = false))
            ORDER BY c.started_at""",
        scope.client, scope.start, scope.end, scope.timezone, missed)
    return [dict(r) for r in rows]


async def delivery_failures(conn: asyncpg.Connection, *, clients: list[str] | None = None,
                            limit: int = 200) -> list[dict[str, Any]]:
    """The ``delivery_failures`` view (migration 0010): what the wallboard shows as alerts."""
    rows = await conn.fetch(
        "SELECT * FROM delivery_failures WHERE ($1::text[] IS NULL OR client = ANY ($1)) "
        "ORDER BY coalesce(last_attempt_at, created_at) DESC LIMIT $2", clients, limit)
    return [dict(r) for r in rows]
