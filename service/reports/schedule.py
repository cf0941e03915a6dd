"""What goes to the client without anyone asking: the monthly report on the 1st (client's
time zone), each missed call, voicemail and message as it happens (immediately, as a digest
every N minutes, or daily), and reminders of overdue call backs.

Everything is queued into the delivery outbox (service/reports/outbox.py) and sent by the
message DeliveryWorker with its retries and tracking.  Every step is idempotent and safe on
several instances at once (unique keys, ``ON CONFLICT``, ``FOR UPDATE SKIP LOCKED``).  The
clock is a parameter: tests drive the schedule with their own.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from service.clock import Clock, utc_now
from service.localtime import local_text
from service.logs import get_logger
from service.reports import outbox, render
from service.reports.labels import label
from service.reports.monthly import monthly_report
from service.reports.rules import digest_cutoff, parse_month, push_kind, report_due
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)

# -- the monthly report ---------------------------------------------------------------------

async def queue_monthly_reports(pool: asyncpg.Pool, now: datetime, *, company: str = "",
                                font: str = "", limit: int | None = None
                                ) -> list[tuple[str, str]]:
    """Queue the report of the month before for every active client whose 1st has come
    (its own time zone) and whose report is not queued yet (at most ``limit`` of them: the
    worker does a few per round so that pushes are not held up on the 1st); returns
    (client, month)."""
    async with pool.acquire(timeout=5) as conn:
        clients = await conn.fetch(
            """SELECT code, timezone FROM clients c WHERE active
                 AND (report_webhook IS NOT NULL OR cardinality(report_emails) > 0
                      OR cardinality(report_contacts) > 0)""")
        due = [(c["code"], month) for c in clients
               if (month := report_due(now, c["timezone"])) is not None]
        done = {(r["client"], f"{r['month']:%Y-%m}") for r in await conn.fetch(
            "SELECT client, month FROM monthly_reports WHERE client = ANY ($1)",
            [c for c, _ in due])}
    queued: list[tuple[str, str]] = []
    for client, month in due:
        if (client, month) in done:
            continue
        if limit is not None and len(queued) >= limit:
            break
        async with pool.acquire(timeout=5) as conn:
            report = await monthly_report(conn, client, month, now=now)
        # Rendering takes a moment of CPU: off the event loop.
        pdf = await asyncio.to_thread(render.to_pdf, report, "ja", company, font)
        async with pool.acquire(timeout=5) as conn, conn.transaction():
            claimed = await conn.fetchval(
                "INSERT INTO monthly_reports (client, month, deliveries) "
                "VALUES ($1, $2, 0) ON CONFLICT DO NOTHING RETURNING client",
                client, parse_month(month))
            if claimed is None:
                continue  # another instance queued it meanwhile
            count = await outbox.enqueue(
                conn, client, "monthly_report",
                subject=f"[{client}] {label('title', 'ja')} {month} / "
                        f"{label('title', 'en')} {month}",
                text_body=_monthly_text(report, company),
                payload={"month": month, "report": report},
                attachment=pdf, attachment_name=f"orikaeshi-{client}-{month}.pdf",
                contacts=True)
            await conn.execute("UPDATE monthly_reports SET deliveries = $3 WHERE client = $1 "
                               "AND month = $2", client, parse_month(month), count)
        log.info("monthly_report_queued", client=client, month=month, deliveries=count)
        queued.append((client, month))
    return queued


def _monthly_text(report: dict[str, Any], company: str) -> str:
    sl = report["service_level"]["percent"]
    plan = report["plan"]
    return (f"{report['client_name_ja']} 御中\n\n"
            f"{report['month']} の月次受電報告書を添付いたします。\n"
            f"Please find attached the monthly call report for {report['month']}.\n\n"
            f"着信数 / calls: {report['calls']}\n"
            f"応答 / answered: {report['outcomes']['answered']}\n"
            f"不在 / missed: {report['missed']['total']}\n"
            f"サービスレベル / service level: {'—' if sl is None else f'{sl} %'}\n"
            f"超過件数 / over plan: {plan['overage_calls']}\n"
            f"月末時点の未対応折り返し / call backs still owed: "
            f"{report['callbacks']['still_owed_at_month_end']}\n\n{company}\n")


# -- pushes ---------------------------------------------------------------------------------

NEW_CALLS = """
SELECT c.id, c.pbx_id, c.linkedid, c.client, c.caller_number, c.caller_e164, c.caller_name,
       c.started_at, c.ended_at, c.outcome, c.forward_answered, c.voicemail_left,
       c.voicemail_box, c.direction, cl.push_mode
  FROM calls c LEFT JOIN clients cl ON cl.code = c.client
 WHERE c.id > $1 ORDER BY c.id LIMIT $2
