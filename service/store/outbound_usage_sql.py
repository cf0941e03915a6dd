"""Outbound usage per client and month, for the client reports (plans count outbound calls).

One documented query (the SQL function ``outbound_usage`` of migration 0012, plus breakdowns
of the decisions): what the PBX placed for the client (the ledger's outbound calls) and what
the policy decided (allowed, refused by rule, overridden, by path).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg


async def _bound(conn: asyncpg.Connection, client: str, when: date | datetime) -> datetime:
    """A date is midnight in the client's time zone (a month is the client's month)."""
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError("outbound_usage needs aware datetimes or dates")
        return when
    tz = await conn.fetchval("SELECT timezone FROM clients WHERE code = $1", client)
    return datetime.combine(when, time(0), tzinfo=ZoneInfo(tz or "Asia/Tokyo"))


async def outbound_usage(conn: asyncpg.Connection, client: str, month_start: date | datetime,
                         month_end: date | datetime) -> dict[str, Any]:
    """Usage in [month_start, month_end): ``calls`` (outbound calls the PBX placed),
    ``answered``, ``talk_s``, ``allowed``/``refused``/``overridden`` decisions,
    ``refused_by_rule`` and ``decisions_by_path``.

    >>> # await outbound_usage(conn, "KSL", date(2026, 11, 1), date(2026, 12, 1))
    """
    start = await _bound(conn, client, month_start)
    end = await _bound(conn, client, month_end)
    row = await conn.fetchrow("SELECT * FROM outbound_usage($1, $2, $3)", client, start, end)
    rules = await conn.fetch(
        """SELECT rule, count(*) AS n FROM outbound_decisions
           WHERE client = $1 AND NOT allowed AND decided_at >= $2 AND decided_at < $3
           GROUP BY rule ORDER BY rule""", client, start, end)
    paths = await conn.fetch(
        """SELECT path, count(*) AS n FROM outbound_decisions
           WHERE client = $1 AND decided_at >= $2 AND decided_at < $3
           GROUP BY path ORDER BY path""", client, start, end)
    return {"client": client, "from": start.isoformat(), "until": end.isoformat(),
            **{k: int(row[k]) for k in ("calls", "answered", "talk_s", "allowed", "refused",
                                        "overridden")},
            "refused_by_rule": {r["rule"]: int(r["n"]) for r in rules},
            "decisions_by_path": {r["path"]: int(r["n"]) for r in paths}}
