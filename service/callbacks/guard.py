"""The calling-hours guard.  Pure.

Call backs for collection or payment matters may only be dialled 08:00-21:00 in the callee's
local time (貸金業法, the money-lending law); every client has a window (that one by default,
``calling_hours`` in the clients file), and a call back placed through orikaeshi outside it is
refused with the reason.  The callee's time zone comes from the number (``phonenumbers``).
A number that spans several zones (a US or Russian number, say) may be dialled only when the
time is inside the window in every one of them; a number whose zone is unknown is judged in
the client's own time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_zones


@dataclass(frozen=True)
class GuardDecision:
    allowed: bool
    reason: str
    callee_local: datetime


def callee_zones(callee_e164: str, fallback: str) -> list[str]:
    """The time zones the number may be in, or ``[fallback]`` when nobody knows."""
    try:
        zones = number_zones.time_zones_for_number(phonenumbers.parse(callee_e164))
    except phonenumbers.NumberParseException:
        return [fallback]
    usable = sorted({z for z in zones if z != "Etc/Unknown"})
    return usable or [fallback]


def _inside(local: time, start: time, end: time) -> bool:
    # The clients file gives a range within one day; one that wraps midnight reads naturally.
    if start < end:
        return start <= local < end
    return local >= start or local < end


def check_calling_hours(callee_e164: str, now: datetime, window: tuple[time, time],
                        client_tz: str = "Asia/Tokyo") -> GuardDecision:
    """May ``callee_e164`` be dialled at ``now`` (aware)?

    >>> from datetime import timezone, timedelta
    >>> jst = timezone(timedelta(hours=9))
    >>> late = check_calling_hours("+819011112222", datetime(2026, 6, 10, 21, 5, tzinfo=jst),
    ...                            (time(8), time(21)))
    >>> late.allowed, late.reason.split(" (")[0]
    (False, 'refused: 21:05 in Asia/Tokyo is outside the allowed calling hours 08:00-21:00')
    """
    if now.tzinfo is None:
        raise ValueError("check_calling_hours needs an aware datetime")
    start, end = window
    locals_ = [(zone, now.astimezone(ZoneInfo(zone)))
               for zone in callee_zones(callee_e164, client_tz)]
    outside = [(zone, local) for zone, local in locals_
               if not _inside(local.time(), start, end)]
    span = f"{start:%H:%M}-{end:%H:%M}"
    if not outside:
        zone, local = locals_[0]
        return GuardDecision(True, f"{local:%H:%M} in {zone} is inside {span}", local)
    zone, local = outside[0]
    also = f" (the number may be in {len(locals_)} time zones)" if len(locals_) > 1 else ""
    return GuardDecision(False, f"refused: {local:%H:%M} in {zone} is outside the allowed "
                                f"calling hours {span} (callee's local time){also}", local)
