"""The reconciliation loop of the service: follow the files (when configured), then one pass
per PBX, every ``reconcile_interval_s``.  Runs on every instance; passes are idempotent and
serialised per PBX by an advisory lock, so several instances never settle a call twice."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import asyncpg

from service.clock import Clock, utc_now
from service.config import Config, PbxConfig
from service.logs import get_logger
from service.reconcile_live.follow import FileFollower
from service.reconcile_live.health import Reading, read_health, reconcile_view
from service.reconcile_live.settle import reconcile_pass, record_failure
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)

_FAILURES: tuple[type[Exception], ...] = (OSError, *TRANSIENT_ERRORS)


class ReconcileWorker:
    def __init__(self, pool: asyncpg.Pool, config: Config, clock: Clock = utc_now) -> None:
        self.pool, self.config, self.clock = pool, config, clock
        self.pbxs = [p for p in config.pbxs if p.reconcile_source != "off"]
        self.followers: dict[str, list[FileFollower]] = {}
        for pbx in self.pbxs:
            if pbx.reconcile_source == "files":
                self.followers[pbx.pbx_id] = [
                    FileFollower(pbx.pbx_id, Path(path), kind, pbx.clock_tz)
                    for path, kind in ((pbx.cdr_file, "cdr"), (pbx.queue_log_file, "queue_log"))
                    if path]
        self.passes = 0
        # What /healthz shows (service.status): read after every turn of the loop, so that a
        # health request costs no query; ``running`` false once the loop has ended.
        self.started_at = clock()
        self.reading: Reading | None = None
        self.running = False

    async def run_once(self) -> None:
        for pbx in self.pbxs:
            try:
                for follower in self.followers.get(pbx.pbx_id, []):
                    await follower.poll(self.pool)
                await self._pass(pbx)
            except _FAILURES as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.error("reconcile_pass_failed", pbx=pbx.pbx_id, error=error)
                # The database away: the log line is all that can be left.
                with contextlib.suppress(*TRANSIENT_ERRORS):
                    await record_failure(self.pool, pbx.pbx_id, self.clock(), error)
        self.passes += 1
        await self.refresh()

    async def refresh(self) -> None:
        """Read the state /healthz shows (kept when the database is away: the lag grows)."""
        if not self.pbxs:
            return
        try:
            async with self.pool.acquire() as conn:
                self.reading = await read_health(conn, [p.pbx_id for p in self.pbxs],
                                                 self.clock())
        except _FAILURES as exc:
            log.warning("reconcile_health_unread", error=str(exc) or type(exc).__name__)

    def view(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Each reconciled PBX's state and the alerts (:func:`reconcile_view`)."""
        return reconcile_view(self.reading, {p.pbx_id: p.reconcile_source for p in self.pbxs},
                              running=self.running, started_at=self.started_at,
                              now=self.clock(), interval_s=self.config.reconcile_interval_s,
                              settle_after_s=self.config.reconcile_settle_after_s)

    async def _pass(self, pbx: PbxConfig) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 4))",
                                       f"reconcile|{pbx.pbx_id}"):
                return  # another instance is on it
            result = await reconcile_pass(conn, self.config, pbx, self.clock())
        if result.settled or result.added:
            log.info("reconciled", pbx=pbx.pbx_id, settled=result.settled, added=result.added,
                     differences=len(result.differences))

    async def run(self) -> None:
        if not self.pbxs:
            log.info("reconcile_off", why="no [[pbx]] has reconcile_source set")
            return
        self.running = True
        try:
            while True:
                await self.run_once()
                await asyncio.sleep(self.config.reconcile_interval_s)
        except Exception as exc:
            # The loop ended by a fault no pass expected: /healthz says reconcile_stopped.
            log.error("reconcile_loop_ended", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self.running = False
            for followers in self.followers.values():
                for follower in followers:
                    await follower.close()
