"""The monthly client report (docs/reports.md): figures from the ledger's rows for one month
in each client's time zone.  PostgreSQL does the counting (service/store/reports_sql.py);
this module adds the small groups up with the pure rules of service/reports/rules.py."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.ledger.model import MISSED, OUTCOMES
from service.reports.rules import (
    SERVICE_LEVEL_DEFINITION,
    Period,
    ReportError,
    mean,
    month_period,
    plan_usage,
    service_level,
)
from service.store import reports_sql
from service.store.reports_sql import Scope

ESCALATION_REASONS = ("complaint", "complaint_naming_operator", "payment_dispute", "other")
MISSED_REASONS = tuple(o for o in OUTCOMES if o in MISSED and o != "short_abandon")
DISPOSITIONS = ("callback_requested", "urgent", "info_only")
SCHEMA_VERSION = 1


def _empty(period: Period, settings: asyncpg.Record) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "client": settings["code"],
        "client_name": settings["name"],
        "client_name_ja": settings["name_ja"] or settings["name"],
        "client_name_en": settings["name_en"] or settings["name"],
        "month": period.month,
        "timezone": period.timezone,
        "period_start": period.start.astimezone(_zone(period)).isoformat(),
        "period_end": period.end.astimezone(_zone(period)).isoformat(),
        "calls": 0,
        "in_progress": 0,
        "outcomes": dict.fromkeys(OUTCOMES, 0),
        "forwarded_answered": 0,
        "forwarded_unanswered": 0,
        "missed": {"total": 0, "excluding_short_abandon": 0, "short_abandon": 0,
                   "by_reason": dict.fromkeys([*MISSED_REASONS, "forwarded_unanswered"], 0)},
        "voicemails": 0,
        "service_level": {},
        "wait_avg_s": None, "wait_max_s": None, "talk_avg_s": None,
        "escalations": {"total": 0, "repeat_callers": 0,
                        "operator": dict.fromkeys(ESCALATION_REASONS, 0), "other": {}},
        "messages": {"taken": 0, "delivered": 0, "delivery_failed": 0,
                     "by_disposition": dict.fromkeys(DISPOSITIONS, 0)},
        "callbacks": {"opened": 0, "fulfilled_verified": 0, "fulfilled_reported": 0,
                      "cannot_call_back": 0, "expired": 0, "cancelled": 0,
                      "still_owed_at_month_end": 0},
        "outbound": {"calls": 0, "answered": 0, "talk_s": 0, "allowed": 0, "refused": 0,
                     "overridden": 0, "messages_sent": 0},
        "handraises": {"count": 0, "hold_s": 0.0, "hold_avg_s": None, "hold_max_s": None,
                       "help_s": 0.0},
        "complaints": 0,
        "plan": {},
        "by_day": [{"date": day.isoformat(), "calls": 0, "answered": 0, "missed": 0}
                   for day in period.days],
        "by_hour": [{"hour": h, "calls": 0, "answered": 0, "missed": 0} for h in range(24)],
    }


def _zone(period: Period) -> ZoneInfo:
    return ZoneInfo(period.timezone)


async def monthly_reports(conn: asyncpg.Connection, month: str,
                          clients: list[str] | None = None, *,
                          now: datetime | None = None) -> list[dict[str, Any]]:
    """The report of ``month`` (``YYYY-MM``) for each of ``clients`` (None: every client in
    the clients table), in client-code order.  ReportError for an unknown client or month."""
    settings = await reports_sql.client_settings(conn, clients)
    if clients is not None:
        missing = sorted(set(clients) - {s["code"] for s in settings})
        if missing:
            raise ReportError(f"no client {', '.join(missing)}")
    periods = {s["code"]: month_period(month, s["timezone"]) for s in settings}
    reports = {s["code"]: _empty(periods[s["code"]], s) for s in settings}
    scopes = [Scope(s["code"], periods[s["code"]].start, periods[s["code"]].end,
                    s["timezone"], float(s["service_level_s"])) for s in settings]
    if not scopes:
        return []
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    async with conn.transaction(readonly=True):
        # Every client at once groups a million rows: in memory rather than spilled to disk.
        await conn.execute("SET LOCAL work_mem = '64MB'")
        figures = await reports_sql.call_figures(conn, scopes, sorted(MISSED))
    for row in figures:
        report = reports[row["client"]]
        if row["kind"] == 0:
            _add_calls(report, sums[row["client"]], row)
            continue
        bucket = report["by_day"][(row["day"] - periods[row["client"]].first_day).days] \
            if row["kind"] == 1 else report["by_hour"][row["hour"]]
        for key in ("calls", "answered", "missed"):
            bucket[key] = row[key]
    for row in await reports_sql.message_groups(conn, scopes):
        messages = reports[row["client"]]["messages"]
        messages["taken"] += row["taken"]
        messages["delivered"] += row["delivered"]
        messages["delivery_failed"] += row["failed"]
        messages["by_disposition"][row["disposition"]] = row["taken"]
    for row in await reports_sql.callback_figures(conn, scopes):
        reports[row["client"]]["callbacks"].update(
            {k: row[k] for k in reports[row["client"]]["callbacks"]})
    for row in await reports_sql.other_figures(conn, scopes):
        _add_other(reports[row["client"]], row)
    generated = (now or datetime.now(UTC)).isoformat()
    for s in settings:
        _finish(reports[s["code"]], sums[s["code"]], s, generated)
    return [reports[s["code"]] for s in settings]


async def monthly_report(conn: asyncpg.Connection, client: str, month: str, *,
                         now: datetime | None = None) -> dict[str, Any]:
    [report] = await monthly_reports(conn, month, [client], now=now)
    return report


def _add_calls(report: dict[str, Any], sums: dict[str, float], row: asyncpg.Record) -> None:
    n = row["calls"]
    report["calls"] += n
    outcome = row["outcome"]
    if outcome is None:
        report["in_progress"] += n
    else:
        report["outcomes"][outcome] += n
    missed = report["missed"]
    if outcome == "short_abandon":
        missed["short_abandon"] += n
        missed["total"] += n
    elif outcome in MISSED:
        missed["by_reason"][outcome] += n
        missed["total"] += n
        missed["excluding_short_abandon"] += n
    elif outcome == "forwarded":
        if row["forward_answered"] is False:
            report["forwarded_unanswered"] += n
            missed["by_reason"]["forwarded_unanswered"] += n
            missed["total"] += n
            missed["excluding_short_abandon"] += n
        elif row["forward_answered"]:
            report["forwarded_answered"] += n
    if row["voicemail_left"]:
        report["voicemails"] += n
    if row["escalated"]:
        escalations = report["escalations"]
        escalations["total"] += n
        reason = row["escalation_reason"] or "unspecified"
        if reason == "repeat_caller":
            escalations["repeat_callers"] += n
        elif reason in escalations["operator"]:
            escalations["operator"][reason] += n
        else:  # a transfer to the supervisors by hand, or a reason the dialplan did not give
            escalations["other"][reason] = escalations["other"].get(reason, 0) + n
    sums["within"] += row["within"]
    sums["wait_sum"] += row["wait_sum"]
    sums["wait_n"] += row["wait_n"]
    sums["talk_sum"] += row["talk_sum"]
    sums["talk_n"] += row["talk_n"]
    if row["wait_max"] is not None:
        sums["wait_max"] = max(sums.get("wait_max", 0.0), row["wait_max"])
        sums["has_wait"] = 1


def _add_other(report: dict[str, Any], row: asyncpg.Record) -> None:
    """Outbound usage, 手上げ and complaints of the month (reports_sql.OTHER_FIGURES)."""
    report["outbound"] = {key: int(row[f"outbound_{key}"]) for key in (
        "calls", "answered", "talk_s", "allowed", "refused", "overridden")}
    report["outbound"]["messages_sent"] = int(row["messages_sent"])
    count = int(row["handraises"])
    report["handraises"] = {
        "count": count, "hold_s": round(float(row["hold_s"]), 1),
        "hold_avg_s": mean(float(row["hold_s"]), count),
        "hold_max_s": None if row["hold_max_s"] is None else round(row["hold_max_s"], 1),
        "help_s": round(float(row["help_s"]), 1)}
    report["complaints"] = int(row["complaints"])


def _finish(report: dict[str, Any], sums: dict[str, float], settings: asyncpg.Record,
            generated: str) -> None:
    threshold = float(settings["service_level_s"])
    offered = report["calls"] - report["in_progress"] - report["outcomes"]["short_abandon"]
    within = int(sums.get("within", 0))
    report["service_level"] = {
        "threshold_s": threshold, "answered_within": within, "offered": offered,
        "percent": service_level(within, offered),
        "definition": {lang: text.format(threshold=f"{threshold:g}")
                       for lang, text in SERVICE_LEVEL_DEFINITION.items()}}
    report["wait_avg_s"] = mean(sums.get("wait_sum", 0.0), int(sums.get("wait_n", 0)))
    report["wait_max_s"] = round(sums["wait_max"], 1) if sums.get("has_wait") else None
    report["talk_avg_s"] = mean(sums.get("talk_sum", 0.0), int(sums.get("talk_n", 0)))
    outbound = report["outbound"]
    report["plan"] = plan_usage(
        settings["plan_calls"], settings["plan_counts"], report["calls"],
        report["outcomes"]["answered"], settings["overage_price"],
        outbound=(outbound["answered"] if settings["plan_counts"] == "answered"
                  else outbound["calls"]) if settings["plan_outbound"] else None)
    report["generated_at"] = generated
