"""The loop shared by workers that handle due rows one transaction at a time (scheduled call
backs, messages to callees): each ``_one()`` claims one due row (``FOR UPDATE SKIP LOCKED``,
so several instances share the work), handles it and says whether there was one."""

from __future__ import annotations

import asyncio

from service.logs import get_logger
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)


class DueRows:
    name = "due_rows"
    interval_s = 5.0

    async def _one(self) -> bool:
        raise NotImplementedError

    async def run_once(self) -> int:
        """Handle every due row (one transaction each); returns how many were handled."""
        handled = 0
        while await self._one():
            handled += 1
        return handled

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except TRANSIENT_ERRORS as exc:  # the database away: wait, then go on
                log.warning(f"{self.name}_waiting", error=str(exc) or type(exc).__name__)
            await asyncio.sleep(self.interval_s)
