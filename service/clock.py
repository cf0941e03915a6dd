"""The service's clock.

Every rule that compares with "now" (opening hours, the repeat window, obligation expiry)
takes a clock instead of reading the system time, so the whole service can run at any date:
tests re-base recordings to the clock's time and never compare with today.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real time, timezone-aware (UTC): the clock the service runs on."""
    return datetime.now(UTC)


def shifted_clock(offset: timedelta) -> Clock:
    """The real time moved by ``offset``: a service running ``offset`` after (or before)
    today, with time still passing."""
    return lambda: datetime.now(UTC) + offset


class SettableClock:
    """The real time, or a moment a test puts the service at (``fixed``): the worklist's
    calling hours, click-to-call.  The service itself never sets it."""

    def __init__(self, fixed: datetime | None = None) -> None:
        self.fixed = fixed

    def __call__(self) -> datetime:
        return self.fixed if self.fixed is not None else datetime.now(UTC)
