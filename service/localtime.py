"""Times as a person reads them: in the client's time zone, never UTC or the server's zone
(issue 13: e-mails, CLI outputs, CSV exports).  Machine payloads (JSON, webhooks) keep ISO
8601 with their offset."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

DEFAULT_ZONE = "Asia/Tokyo"  # a client's zone when none is known (the clients file's default)


def local_text(moment: datetime, tz: str | None) -> str:
    """A time for people, in ``tz`` with the zone's abbreviation.

    >>> from datetime import UTC
    >>> local_text(datetime(2026, 11, 22, 2, 27, tzinfo=UTC), "Asia/Tokyo")
    '2026-11-22 11:27 JST'
    >>> local_text(datetime(2026, 7, 1, 14, 0, tzinfo=UTC), "America/New_York")
    '2026-07-01 10:00 EDT'
    """
    return f"{moment.astimezone(ZoneInfo(tz or DEFAULT_ZONE)):%Y-%m-%d %H:%M %Z}"


def local_iso(moment: datetime | None, tz: str | None) -> str:
    """ISO 8601 in ``tz`` with its offset (a spreadsheet or a script reads it; so does a
    person), seconds kept; naive values are UTC (Asterisk's records).  None: ''.

    >>> from datetime import UTC
    >>> local_iso(datetime(2026, 11, 22, 2, 27, 7, 500000, tzinfo=UTC), "Asia/Tokyo")
    '2026-11-22T11:27:07+09:00'
    >>> local_iso(datetime(2026, 11, 22, 2, 27, 7), None), local_iso(None, "UTC")
    ('2026-11-22T11:27:07+09:00', '')
    """
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(ZoneInfo(tz or DEFAULT_ZONE)).isoformat(timespec="seconds")
