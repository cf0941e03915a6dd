"""The seam between routing and repeat-caller detection.

The route AGI asks a :class:`RepeatLookup` for the caller's recent history with the client and
hands the answer to the pure routing policy, which decides whether to escalate.  The lookup is
implemented by the call-back side (it needs the ledger and the call-back obligations); routing
only depends on this interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class RepeatHistory:
    """What the lookup found for (client, caller number in E.164) before the current call."""

    calls: int                          # earlier inbound calls counted by the client's rule
    first_at: datetime | None = None    # the oldest counted call
    last_at: datetime | None = None     # the newest counted call
    last_callback_at: datetime | None = None  # last fulfilled call back (verified or reported)
    open_obligations: int = 0           # call backs promised and not yet made


class RepeatLookup(Protocol):
    async def __call__(self, client: str, caller_e164: str, now: datetime, window_s: float,
                       exclude_uniqueid: str | None = None) -> RepeatHistory:
        """Count the caller's inbound calls to ``client`` inside ``window_s`` before ``now``
        and after the last fulfilled call back; never the current call (the one holding
        ``exclude_uniqueid``, the AGI channel's Uniqueid)."""
        ...


class NoHistory:
    """Lookup used when repeat detection is off or unavailable: nobody is a repeat caller."""

    async def __call__(self, client: str, caller_e164: str, now: datetime, window_s: float,
                       exclude_uniqueid: str | None = None) -> RepeatHistory:
        return RepeatHistory(calls=0)
