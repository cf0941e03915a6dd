"""The worklist's calling-hours state, shown before any click.  Pure.

The guard (``service.callbacks.guard``) decides whether a call back may be dialled now; the
worklist also says when it may next be dialled, so 発信 can be disabled with "opens 08:00".
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from service.callbacks.guard import callee_zones, check_calling_hours


def next_opening(callee_e164: str, now: datetime, window: tuple[time, time],
                 client_tz: str) -> datetime | None:
    """The first moment from ``now`` at which the guard allows dialling ``callee_e164``
    (``now`` itself when open); None if not within two days (never, for a number whose
    zones' windows never overlap).

    >>> from datetime import timezone
    >>> jst = timezone(timedelta(hours=9))
    >>> at = next_opening("+819011112222", datetime(2026, 6, 10, 3, 22, tzinfo=jst),
    ...                   (time(8), time(21)), "Asia/Tokyo")
    >>> at.astimezone(jst).isoformat()
    '2026-06-10T08:00:00+09:00'
    >>> next_opening("+819011112222", datetime(2026, 6, 10, 22, 0, tzinfo=jst),
    ...              (time(8), time(21)), "Asia/Tokyo").astimezone(jst).isoformat()
    '2026-06-11T08:00:00+09:00'
    """
    if check_calling_hours(callee_e164, now, window, client_tz).allowed:
        return now
    candidates = []
    for zone in callee_zones(callee_e164, client_tz):
        local = now.astimezone(ZoneInfo(zone))
        for days in range(3):
            day = (local + timedelta(days=days)).date()
            start = datetime.combine(day, window[0], ZoneInfo(zone))
            if start > now:
                candidates.append(start)
    for moment in sorted(candidates):
        if check_calling_hours(callee_e164, moment, window, client_tz).allowed:
            return moment
    return None


def window_state(callee_e164: str | None, now: datetime, window: tuple[time, time],
                 client_tz: str) -> dict[str, Any]:
    """``{"open", "opens_at", "window", "local_time"}`` for a worklist row."""
    span = f"{window[0]:%H:%M}-{window[1]:%H:%M}"
    if not callee_e164:
        return {"open": False, "opens_at": None, "window": span, "local_time": None}
    decision = check_calling_hours(callee_e164, now, window, client_tz)
    return {"open": decision.allowed,
            "opens_at": None if decision.allowed else
            next_opening(callee_e164, now, window, client_tz),
            "window": span, "local_time": f"{decision.callee_local:%H:%M}"}
