"""The calling-hours guard.  Pure.

Call backs for collection or payment matters may only be dialled 08:00-21:00 in the callee's
local time (貸金業法, the money-lending law); every client has a window (that one by default),
and a call back placed through orikaeshi outside it is refused with the reason.  The callee's
time zone comes from the number (``phonenumbers``); a number whose zone is unknown or
ambiguous is judged in the client's own time zone.
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


def callee_zone(callee_e164: str, fallback: str) -> str:
    try:
        zones = number_zones.time_zones_for_number(phonenumbers.parse(callee_e164))
    except phonenumbers.NumberParseException:
        return fallback
    usable = [z for z in zones if z != "Etc/Unknown"]
    return usable[0] if len(usable) == 1 else fallback


def check_calling_hours(callee_e164: str, now: datetime, window: tuple[time, time],
                        client_tz: str = "Asia/Tokyo") -> GuardDecision:
    """May ``callee_e164`` be dialled at ``now`` (aware)?"""
    zone = callee_zone(callee_e164, client_tz)
    local = now.astimezone(ZoneInfo(zone))
    start, end = window
    allowed = start <= local.time() < end
    when = f"{local:%H:%M} in {zone}"
    if allowed:
        return GuardDecision(True, f"{when} is inside {start:%H:%M}-{end:%H:%M}", local)
    return GuardDecision(False, f"refused: {when} is outside the allowed calling hours "
                                f"{start:%H:%M}-{end:%H:%M} (callee's local time)", local)
