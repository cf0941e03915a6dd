"""The call-back worker: applies the call-back rules to every call the ledger closes.

It reads the ledger's rows, not AMI events, so calls that reach PostgreSQL late (replayed
from the outage spool, settled by reconciliation, recorded by another instance) are handled
the same way; several instances may run it at once.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from service.clock import Clock, utc_now
from service.logs import get_logger
from service.store.callbacks_sql import expire_overdue, process_ended_calls
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)


class CallbackWorker:
    def __init__(self, pool: asyncpg.Pool, *, interval_s: float = 1.0,
                 expire_grace_s: float = 7 * 86400, expire_every_s: float = 60.0,
                 clock: Clock = utc_now) -> None:
        self.pool = pool
        self.clock = clock
        self.interval_s = interval_s
        self.expire_grace_s = expire_grace_s
        self.expire_every_s = expire_every_s
        self.processed = 0
        self._next_expiry = 0.0

    async def run_once(self) -> int:
        """Process everything pending now; returns the number of calls looked at."""
        total = 0
        async with self.pool.acquire(timeout=5) as conn:
            while True:
                done = await process_ended_calls(conn)
                total += done
                if done == 0:
                    break
            if time.monotonic() >= self._next_expiry:
                expired = await expire_overdue(conn, self.expire_grace_s, self.clock())
                if expired:
                    log.info("callbacks_expired", obligations=expired)
                self._next_expiry = time.monotonic() + self.expire_every_s
        self.processed += total
        return total

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except TRANSIENT_ERRORS as exc:
                log.warning("callback_worker_waiting", error=str(exc) or type(exc).__name__)
            await asyncio.sleep(self.interval_s)
