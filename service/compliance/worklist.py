"""What the worklist shows before the click: may each call back be dialled now, and if not,
why and from when.  The same policy as the dial itself (service.compliance.policy), asked
without recording (nothing is dialled yet); two queries for the whole list."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from service.clients.model import Directory
from service.clients.store import current_directory
from service.compliance.policy import ContactHistory, callee_day, decide_outbound
from service.store import compliance_sql


async def annotate(conn: asyncpg.Connection, items: list[dict[str, Any]], now: datetime,
                   directory: Directory | None = None) -> None:
    """Add ``contact_allowed``, ``refusal_reason`` (``None`` when allowed), ``refusal_rule``
    and ``opens_at`` to every obligation row (``None``s for rows that are not open or have
    no number)."""
    if directory is None:
        directory = await current_directory(conn)
    by_client: dict[str, list[str]] = {}
    for item in items:
        if item.get("state") == "open" and item.get("caller_e164"):
            by_client.setdefault(str(item["client"]), []).append(str(item["caller_e164"]))
    # Two days back covers every callee-local day (UTC-12 .. UTC+14) and any min_gap up to
    # a day; a longer min_gap is looked up further back.
    times: dict[tuple[str, str], list[datetime]] = {}
    for code, callees in by_client.items():
        client = directory.clients.get(code) if directory else None
        gap = (client.outbound.min_gap_s or 0) if client else 0
        since = now - timedelta(days=2) - timedelta(seconds=gap)
        found = await compliance_sql.histories(conn, code, callees, since)
        for number, when in found.items():
            times[(code, number)] = when
    for item in items:
        item.update(contact_allowed=None, refusal_reason=None, refusal_rule=None,
                    opens_at=None)
        code, callee = str(item.get("client")), str(item.get("caller_e164") or "")
        client = directory.clients.get(code) if directory else None
        if item.get("state") != "open" or not callee or client is None:
            continue
        start, end = callee_day(callee, now, client.outbound, client.timezone)
        done = times.get((code, callee), [])
        history = ContactHistory(sum(1 for t in done if start <= t < end),
                                 max(done, default=None))
        decision = decide_outbound(callee, now, calling_hours=client.calling_hours,
                                   client_tz=client.timezone, rules=client.outbound,
                                   history=history)
        item.update(contact_allowed=decision.allowed,
                    refusal_reason=None if decision.allowed else decision.reason,
                    refusal_rule=None if decision.allowed else decision.rule,
                    opens_at=decision.opens_at)
