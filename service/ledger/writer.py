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


# What writing a batch can raise: an outage, or records PostgreSQL or the conversion to its
# types refuse (including a KeyError/AttributeError of a malformed spooled record).
WRITE_ERRORS: tuple[type[Exception], ...] = (
    *TRANSIENT_ERRORS, asyncpg.PostgresError, ValueError, OverflowError, TypeError, KeyError,
    AttributeError)


class Fenced(Exception):
    """Another instance leads this PBX's ledger now (a newer epoch): stop writing."""


class Fence:
    """The lease this writer was given for its PBX (``ledger_leases``)."""

    def __init__(self, pbx_id: str, epoch: int) -> None:
        self.pbx_id = pbx_id
        self.epoch = epoch

    async def check(self, conn: asyncpg.Connection) -> None:
        """Inside the write's transaction: still our epoch?  ``FOR SHARE`` holds the row,
        so a take-over (which updates it) waits for this write to commit, and every write
        after the take-over sees the new epoch."""
        current = await conn.fetchval(
            "SELECT epoch FROM ledger_leases WHERE pbx_id = $1 FOR SHARE", self.pbx_id)
        if current != self.epoch:
            raise Fenced(f"{self.pbx_id}: epoch {current} leads, this writer has "
                         f"{self.epoch}")


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` means "the database is not reachable now" (spool and retry), False
    when the records are at fault (dead-letter them).  asyncpg's client-side DataError (a
    value no column type holds: a 20-digit integer, a NaN time) is an ``InterfaceError``, as
    an outage is, but also a ``ValueError``; Python's own conversions raise ValueError or
    OverflowError.  Retrying those would stop the ledger behind them for ever."""
    if isinstance(exc, ValueError | OverflowError | TypeError | KeyError | AttributeError):
        return False
    return isinstance(exc, TRANSIENT_ERRORS)


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
        self.records_rejected = 0
        self.failures = 0
        # Set by the PBX's lock holder (pipeline.run_locked); None: no fencing (one instance).
        self.fence: Fence | None = None
        self.fenced = False

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
        """Flush periodically until cancelled (then flush what is left).

        Nothing a batch holds may end this loop: a writer that stopped would leave a live
        process recording nothing.  Bad records are dead-lettered in :meth:`_write`; anything
        else unexpected is logged and the loop goes on."""
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_interval):
                        await self._wake.wait()
                self._wake.clear()
                if self.fenced:
                    raise Fenced(f"{self.fence.pbx_id if self.fence else '?'}: fenced")
                try:
                    await self.flush()
                except Fenced:
                    raise  # another instance leads: this pipeline must stop
                except Exception:
                    self.failures += 1
                    log.exception("ledger_flush_failed")
        finally:
            if not self.fenced:
                with contextlib.suppress(Fenced):
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

    async def _write_one(self, conn: asyncpg.Connection, batch: list[Record]) -> None:
        """One batch, in one transaction, under the fence when there is one."""
        if self.fence is None:
            await write_records(conn, batch)
            return
        try:
            async with conn.transaction():
                await self.fence.check(conn)
                await write_records(conn, batch)
        except Fenced as exc:
            self.fenced = True
            log.warning("ledger_fenced", pbx=self.fence.pbx_id, epoch=self.fence.epoch,
                        detail=str(exc), records_not_written=len(batch))
            raise

    async def _write(self, batch: list[Record]) -> None:
        try:
            async with acquire_fresh(self.pool, timeout=5) as conn:
                await self._write_one(conn, batch)
        except WRITE_ERRORS as exc:
            if not is_outage(exc):
                await self._reject(batch, exc)
                return
            log.warning("ledger_db_unavailable", error=str(exc) or type(exc).__name__,
                        records=len(batch))
            self._next_retry = time.monotonic() + self.retry_interval
            self._spool(batch)
            return
        self.records_written += len(batch)
        await self._written(batch)

    async def _written(self, batch: list[Record]) -> None:
        if self.on_written is None:
            return
        try:
            await self.on_written(batch)
        except Exception:
            # The rows are committed; a listener's trouble must not stop the writer.
            self.failures += 1
            log.exception("ledger_on_written_failed", records=len(batch))

    async def _reject(self, batch: list[Record], exc: Exception) -> None:
        """Not an outage: something in the batch is wrong.  Write its records one by one, so
        that only the record PostgreSQL (or the conversion to its types) refuses is kept
        aside for a human, and the other calls of the batch are recorded."""
        log.error("ledger_batch_rejected", error=str(exc)[:300], records=len(batch),
                  dead_letter=str(self.dead_letter))
        if len(batch) == 1:
            self._dead_letter(batch, exc)
            return
        good: list[Record] = []
        for index, record in enumerate(batch):
            try:
                async with acquire_fresh(self.pool, timeout=5) as conn:
                    await self._write_one(conn, [record])
            except WRITE_ERRORS as one_exc:
                if is_outage(one_exc):
                    self._next_retry = time.monotonic() + self.retry_interval
                    self._spool(batch[index:])
                    break
                self._dead_letter([record], one_exc)
                continue
            good.append(record)
        self.records_written += len(good)
        if good:
            await self._written(good)

    def _dead_letter(self, batch: list[Record], exc: Exception) -> None:
        self.records_rejected += len(batch)
        log.error("ledger_record_dead_lettered", error=str(exc)[:300], records=len(batch),
                  dead_letter=str(self.dead_letter))
        with self.dead_letter.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(batch, ensure_ascii=False, default=repr) + "\n")

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
                        await self._write_one(conn, batch)
                    except WRITE_ERRORS as exc:
                        if is_outage(exc):
                            raise
                        self._dead_letter(batch, exc)
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
