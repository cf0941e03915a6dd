"""The monthly client report, from recordings of ../shared replayed into a real PostgreSQL:
every figure of the JSON report is recomputed here, independently, from the ledger's rows.

The recordings are re-based in time (the replay server's ``rebase_to``) into November 2026,
and the burst of 45 calls so that it straddles local midnight of 30 November in Tokyo: part
of it belongs to November's report and part to December's."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from service.callbacks.worker import CallbackWorker
from service.clients.store import load_document
from service.messages.service import NewMessage, take_message
from service.reports.monthly import monthly_report, monthly_reports
from service.reports.rules import ReportError
from service.store.callbacks_sql import cancel, report_fulfilled
from tests.conftest import trace_dir
from tests.replaying import replay

TOKYO = ZoneInfo("Asia/Tokyo")
MISSED_OUTCOMES = {"abandoned", "short_abandon", "ivr_hangup", "timeout", "no_agents",
                   "queue_full", "exit_key", "after_hours", "unknown"}

# KSL counts answered calls towards a small plan (so it runs over); MDC counts offered calls;
# WSH has no overage price.  KSL's service level threshold is 20 s (the default), MDC's 5 s.
CLIENTS = """
defaults:
  timezone: Asia/Tokyo
clients:
  KSL:
    name: Kasumi Law Office
    name_ja: 霞法律事務所
    dids: [0312345678, 0312345679]
    hours: {mon-fri: 09:00-18:00}
    queue: q-ksl
    voicemail: 1001@lab
    plan_calls: 10
    plan_counts: answered
    overage_price: 220
  MDC:
    name: Midori Clinic
    dids: [0663330001]
    hours: {mon-sat: 08:30-19:00}
    queue: q-mdc
    voicemail: 1002@lab
    plan_calls: 2
    plan_counts: offered
    overage_price: 150
    service_level: 5s
  WSH:
    name: Hoshi Web Shop
    dids: [0501234567, 0120987654]
    hours: {daily: 10:00-22:00}
    queue: q-wsh
    voicemail: 1003@lab
    plan_calls: 1000
