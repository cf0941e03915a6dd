"""Routing data in memory, so that a routing decision never waits on PostgreSQL.

Loaded at start from the newest version in the database (or, when the database cannot be
reached, from the configured clients file; a database that holds no version yet is given the
configured file as its first, so a fresh install routes at once), then refreshed when
``orikaeshi clients load`` notifies ``orikaeshi_routing``; a periodic version check covers
notifications missed while the listening connection was down.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import asyncpg

from service.clients.model import Directory
from service.clients.schema import ClientsFileError, parse_clients
from service.clients.store import (
    NOTIFY_CHANNEL,
    current_directory,
    current_version,
    load_document,
)
from service.logs import get_logger
from service.store.db import TRANSIENT_ERRORS, listening

log = get_logger(__name__)


class RoutingCache:
    def __init__(self, clients_file: Path | None = None, check_interval: float = 30.0) -> None:
        self.clients_file = clients_file
        self.check_interval = check_interval
        self.directory: Directory | None = None
        self.changed = asyncio.Event()

    def load_file(self) -> None:
        if self.clients_file is None:
            return
        try:
            self.directory = parse_clients(self.clients_file.read_text(encoding="utf-8"),
                                           str(self.clients_file))
            log.warning("routing_from_file", file=str(self.clients_file))
        except (OSError, ClientsFileError) as exc:
            log.error("routing_file_unusable", file=str(self.clients_file), error=str(exc))

    async def refresh(self, pool: asyncpg.Pool) -> bool:
        """Reload when the database holds a newer version; True when it changed."""
        async with pool.acquire(timeout=5) as conn:
            version = await current_version(conn)
            if version == 0 and self.clients_file is not None:
                version = await self._seed(conn)
            if self.directory is not None and version == self.directory.version:
                return False
            directory = await current_directory(conn)
        if directory is None:
            return False
        self.directory = directory
        self.changed.set()
        log.info("routing_loaded", version=directory.version, clients=len(directory.clients))
        return True

    async def _seed(self, conn: asyncpg.Connection) -> int:
        """Load the configured file as the first version (once, whichever instance is first)."""
        assert self.clients_file is not None
        try:
            text = self.clients_file.read_text(encoding="utf-8")
        except OSError as exc:
            log.error("routing_file_unusable", file=str(self.clients_file), error=str(exc))
            return 0
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('orikaeshi_routing_seed'))")
            if await current_version(conn):
                return await current_version(conn)
            try:
                version, _ = await load_document(conn, text, str(self.clients_file),
                                                 loaded_by="serve (clients_file)")
            except ClientsFileError as exc:
                log.error("routing_file_unusable", file=str(self.clients_file),
                          error=str(exc))
                return 0
        log.info("routing_seeded_from_file", file=str(self.clients_file), version=version)
        return version

    async def run(self, pool: asyncpg.Pool) -> None:
        """Keep the directory current until cancelled."""
        wake = asyncio.Event()

        def notified(*_: object) -> None:
            wake.set()

        while True:
            try:
                # Listen before reading: a load committed in between would otherwise go
                # unnoticed until the next periodic check.
                async with listening(pool, NOTIFY_CHANNEL, notified):
                    await self.refresh(pool)
                    while True:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(self.check_interval):
                                await wake.wait()
                        wake.clear()
                        await self.refresh(pool)
            except TRANSIENT_ERRORS as exc:
                if self.directory is None:
                    self.load_file()
                log.warning("routing_refresh_failed", error=str(exc) or type(exc).__name__)
            except ClientsFileError as exc:
                log.error("routing_document_invalid", error=str(exc))
            await asyncio.sleep(self.check_interval / 6)