"""


async def collect_pushes(conn: asyncpg.Connection, now: datetime, *, batch: int = 2000,
                         open_for: timedelta = timedelta(days=1)) -> int:
    """Turn newly ended calls (and, for clients on a digest, new messages) into push items.
    The calls mark only moves past a call once it has ended (or has been open longer than
    ``open_for``: its end will never be seen), so a long call is not skipped."""
    added = 0
    async with conn.transaction():
        mark = await conn.fetchval(
            "SELECT value FROM worker_marks WHERE name = 'push_calls' FOR UPDATE")
        rows = await conn.fetch(NEW_CALLS, mark or 0, batch)
        new_mark = mark or 0
        holding = False
        for row in rows:
            if row["ended_at"] is None and row["started_at"] > now - open_for:
                holding = True
            if not holding:
                new_mark = row["id"]
            if row["ended_at"] is None or row["direction"] != "inbound" or not row["client"] \
                    or row["push_mode"] in (None, "off"):
                continue
            if row["ended_at"] < now - open_for:
                continue  # not news: a call imported with a handover, or a long outage
            kind = push_kind(row["outcome"], row["forward_answered"], row["caller_e164"],
                             row["voicemail_left"])
            if kind is None:
                continue
            item = {"kind": kind, "started_at": row["started_at"].isoformat(),
                    "caller_number": row["caller_number"], "caller_e164": row["caller_e164"],
                    "caller_name": row["caller_name"], "outcome": row["outcome"],
                    "voicemail_box": row["voicemail_box"],
                    "call": {"pbx": row["pbx_id"], "linkedid": row["linkedid"]}}
            done = await conn.execute(
                "INSERT INTO push_items (client, kind, ref, at, item) "
                "VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (kind, ref) DO NOTHING",
                row["client"], kind, f"{row['pbx_id']}/{row['linkedid']}", row["started_at"],
                _json(item))
            added += done.endswith(" 1")
        await conn.execute("UPDATE worker_marks SET value = $1 WHERE name = 'push_calls'",
                           new_mark)
        mark = await conn.fetchval(
            "SELECT value FROM worker_marks WHERE name = 'push_messages' FOR UPDATE")
        messages = await conn.fetch(
            """SELECT m.id, m.client, m.caller_number, m.caller_e164, m.caller_name,
                      m.disposition, m.body, m.taken_by, m.created_at, cl.push_mode
                 FROM messages m LEFT JOIN clients cl ON cl.code = m.client
                WHERE m.id > $1 ORDER BY m.id LIMIT $2""", mark or 0, batch)
        for m in messages:
            # Clients on immediate get each message at once as 受電報告 (take_message).
            if m["push_mode"] in ("digest", "daily") and m["created_at"] >= now - open_for:
                item = {"kind": "message", "taken_at": m["created_at"].isoformat(),
                        "caller_number": m["caller_number"], "caller_e164": m["caller_e164"],
                        "caller_name": m["caller_name"], "disposition": m["disposition"],
                        "body": m["body"], "taken_by": m["taken_by"], "message_id": m["id"]}
                done = await conn.execute(
                    "INSERT INTO push_items (client, kind, ref, at, item) VALUES "
                    "($1, 'message', $2, $3, $4::jsonb) ON CONFLICT (kind, ref) DO NOTHING",
                    m["client"], str(m["id"]), m["created_at"], _json(item))
                added += done.endswith(" 1")
        if messages:
            await conn.execute("UPDATE worker_marks SET value = $1 WHERE name = "
                               "'push_messages'", messages[-1]["id"])
    return added


async def mark_pushed(conn: asyncpg.Connection, client: str, kind: str, ref: str,
                      at: datetime, now: datetime) -> None:
    """Record an item as already pushed (history that arrives with a handover was reported
    to the client by the company it comes from)."""
    await conn.execute(
        "INSERT INTO push_items (client, kind, ref, at, item, sent_at) "
        "VALUES ($1, $2, $3, $4, '{\"imported\": true}'::jsonb, $5) "
        "ON CONFLICT (kind, ref) DO NOTHING", client, kind, ref, at, now)


def _json(data: Any) -> str:
    import json

    return json.dumps(data, ensure_ascii=False, default=str)


async def send_pushes(conn: asyncpg.Connection, now: datetime) -> int:
    """Queue deliveries for unsent push items that are due by each client's push mode;
    returns how many deliveries were queued."""
    queued = 0
    clients = await conn.fetch(
        """SELECT cl.code, cl.push_mode, cl.push_every_s, cl.push_daily_at, cl.timezone,
                  min(p.at) AS oldest
             FROM push_items p JOIN clients cl ON cl.code = p.client
            WHERE p.sent_at IS NULL GROUP BY cl.code""")
    for client in clients:
        cutoff = digest_cutoff(client["push_mode"], client["oldest"], now,
                               every_s=client["push_every_s"],
                               daily_at=client["push_daily_at"], timezone=client["timezone"])
        if cutoff is None:
            continue
        async with conn.transaction():
            items = await conn.fetch(
                "SELECT id, kind, item FROM push_items WHERE client = $1 AND sent_at IS NULL "
                "AND at <= $2 ORDER BY at, id FOR UPDATE SKIP LOCKED", client["code"], cutoff)
            if not items:
                continue
            parsed = [_loads(i["item"]) for i in items]
            if client["push_mode"] == "immediate":
                for item in parsed:
                    queued += await outbox.enqueue(
                        conn, client["code"], "push", subject=_push_subject(client["code"], item),
                        text_body=_push_text(item, client["timezone"]), payload={"item": item})
            else:
                queued += await outbox.enqueue(
                    conn, client["code"], "digest",
                    subject=f"[{client['code']}] 不在着信・伝言のまとめ / digest ({len(parsed)})",
                    text_body="\n\n".join(_push_text(i, client["timezone"]) for i in parsed),
                    payload={"items": parsed, "until": cutoff.isoformat()})
            await conn.execute("UPDATE push_items SET sent_at = $2 WHERE id = ANY ($1)",
                               [i["id"] for i in items], now)
    return queued


def _loads(value: Any) -> dict[str, Any]:
    import json

    return json.loads(value) if isinstance(value, str) else dict(value)


_KIND_TEXT = {"missed_call": "不在着信 / missed call", "voicemail": "留守番電話 / voicemail",
              "message": "受電報告 / message"}


def _push_subject(client: str, item: dict[str, Any]) -> str:
    return (f"[{client}] {_KIND_TEXT[item['kind']]} {item.get('caller_name') or ''} "
            f"{item.get('caller_number') or ''}").strip()


def _push_text(item: dict[str, Any], tz: str | None) -> str:
    """One item of a push e-mail; its time in the client's zone (the payload keeps ISO).

    >>> print(_push_text({"kind": "missed_call", "started_at": "2026-11-22T02:27:07+00:00",
    ...                   "caller_number": "09011112222"}, "Asia/Tokyo"))
    不在着信 / missed call
    日時 / at: 2026-11-22 11:27 JST
    電話番号 / number: 09011112222
    お名前 / caller: -
    """
    at = item.get("started_at") or item.get("taken_at")
    lines = [_KIND_TEXT[item["kind"]],
             f"日時 / at: {local_text(datetime.fromisoformat(at), tz) if at else '-'}",
             f"電話番号 / number: {item.get('caller_number') or '(非通知 / withheld)'}",
             f"お名前 / caller: {item.get('caller_name') or '-'}"]
    if item["kind"] == "message":
        lines.append(f"{item.get('body')}")
    return "\n".join(lines)


# -- reminders of overdue call backs ----------------------------------------------------------

async def remind_overdue(conn: asyncpg.Connection, now: datetime) -> int:
    """One reminder per client listing its call backs that became overdue since the last
    reminder; each obligation is reminded once.  Returns the deliveries queued."""
    queued = 0
    async with conn.transaction():
        rows = await conn.fetch(
            """WITH due AS (
                   SELECT o.id FROM callback_obligations o
                    WHERE o.state = 'open' AND o.due_at < $1
                      AND NOT EXISTS (SELECT 1 FROM callback_reminders r
                                       WHERE r.obligation_id = o.id)
                    ORDER BY o.due_at LIMIT 1000
               ), marked AS (
                   INSERT INTO callback_reminders (obligation_id, reminded_at)
                   SELECT id, $1 FROM due ON CONFLICT DO NOTHING RETURNING obligation_id
               )
               SELECT o.id, o.client, o.caller_number, o.caller_e164, o.opened_at, o.due_at,
                      o.calls, cl.timezone
                 FROM callback_obligations o JOIN marked m ON m.obligation_id = o.id
                 LEFT JOIN clients cl ON cl.code = o.client
               ORDER BY o.client, o.due_at""", now)
        by_client: dict[str, list[dict[str, Any]]] = {}
        zones = {row["client"]: row["timezone"] for row in rows}
        for row in rows:
            by_client.setdefault(row["client"], []).append(
                {"obligation_id": row["id"], "caller_number": row["caller_number"],
                 "caller_e164": row["caller_e164"], "opened_at": row["opened_at"].isoformat(),
                 "due_at": row["due_at"].isoformat(), "calls": row["calls"]})
        for client, owed in by_client.items():
            queued += await outbox.enqueue(
                conn, client, "reminder",
                subject=f"[{client}] 折り返し期限超過 {len(owed)} 件 / "
                        f"{len(owed)} overdue call back(s)",
                text_body="\n".join(
                    f"{o['caller_number'] or o['caller_e164']}  期限 / due "
                    f"{local_text(datetime.fromisoformat(o['due_at']), zones[client])}  "
                    f"着信 / calls {o['calls']}" for o in owed),
                payload={"obligations": owed})
            log.info("callbacks_reminded", client=client, obligations=len(owed))
    return queued


class ReportWorker:
    """The loop that runs the three in the service (cleanup context ``reports_ctx``)."""

    def __init__(self, pool: asyncpg.Pool, *, clock: Clock = utc_now, interval_s: float = 30.0,
                 company: str = "", font: str = "", reports_per_round: int = 5) -> None:
        self.pool = pool
        self.reports_per_round = reports_per_round
        self.clock = clock
        self.interval_s = interval_s
        self.company = company
        self.font = font

    async def run_once(self) -> dict[str, int]:
        now = self.clock()
        reports = await queue_monthly_reports(self.pool, now, company=self.company,
                                              font=self.font, limit=self.reports_per_round)
        async with self.pool.acquire(timeout=5) as conn:
            items = await collect_pushes(conn, now)
            pushes = await send_pushes(conn, now)
            reminders = await remind_overdue(conn, now)
        if items or pushes:
            log.info("pushes", items=items, deliveries=pushes)
        return {"reports": len(reports), "push_items": items, "push_deliveries": pushes,
                "reminders": reminders}

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except TRANSIENT_ERRORS as exc:
                log.warning("report_worker_waiting", error=str(exc) or type(exc).__name__)
            await asyncio.sleep(self.interval_s)


__all__ = ["ReportWorker", "collect_pushes", "queue_monthly_reports", "remind_overdue",
           "send_pushes"]