"""

# Where t = 0 of each recording goes (Tokyo time), each on its own PBX id.
NOVEMBER_RECORDINGS = [
    ("queue_timeout_to_voicemail", datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO)),
    ("after_hours", datetime(2026, 11, 3, 21, 15, tzinfo=TOKYO)),
    ("repeat_caller_escalated", datetime(2026, 11, 5, 9, 30, tzinfo=TOKYO)),
    ("outbound_callback_answered", datetime(2026, 11, 6, 11, 0, tzinfo=TOKYO)),
    ("operator_blind_transfer_to_supervisor", datetime(2026, 11, 9, 14, 0, tzinfo=TOKYO)),
    ("queue_full", datetime(2026, 11, 10, 9, 0, tzinfo=TOKYO)),
    ("no_agents_joinempty", datetime(2026, 11, 12, 12, 0, tzinfo=TOKYO)),
    ("abandon_short", datetime(2026, 11, 13, 15, 0, tzinfo=TOKYO)),
    ("japanese_caller_names", datetime(2026, 11, 16, 10, 0, tzinfo=TOKYO)),
    ("answered_agent_hangup", datetime(2026, 10, 31, 23, 59, 58, tzinfo=TOKYO)),  # October
    # 45 calls from 23:59:55 to 00:00:05: both sides of the month's end.
    ("burst_concurrent", datetime(2026, 11, 30, 23, 59, 54, tzinfo=TOKYO)),
]


async def build_ledger(pool: asyncpg.Pool, tmp_path: Path) -> None:
    async with pool.acquire() as conn:
        await load_document(conn, CLIENTS, "clients.yaml")
    for i, (name, at) in enumerate(NOVEMBER_RECORDINGS):
        await replay(pool, tmp_path, trace_dir(name) / "ami.jsonl", pbx_id=f"pbx{i}",
                     rebase_to=at.timestamp())
    # Obligations from the ledger; nothing expires by today's clock.
    await CallbackWorker(pool, expire_grace_s=1e9).run_once()
    async with pool.acquire() as conn:
        # Messages, a reported fulfilment and an expiry, placed in November (their own
        # code stamps them with the real clock).
        for n, disposition in enumerate(("callback_requested", "urgent", "info_only")):
            taken = await take_message(conn, NewMessage(
                client="KSL", disposition=disposition, body=f"用件 {n}",
                caller_number=f"0901234000{n}", caller_name="田中太郎"))
            await conn.execute("UPDATE messages SET created_at = $2 WHERE id = $1",
                               taken["id"], datetime(2026, 11, 20, 10, n, tzinfo=TOKYO))
            if taken["obligation_id"]:
                await conn.execute("UPDATE callback_obligations SET opened_at = $2, "
                                   "due_at = $2::timestamptz + interval '1 day' WHERE id = $1",
                                   taken["obligation_id"],
                                   datetime(2026, 11, 20, 10, n, tzinfo=TOKYO))
        owed = await conn.fetch("SELECT id FROM callback_obligations WHERE state = 'open' "
                                "AND client = 'KSL' ORDER BY id")
        assert len(owed) >= 4, "the recordings leave KSL owing call backs"
        assert await report_fulfilled(conn, owed[0]["id"], None, "ksl-user", "called")
        await conn.execute("UPDATE callback_obligations SET fulfilled_at = $2 WHERE id = $1",
                           owed[0]["id"], datetime(2026, 11, 21, 12, 0, tzinfo=TOKYO))
        await conn.execute("UPDATE callback_obligations SET state = 'expired' WHERE id = $1",
                           owed[1]["id"])
        await conn.execute("UPDATE callback_obligations SET closed_at = $2 WHERE id = $1",
                           owed[1]["id"], datetime(2026, 11, 25, 0, 0, tzinfo=TOKYO))
        assert await cancel(conn, owed[3]["id"], None, "sup", "the caller withdrew")
        await conn.execute("UPDATE callback_obligations SET closed_at = $2 WHERE id = $1",
                           owed[3]["id"], datetime(2026, 11, 26, 15, 0, tzinfo=TOKYO))
        # Fulfilled only in December: still owed at November's end.
        assert await report_fulfilled(conn, owed[2]["id"], None, "ksl-user", None)
        await conn.execute("UPDATE callback_obligations SET fulfilled_at = $2 WHERE id = $1",
                           owed[2]["id"], datetime(2026, 12, 2, 9, 0, tzinfo=TOKYO))


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime, list[date]]:
    year, mon = (int(x) for x in month.split("-"))
    first = date(year, mon, 1)
    following = date(year + mon // 12, mon % 12 + 1, 1)
    days = [first + timedelta(days=i) for i in range((following - first).days)]
    return (datetime(year, mon, 1, tzinfo=zone),
            datetime(following.year, following.month, 1, tzinfo=zone), days)


async def expected_report(conn: asyncpg.Connection, client: str, month: str) -> dict[str, Any]:
    """The report's figures recomputed from the rows, without the report's code."""
    settings = await conn.fetchrow("SELECT * FROM clients WHERE code = $1", client)
    zone = ZoneInfo(settings["timezone"])
    start, end, days = month_bounds(month, zone)
    calls = [r for r in await conn.fetch("SELECT * FROM calls WHERE direction = 'inbound'")
             if r["client"] == client and start <= r["started_at"] < end]

    def missed(r: asyncpg.Record) -> bool:
        return r["outcome"] in MISSED_OUTCOMES or (
            r["outcome"] == "forwarded" and r["forward_answered"] is False)

    answered = [r for r in calls if r["outcome"] == "answered"]
    threshold = settings["service_level_s"]
    ended = [r for r in calls if r["outcome"] is not None]
    offered = len([r for r in ended if r["outcome"] != "short_abandon"])
    within = len([r for r in answered if r["wait_s"] is not None and r["wait_s"] <= threshold])
    waits = [r["wait_s"] for r in calls if r["wait_s"] is not None]
    talks = [r["talk_s"] for r in answered if r["talk_s"] is not None]
    escalated = [r for r in calls if r["escalated"]]
    counted = len(answered) if settings["plan_counts"] == "answered" else len(calls)
    over = max(0, counted - settings["plan_calls"])
    by_reason = {o: len([r for r in calls if r["outcome"] == o])
                 for o in sorted(MISSED_OUTCOMES - {"short_abandon"})}
    by_reason["forwarded_unanswered"] = len(
        [r for r in calls if r["outcome"] == "forwarded" and r["forward_answered"] is False])

    messages = [m for m in await conn.fetch("SELECT * FROM messages WHERE client = $1", client)
                if start <= m["created_at"] < end]
    delivered = await conn.fetch("SELECT DISTINCT message_id FROM message_deliveries "
                                 "WHERE state = 'delivered'")
    failed = await conn.fetch("SELECT DISTINCT message_id FROM message_deliveries "
                              "WHERE state = 'failed'")
    obligations = await conn.fetch("SELECT * FROM callback_obligations WHERE client = $1",
                                   client)

    def inside(moment: datetime | None) -> bool:
        return moment is not None and start <= moment < end

    def closed(o: asyncpg.Record) -> datetime | None:
        return {"fulfilled": o["fulfilled_at"], "expired": o["closed_at"] or o["due_at"],
                "cancelled": o["closed_at"] or o["updated_at"]}.get(o["state"])

    owed = [o for o in obligations if o["state"] != "cannot_call_back" and o["opened_at"] < end
            and (closed(o) is None or closed(o) >= end)]  # type: ignore[operator]

    def per(bucket: Any, key: Any) -> dict[str, int]:
        rows = [r for r in calls if bucket(r.get("started_at").astimezone(zone)) == key]
        return {"calls": len(rows), "answered": len([r for r in rows
                                                     if r["outcome"] == "answered"]),
                "missed": len([r for r in rows if missed(r)])}

    return {
        "client": client, "month": month, "timezone": settings["timezone"],
        "period_start": start.isoformat(), "period_end": end.isoformat(),
        "calls": len(calls),
        "in_progress": len([r for r in calls if r["outcome"] is None]),
        "outcomes": {o: len([r for r in calls if r["outcome"] == o]) for o in (
            "answered", "abandoned", "short_abandon", "ivr_hangup", "timeout", "no_agents",
            "queue_full", "exit_key", "after_hours", "forwarded", "unknown")},
        "missed": {"total": len([r for r in calls if missed(r)]),
                   "short_abandon": len([r for r in calls if r["outcome"] == "short_abandon"]),
                   "excluding_short_abandon": len([r for r in calls if missed(r)
                                                   and r["outcome"] != "short_abandon"]),
                   "by_reason": by_reason},
        "voicemails": len([r for r in calls if r["voicemail_left"]]),
        "forwarded_answered": len([r for r in calls if r["outcome"] == "forwarded"
                                   and r["forward_answered"] is True]),
        "forwarded_unanswered": len([r for r in calls if r["outcome"] == "forwarded"
                                     and r["forward_answered"] is False]),
        "client_name_ja": settings["name_ja"] or settings["name"],
        "client_name_en": settings["name_en"] or settings["name"],
        "service_level": {"threshold_s": threshold, "answered_within": within,
                          "offered": offered,
                          "percent": round(100 * within / offered, 1) if offered else None},
        "wait_avg_s": round(sum(waits) / len(waits), 1) if waits else None,
        "wait_max_s": round(max(waits), 1) if waits else None,
        "talk_avg_s": round(sum(talks) / len(talks), 1) if talks else None,
        "escalations": {
            "total": len(escalated),
            "repeat_callers": len([r for r in escalated
                                   if r["escalation_reason"] == "repeat_caller"]),
            "operator": {reason: len([r for r in escalated if r["escalation_reason"] == reason])
                         for reason in ("complaint", "complaint_naming_operator",
                                        "payment_dispute", "other")},
            "other": {reason: len([r for r in escalated if r["escalation_reason"] == reason])
                      for reason in {r["escalation_reason"] for r in escalated} - {
                          "repeat_caller", "complaint", "complaint_naming_operator",
                          "payment_dispute", "other"}}},
        "messages": {"taken": len(messages),
                     "delivered": len([m for m in messages
                                       if m["id"] in {d["message_id"] for d in delivered}]),
                     "delivery_failed": len([m for m in messages
                                             if m["id"] in {d["message_id"] for d in failed}]),
                     "by_disposition": {d: len([m for m in messages if m["disposition"] == d])
                                        for d in ("callback_requested", "urgent", "info_only")}},
        "callbacks": {
            "opened": len([o for o in obligations if o["state"] != "cannot_call_back"
                           and inside(o["opened_at"])]),
            "cannot_call_back": len([o for o in obligations if o["state"] == "cannot_call_back"
                                     and inside(o["opened_at"])]),
            "fulfilled_verified": len([o for o in obligations if o["fulfilment"] == "verified"
                                       and inside(o["fulfilled_at"])]),
            "fulfilled_reported": len([o for o in obligations if o["fulfilment"] == "reported"
                                       and inside(o["fulfilled_at"])]),
            "expired": len([o for o in obligations if o["state"] == "expired"
                            and inside(closed(o))]),
            "cancelled": len([o for o in obligations if o["state"] == "cancelled"
                              and inside(closed(o))]),
            "still_owed_at_month_end": len(owed)},
        "plan": {"plan_calls": settings["plan_calls"], "counts": settings["plan_counts"],
                 "counted_calls": counted, "overage_calls": over,
                 "overage_price": settings["overage_price"],
                 "overage_amount": over * settings["overage_price"]
                 if settings["overage_price"] is not None else None},
        "by_day": [{"date": d.isoformat(), **per(lambda t: t.date(), d)} for d in days],
        "by_hour": [{"hour": h, **per(lambda t: t.hour, h)} for h in range(24)],
    }


def assert_figures(report: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if isinstance(value, dict):
            for sub, figure in value.items():
                assert report[key][sub] == figure, f"{key}.{sub}"
        else:
            assert report[key] == value, key


async def test_every_figure_matches_the_ledger_rows(pool, tmp_path) -> None:
    await build_ledger(pool, tmp_path)
    async with pool.acquire() as conn:
        reports = await monthly_reports(conn, "2026-11")
        assert [r["client"] for r in reports] == ["KSL", "MDC", "WSH"]
        for report in reports:
            assert_figures(report, await expected_report(conn, report["client"], "2026-11"))
        for client in ("KSL", "MDC", "WSH"):  # December: the burst's second half
            assert_figures(await monthly_report(conn, client, "2026-12"),
                           await expected_report(conn, client, "2026-12"))
    ksl, mdc, wsh = reports
    # What the recordings hold, so the comparison above is not vacuous.
    assert ksl["outcomes"]["answered"] > ksl["plan"]["plan_calls"]
    assert ksl["plan"]["overage_calls"] == ksl["outcomes"]["answered"] - 10 > 0
    assert ksl["plan"]["overage_amount"] == ksl["plan"]["overage_calls"] * 220
    assert mdc["plan"]["counted_calls"] == mdc["calls"] and mdc["plan"]["overage_calls"] > 0
    assert wsh["outcomes"]["short_abandon"] >= 1 and wsh["outcomes"]["no_agents"] == 1
    assert ksl["outcomes"]["timeout"] == 1 and ksl["outcomes"]["after_hours"] == 1
    # The recordings' escalations carry no reason (their AGI predates ESCALATION_REASON): the
    # ledger says "unspecified" for the repeat caller and "transfer" for the blind transfer.
    assert ksl["escalations"]["other"] == {"unspecified": 1, "transfer": 1}
    assert ksl["voicemails"] >= 2
    assert mdc["outcomes"]["queue_full"] >= 1
    assert ksl["messages"]["taken"] == 3 and ksl["callbacks"]["fulfilled_reported"] == 1
    assert ksl["callbacks"]["fulfilled_verified"] == 1 and ksl["callbacks"]["expired"] == 1
    assert ksl["callbacks"]["cancelled"] == 1
    assert ksl["callbacks"]["still_owed_at_month_end"] >= 1
    assert set(ksl["outcomes"]) == {"answered", "abandoned", "short_abandon", "ivr_hangup",
                                    "timeout", "no_agents", "queue_full", "exit_key",
                                    "after_hours", "forwarded", "unknown"}
    assert "20" in ksl["service_level"]["definition"]["ja"]
    assert mdc["service_level"]["threshold_s"] == 5.0


async def test_the_month_ends_at_local_midnight(pool, tmp_path) -> None:
    await build_ledger(pool, tmp_path)
    async with pool.acquire() as conn:
        burst = await conn.fetch("SELECT started_at, client FROM calls WHERE pbx_id = 'pbx10' "
                                 "AND direction = 'inbound'")
        midnight = datetime(2026, 12, 1, tzinfo=TOKYO)
        before = [r for r in burst if r["started_at"] < midnight]
        after = [r for r in burst if r["started_at"] >= midnight]
        assert before and after, "the burst straddles local midnight"
        october = await conn.fetch("SELECT started_at FROM calls WHERE pbx_id = 'pbx9'")
        reports = {m: {r["client"]: r for r in await monthly_reports(conn, m)}
                   for m in ("2026-10", "2026-11", "2026-12")}
    assert sum(r["calls"] for r in reports["2026-12"].values()) == len(after)
    assert reports["2026-12"]["KSL"]["by_day"][0]["calls"] == \
        len([r for r in after if r["client"] == "KSL"])
    assert reports["2026-11"]["KSL"]["by_day"][29]["calls"] == \
        len([r for r in before if r["client"] == "KSL"])
    assert reports["2026-11"]["KSL"]["by_hour"][23]["calls"] >= len(
        [r for r in before if r["client"] == "KSL"])
    # The October call started 2 s before local midnight of 1 November: October's (UTC
    # would put it in October too, but 15:00 UTC on 31 October, not midnight).
    assert october and reports["2026-10"]["KSL"]["calls"] == 1
    assert reports["2026-11"]["KSL"]["period_start"] == "2026-11-01T00:00:00+09:00"
    total = sum(r["calls"] for m in reports.values() for r in m.values())
    async with pool.acquire() as conn:
        assert total == await conn.fetchval("SELECT count(*) FROM calls "
                                            "WHERE direction = 'inbound'")


async def test_bad_month_or_client_is_a_clear_error(pool) -> None:
    async with pool.acquire() as conn:
        await load_document(conn, CLIENTS, "clients.yaml")
        with pytest.raises(ReportError, match="not a month"):
            await monthly_report(conn, "KSL", "2026-13")
        with pytest.raises(ReportError, match="no client NOPE"):
            await monthly_report(conn, "NOPE", "2026-11")
        empty = await monthly_report(conn, "KSL", "2026-11",
                                     now=datetime(2026, 12, 1, tzinfo=UTC))
    assert empty["calls"] == 0 and empty["service_level"]["percent"] is None
    assert len(empty["by_day"]) == 30 and empty["plan"]["overage_amount"] == 0
