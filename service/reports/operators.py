"""Per-operator figures for a month (the answering company's own report, not a client's):
what each operator answered and talked, how long they were logged in and paused (by
reason), their disposition codes, 手上げ, complaints that named them, and their outbound
dials under the policy.  For supervisors and admins only: a client never sees it.

The month is the answering company's calendar month (``company_timezone``).  Presence is
cut at the month's edges (service/callflows/presence.time_in_states); the other figures
count what started in the month.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import asyncpg

from service.callflows import presence
from service.reports.rules import mean, month_period

OPERATOR_FIGURES = """
WITH calls_by AS (
    SELECT answered_by AS operator, count(*) AS answered,
           coalesce(sum(talk_s), 0) AS talk_s, count(talk_s) AS talk_n
      FROM calls WHERE direction = 'inbound' AND answered_by IS NOT NULL
       AND started_at >= $1 AND started_at < $2 GROUP BY answered_by
), dispositions_by AS (
    SELECT operator, jsonb_object_agg(code, n) AS dispositions
      FROM (SELECT operator, code, count(*) AS n FROM call_dispositions
             WHERE operator IS NOT NULL AND set_at >= $1 AND set_at < $2
             GROUP BY operator, code) d GROUP BY operator
), handraises_by AS (
    SELECT operator, count(*) AS handraises, coalesce(sum(hold_s), 0) AS hold_s
      FROM handraises WHERE held_at >= $1 AND held_at < $2 GROUP BY operator
), complaints_by AS (
    SELECT named_operator AS operator, count(*) AS complaints FROM complaints
     WHERE named_operator IS NOT NULL AND created_at >= $1 AND created_at < $2
     GROUP BY named_operator
), dials_by AS (
    SELECT operator, count(*) FILTER (WHERE allowed) AS dials,
           count(*) FILTER (WHERE NOT allowed) AS dials_refused
      FROM outbound_decisions WHERE operator IS NOT NULL AND path <> 'message'
       AND decided_at >= $1 AND decided_at < $2 GROUP BY operator
), everyone AS (
    SELECT operator FROM calls_by UNION SELECT operator FROM dispositions_by
    UNION SELECT operator FROM handraises_by UNION SELECT operator FROM complaints_by
    UNION SELECT operator FROM dials_by
)
SELECT e.operator, coalesce(c.answered, 0) AS answered, coalesce(c.talk_s, 0) AS talk_s,
       coalesce(c.talk_n, 0) AS talk_n, d.dispositions,
       coalesce(h.handraises, 0) AS handraises, coalesce(h.hold_s, 0) AS hold_s,
       coalesce(k.complaints, 0) AS complaints, coalesce(o.dials, 0) AS dials,
       coalesce(o.dials_refused, 0) AS dials_refused
  FROM everyone e
  LEFT JOIN calls_by c USING (operator) LEFT JOIN dispositions_by d USING (operator)
  LEFT JOIN handraises_by h USING (operator) LEFT JOIN complaints_by k USING (operator)
  LEFT JOIN dials_by o USING (operator)
"""

CSV_COLUMNS = ("operator", "answered", "talk_s", "talk_avg_s", "logged_in_s", "paused_s",
               "paused_by_reason", "handraises", "hold_s", "complaints", "dials",
               "dials_refused", "dispositions")


def _empty(operator: str) -> dict[str, Any]:
    return {"operator": operator, "answered": 0, "talk_s": 0.0, "talk_avg_s": None,
            "logged_in_s": 0.0, "paused_s": 0.0, "paused_by_reason": {}, "handraises": 0,
            "hold_s": 0.0, "complaints": 0, "dials": 0, "dials_refused": 0,
            "dispositions": {}}


def with_presence(figures: dict[str, Any], seconds: dict[str, float]) -> dict[str, Any]:
    """Add an operator's presence seconds (``time_in_states``) to their figures: logged in
    (available), paused in total and by reason.

    >>> f = with_presence(_empty("201"), {"logged_in": 3600.0, "paused:lunch": 1800.0,
    ...                                   "paused:break": 600.0, "logged_out": 50.0})
    >>> f["logged_in_s"], f["paused_s"], f["paused_by_reason"]
    (3600.0, 2400.0, {'break': 600.0, 'lunch': 1800.0})
    """
    reasons = {state.split(":", 1)[1]: round(value, 1) for state, value in sorted(seconds.items())
               if state.startswith("paused:")}
    return {**figures, "logged_in_s": round(seconds.get("logged_in", 0.0), 1),
            "paused_s": round(sum(reasons.values()), 1), "paused_by_reason": reasons}


async def operator_month(conn: asyncpg.Connection, month: str,
                         timezone: str) -> dict[str, Any]:
    """Every operator's figures for ``month`` (YYYY-MM) in ``timezone``, by extension."""
    period = month_period(month, timezone)
    figures: dict[str, dict[str, Any]] = {}
    for row in await conn.fetch(OPERATOR_FIGURES, period.start, period.end):
        talk_s = float(row["talk_s"])
        figures[row["operator"]] = {
            **_empty(row["operator"]), "answered": row["answered"], "talk_s": round(talk_s, 1),
            "talk_avg_s": mean(talk_s, row["talk_n"]), "handraises": row["handraises"],
            "hold_s": round(float(row["hold_s"]), 1), "complaints": row["complaints"],
            "dials": row["dials"], "dials_refused": row["dials_refused"],
            "dispositions": _json(row["dispositions"])}
    for operator, seconds in (await presence.report(conn, period.start, period.end)).items():
        figures[operator] = with_presence(figures.get(operator) or _empty(operator), seconds)
    return {"month": period.month, "timezone": timezone,
            "period_start": period.start.isoformat(), "period_end": period.end.isoformat(),
            "operators": [figures[op] for op in sorted(figures)]}


def _json(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if isinstance(value, str):  # asyncpg gives jsonb as text without a codec
        import json

        return dict(json.loads(value))
    return dict(value)


def to_csv(report: dict[str, Any]) -> bytes:
    """One row per operator (UTF-8 with BOM, for Excel); reasons and codes as ``k=v; ...``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for figures in report["operators"]:
        writer.writerow([
            "; ".join(f"{k}={v}" for k, v in sorted(figures[c].items()))
            if isinstance(figures[c], dict) else ("" if figures[c] is None else figures[c])
            for c in CSV_COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def generated(report: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**report, "generated_at": now.isoformat()}
