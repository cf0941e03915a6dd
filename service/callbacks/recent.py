"""Which (client, caller) pairs called recently: lets the route skip the repeat query for
callers with no recent call at all (the common case) without ever missing a repeat caller.

Loaded from the ledger at start, then kept current by every call this instance routes and
by ``NOTIFY orikaeshi_calls`` from whichever instance records calls.  While it is not loaded,
or while its listening connection is down (a notification could be missed), it answers
"maybe" for everyone, and the route queries PostgreSQL as before.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from service.clock import Clock, utc_now
from service.ledger.notify import CHANNEL
from service.logs import get_logger
from service.routing.repeat import RepeatHistory, RepeatLookup
from service.store.db import TRANSIENT_ERRORS, listening

log = get_logger(__name__)


class RecentCallers:
    def __init__(self, window_s: Callable[[], float], sweep_every_s: float = 300.0,
                 clock: Clock = utc_now) -> None:
        self.window_s = window_s
        self.clock = clock
        self.sweep_every_s = sweep_every_s
        self._last: dict[tuple[str, str], float] = {}
        self._loaded_window = 0.0
        self.ready = False

    def maybe_called(self, client: str, caller_e164: str, now: float) -> bool:
        """False only when the pair surely made no call inside the window before ``now``."""
        if not self.ready or self.window_s() > self._loaded_window:
            return True
        last = self._last.get((client, caller_e164))
        return last is not None and last > now - self._loaded_window

    def note(self, client: str | None, caller_e164: str | None, at: float) -> None:
        if client and caller_e164:
            key = (client, caller_e164)
            if at > self._last.get(key, 0.0):
                self._last[key] = at

    def __len__(self) -> int:
        return len(self._last)

    async def _load(self, conn: asyncpg.Connection) -> None:
        window = self.window_s()
        rows = await conn.fetch(
            "SELECT client, caller_e164, max(started_at) AS last FROM calls "
            "WHERE direction = 'inbound' AND caller_e164 IS NOT NULL AND client IS NOT NULL "
            "AND started_at > $2::timestamptz - $1::interval GROUP BY client, caller_e164",
            timedelta(seconds=window), self.clock())
        for row in rows:
            self.note(row["client"], row["caller_e164"], row["last"].timestamp())
        self._loaded_window = window
        self.ready = True
        log.info("recent_callers_loaded", pairs=len(self._last), window_h=window / 3600)

    def _on_notify(self, *args: object) -> None:
        try:
            call = json.loads(str(args[3]))
        except ValueError:
            return
        if call.get("kind") == "call" and call.get("direction") == "inbound":
            self.note(call.get("client"), call.get("caller"), call.get("started_at") or 0.0)

    def _sweep(self) -> None:
        horizon = self.clock().timestamp() - self._loaded_window
        for key in [k for k, last in self._last.items() if last < horizon]:
            del self._last[key]

    async def run(self, pool: asyncpg.Pool) -> None:
        """Load, then listen, until cancelled; reload after any lost connection."""
        while True:
            try:
                # Listen first, then load: a call noted twice is harmless, a call between
                # the load and the listen would be lost.
                async with listening(pool, CHANNEL, self._on_notify) as conn:
                    await self._load(conn)
                    while not conn.is_closed():
                        await asyncio.sleep(min(self.sweep_every_s, 5.0))
                        if self.window_s() > self._loaded_window:
                            break  # a client's window grew: load the longer history
                        self._sweep()
            except TRANSIENT_ERRORS as exc:
                log.warning("recent_callers_unavailable", error=str(exc) or type(exc).__name__)
            finally:
                self.ready = False
            await asyncio.sleep(1.0)


class FilteredRepeatLookup:
    """A :class:`RepeatLookup` that asks PostgreSQL only about callers who may have called
    recently, and notes every caller it is asked about (the call being routed)."""

    def __init__(self, lookup: RepeatLookup, recent: RecentCallers) -> None:
        self.lookup = lookup
        self.recent = recent
        self.skipped = 0
        self.queried = 0

    async def __call__(self, client: str, caller_e164: str, now: datetime, window_s: float,
                       exclude_uniqueid: str | None = None) -> RepeatHistory:
        maybe = self.recent.maybe_called(client, caller_e164, now.timestamp())
        self.recent.note(client, caller_e164, now.timestamp())
        if not maybe:
            self.skipped += 1
            return RepeatHistory(calls=0)
        self.queried += 1
        return await self.lookup(client, caller_e164, now, window_s, exclude_uniqueid)
