"""Scheduled call backs: placed by the service at their time, through the same policy as a
click (``place_callback(..., path="scheduled")``).

A scheduled call back the policy refuses for the hours, the daily limit or the gap is moved
to when the callee may be called (``opens_at``), at most ``MAX_MOVES`` times, each move
recorded (``last_reason``; the refusal itself is an ``outbound_decisions`` row); one refused
for do-not-call (or no longer callable) is ``refused`` for good.  No PBX session: tried
again a minute later, ``failed`` after ``MAX_TRIES``.  Several instances may run it: rows are
claimed with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from service.ami.adapter import AmiClient
from service.callbacks.dialer import place_callback
from service.clock import Clock, utc_now
from service.compliance.policy import OVERRIDABLE
from service.config import PbxConfig
from service.logs import get_logger
from service.phone import mask
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)

MAX_MOVES = 3
MAX_TRIES = 5
RETRY = timedelta(minutes=1)


async def schedule(conn: asyncpg.Connection, *, obligation_id: int | None, client: str,
                   callee_e164: str, operator: str, requested_by: str,
                   run_at: datetime) -> int:
    return int(await conn.fetchval(
        """INSERT INTO scheduled_callbacks (obligation_id, client, callee_e164, operator,
               requested_by, run_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
        obligation_id, client, callee_e164, operator, requested_by, run_at))


class ScheduledCallbacks:
    def __init__(self, pool: asyncpg.Pool, ami: Callable[[], tuple[PbxConfig, AmiClient | None]],
                 clock: Clock = utc_now, interval_s: float = 5.0) -> None:
        self.pool, self.ami, self.clock, self.interval_s = pool, ami, clock, interval_s

    async def run_once(self) -> int:
        """Place every due call back (one transaction each); returns how many were handled."""
        handled = 0
        while await self._one():
            handled += 1
        return handled

    async def _one(self) -> bool:
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """SELECT * FROM scheduled_callbacks WHERE state = 'pending' AND run_at <= $1
                   ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED""", now)
            if row is None:
                return False
            # A call back done, cancelled or expired since it was scheduled is not placed
            # (a caller whose call back was cancelled as a wrong number is not rung).
            closed = await conn.fetchval(
                "SELECT state FROM callback_obligations WHERE id = $1 AND state <> 'open'",
                row["obligation_id"]) if row["obligation_id"] is not None else None
            if closed is not None:
                await conn.execute(
                    """UPDATE scheduled_callbacks SET state = 'cancelled', updated_at = now(),
                           last_reason = $2 WHERE id = $1""",
                    row["id"], f"not placed: the call back is {closed}")
                log.info("scheduled_callback", id=row["id"], client=row["client"],
                         callee=mask(row["callee_e164"]), state="cancelled",
                         reason=f"call back {closed}")
                return True
            pbx, ami = self.ami()
            result = await place_callback(
                ami, conn, pbx, client=row["client"], number=row["callee_e164"],
                operator=row["operator"], requested_by=row["requested_by"], now=now,
                obligation_id=row["obligation_id"], path="scheduled")
            tries = row["tries"] + 1
            state, run_at, reason = "placed", row["run_at"], None
            if not result.placed:
                reason = result.reason
                if result.rule in OVERRIDABLE and result.opens_at is not None \
                        and tries <= MAX_MOVES:
                    state, run_at = "pending", result.opens_at
                    reason = f"moved to {result.opens_at.isoformat()}: {result.reason}"
                elif result.rule is None and result.request_id is not None \
                        and tries < MAX_TRIES:
                    state, run_at = "pending", now + RETRY  # the PBX refused or is away
                elif result.rule is None and result.request_id is None and \
                        result.reason == "no AMI session to the PBX" and tries < MAX_TRIES:
                    state, run_at = "pending", now + RETRY
                else:
                    state = "refused" if result.rule else "failed"
            await conn.execute(
                """UPDATE scheduled_callbacks SET state = $2, run_at = $3, tries = $4,
                       last_reason = $5, updated_at = now() WHERE id = $1""",
                row["id"], state, run_at, tries, reason)
        log.info("scheduled_callback", id=row["id"], client=row["client"],
                 callee=mask(row["callee_e164"]), state=state, reason=reason)
        return True

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except TRANSIENT_ERRORS as exc:
                log.warning("scheduled_callbacks_waiting", error=str(exc) or type(exc).__name__)
            await asyncio.sleep(self.interval_s)
