"""Batches ledger records into PostgreSQL, and spools them durably while it is away.

Records of the same row are coalesced between flushes (a call that changed ten times in 50 ms
is written once).  A batch that cannot be written because the database is unreachable goes to
the spool; while the spool holds anything, newer batches go behind it, so the database always
receives records in the order they were made.  When the database is back, the spool is
replayed, oldest first, and then cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from service.ledger.model import Call
from service.ledger.records import Record, call_records, record_key
from service.logs import get_logger
from service.store.db import TRANSIENT_ERRORS, acquire_fresh
from service.store.ledger_sql import write_records
from service.store.spool import Spool

log = get_logger(__name__)

Written = Callable[[list[Record]], Awaitable[None]]


class LedgerWriter:
    def __init__(self, pool: asyncpg.Pool, spool: Spool, *, flush_interval: float = 0.05,
                 max_records: int = 2000, retry_interval: float = 1.0,
                 dead_letter: Path | None = None, on_written: Written | None = None) -> None:
        self.pool = pool
        self.spool = spool
        self.flush_interval = flush_interval
        self.max_records = max_records
        self.retry_interval = retry_interval
        self.dead_letter = dead_letter or spool.path.with_suffix(".dead")
        self.on_written = on_written
        self._pending: dict[tuple[str, ...], Record] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._next_retry = 0.0
        self.records_written = 0
        self.batches_spooled = 0

    @property
    def degraded(self) -> bool:
        """True while records wait in the spool for the database."""
        return self.spool.pending

    def submit(self, calls: list[Call]) -> None:
        for call in calls:
            for record in call_records(call):
                self._pending[record_key(record)] = record
        if len(self._pending) >= self.max_records:
            self._wake.set()

    def submit_records(self, records: list[Record]) -> None:
        for record in records:
            self._pending[record_key(record)] = record
        self._wake.set()

    async def run(self) -> None:
        """Flush periodically until cancelled (then flush what is left)."""
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_interval):
                        await self._wake.wait()
                self._wake.clear()
                await self.flush()
        finally:
            await asyncio.shield(self.flush(final=True))

    async def flush(self, final: bool = False) -> None:
        """Write what is pending.  ``final`` (on the way out) tries the database once more
        even inside the retry pause after a failure."""
        async with self._lock:
            batch = list(self._pending.values())
            self._pending.clear()
            if final:
                self._next_retry = 0.0
            if self.spool.pending and not await self._drain_spool():
                if batch:
                    self._spool(batch)
                return
            if batch:
                await self._write(batch)

    async def _write(self, batch: list[Record]) -> None:
        try:
            async with acquire_fresh(self.pool, timeout=5) as conn:
                await write_records(conn, batch)
        except TRANSIENT_ERRORS as exc:
            log.warning("ledger_db_unavailable", error=str(exc) or type(exc).__name__,
                        records=len(batch))
            self._next_retry = time.monotonic() + self.retry_interval
            self._spool(batch)
            return
        except asyncpg.PostgresError as exc:
            self._reject(batch, exc)
            return
        self.records_written += len(batch)
        if self.on_written is not None:
            await self.on_written(batch)

    def _reject(self, batch: list[Record], exc: Exception) -> None:
        """Not an outage: the batch itself is wrong.  Keep it for a human and go on."""
        log.error("ledger_batch_rejected", error=str(exc), records=len(batch),
                  dead_letter=str(self.dead_letter))
        with self.dead_letter.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(batch, ensure_ascii=False) + "\n")

    def _spool(self, batch: list[Record]) -> None:
        self.spool.append(batch)
        self.batches_spooled += 1

    async def _drain_spool(self) -> bool:
        """Replay the spool into the database; True when it is empty afterwards."""
        if time.monotonic() < self._next_retry:
            return False
        replayed = 0
        try:
            async with acquire_fresh(self.pool, timeout=5) as conn:
                for batch in self.spool.batches():
                    try:
                        await write_records(conn, batch)
                    except TRANSIENT_ERRORS:
                        raise
                    except asyncpg.PostgresError as exc:
                        self._reject(batch, exc)
                        continue
                    replayed += len(batch)
        except TRANSIENT_ERRORS as exc:
            self._next_retry = time.monotonic() + self.retry_interval
            log.info("ledger_spool_waiting", error=str(exc) or type(exc).__name__)
            return False
        self.spool.clear()
        self.records_written += replayed
        log.info("ledger_spool_replayed", records=replayed)
        return True
