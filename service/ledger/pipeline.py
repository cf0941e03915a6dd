"""One PBX's ledger pipeline: AMI client -> ingest -> machine -> writer -> PostgreSQL/spool.

Used by ``orikaeshi serve`` (under the PBX's advisory lock) and by ``orikaeshi replay``
(against a loopback replay server): the same objects either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from service.ami.adapter import AmiClient, AmiError
from service.config import Config, PbxConfig
from service.ledger.ingest import LedgerIngest
from service.ledger.machine import LedgerMachine
from service.ledger.model import Call
from service.ledger.records import calls_from_records
from service.ledger.validate import check_event
from service.ledger.writer import Fence, LedgerWriter, Written
from service.logs import get_logger
from service.logthrottle import Throttle
from service.store.db import TRANSIENT_ERRORS
from service.store.ledger_sql import load_open_calls
from service.store.spool import Spool

log = get_logger(__name__)


EventTap = Callable[[str, list[Any]], None]


@dataclass
class EventFanout:
    """The AMI client's event handler: every event checked at the edge
    (:mod:`service.ledger.validate`), then the ledger, then the other consumers (operator
    states, alerts) as ``tap(pbx_id, events)``; a tap's error never touches the ledger."""

    pbx_id: str
    ingest: LedgerIngest
    taps: list[EventTap] = field(default_factory=list)
    # Events refused (an identifier no call can have) and repaired (a value removed or cut).
    rejected: int = 0
    repaired: int = 0
    throttle: Throttle = field(default_factory=Throttle)

    def checked(self, events: list[Any]) -> list[Any]:
        """The events the ledger may see; the others counted and logged (rate-limited)."""
        kept = []
        for event in events:
            verdict = check_event(event)
            if verdict.keep:
                kept.append(event)
            if not verdict.problems:
                continue
            if verdict.keep:
                self.repaired += 1
            else:
                self.rejected += 1
            held = self.throttle.allow("ami_event_invalid")
            if held is not None:
                log.warning("ami_event_invalid", pbx=self.pbx_id, refused=not verdict.keep,
                            ami_event=str(event.get("Event"))[:40],
                            problems=verdict.problems[:5], suppressed=held)
        return kept

    def on_snapshot(self, action: str, messages: list[Any]) -> Awaitable[None] | None:
        # The ingest may answer with work to await (Getvar of adopted channels) before the
        # events after the snapshot: pass it on to the AMI client, which awaits it.
        return self.ingest.on_snapshot(action, self.checked(messages))

    def __call__(self, events: list[Any]) -> None:
        events = self.checked(events)
        self.ingest.on_events(events)
        for tap in self.taps:
            try:
                tap(self.pbx_id, events)
            except Exception:
                log.exception("event_tap_failed", pbx=self.pbx_id, tap=repr(tap))


@dataclass
class LedgerPipeline:
    pbx: PbxConfig
    machine: LedgerMachine
    writer: LedgerWriter
    ingest: LedgerIngest
    fanout: EventFanout
    client: AmiClient

    async def restore_open_calls(self, pool: asyncpg.Pool) -> int:
        """Take over the calls an earlier run or another instance left open.

        The database has what was written; the spool has what was made while it was away
        (newer, and the only copy during an outage), so the spool's rows win.
        """
        calls: dict[str, Call] = {}
        try:
            async with pool.acquire(timeout=5) as conn:
                calls = {c.linkedid: c for c in await load_open_calls(conn, self.pbx.pbx_id)}
        except TRANSIENT_ERRORS as exc:
            log.warning("ledger_restore_db_unavailable", pbx=self.pbx.pbx_id, error=str(exc))
        spooled = [record for batch in self.writer.spool.batches() for record in batch]
        for call in calls_from_records(spooled):
            if call.pbx_id == self.pbx.pbx_id:
                calls[call.linkedid] = call
        open_calls = [c for c in calls.values() if c.ended_at is None]
        for call in open_calls:
            self.machine.restore(call)
        log.info("ledger_restored", pbx=self.pbx.pbx_id, open_calls=len(open_calls),
                 from_spool=len(spooled))
        return len(open_calls)

    async def run(self) -> None:
        """Run until cancelled; the writer flushes what it holds on the way out."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.writer.run(), name=f"ledger-writer-{self.pbx.pbx_id}")
            group.create_task(self.client.run(), name=f"ami-{self.pbx.pbx_id}")


def build_pipeline(config: Config, pbx: PbxConfig, pool: asyncpg.Pool, *,
                   host: str | None = None, port: int | None = None,
                   on_written: Written | None = None,
                   taps: list[EventTap] | None = None) -> LedgerPipeline:
    """Build the objects of one PBX's pipeline.

    ``on_written`` is awaited with every batch of records once it is in PostgreSQL (live
    fan-out hangs there); ``taps`` see every AMI event batch after the ledger.
    """
    machine = LedgerMachine(pbx.pbx_id, pbx.inbound_contexts, pbx.outbound_contexts,
                            config.short_abandon_s)
    spool = Spool(config.spool_dir / f"{pbx.pbx_id}.spool")
    writer = LedgerWriter(pool, spool, flush_interval=config.ledger_flush_interval_s,
                          max_records=config.ledger_flush_max_records, on_written=on_written)
    ingest = LedgerIngest(machine, writer)
    fanout = EventFanout(pbx.pbx_id, ingest, list(taps or []))
    client = AmiClient(
        pbx.pbx_id, host or pbx.ami_host, port or pbx.ami_port, pbx.ami_username,
        pbx.ami_secret, fanout, fanout.on_snapshot, LedgerIngest.SNAPSHOT_ACTIONS,
        connect_timeout=config.ami_connect_timeout_s, ping_interval=config.ami_ping_interval_s,
        ping_timeout=config.ami_ping_timeout_s, action_timeout=config.ami_action_timeout_s,
        reconnect_min=config.ami_reconnect_min_s, reconnect_max=config.ami_reconnect_max_s,
        queue_max=config.ami_event_queue, max_message_bytes=config.ami_max_message_bytes)
    ingest.get_variable = functools.partial(get_channel_variable, client)
    return LedgerPipeline(pbx, machine, writer, ingest, fanout, client)


async def get_channel_variable(client: AmiClient, channel: str, name: str) -> str | None:
    """One AMI ``Getvar``; None when the PBX cannot say (channel gone, action refused, no
    session).  The caller bounds the wait."""
    try:
        answer = await client.send_action({"Action": "Getvar", "Channel": channel,
                                           "Variable": name})
    except (AmiError, ValueError) as exc:
        log.info("ami_getvar_failed", pbx=client.pbx_id, variable=name, error=str(exc))
        return None
    if getattr(answer, "response", "") != "Success":
        return None
    value = answer.get("Value")
    return None if value is None else str(value)


def pbx_lock_key(pbx_id: str) -> int:
    """Advisory-lock key for the AMI consumer of one PBX (stable across instances)."""
    return zlib.crc32(f"orikaeshi-ami:{pbx_id}".encode())


async def take_lease(conn: asyncpg.Connection, pbx_id: str, holder: str) -> int:
    """Under the PBX's advisory lock: the next epoch of its ledger, now this instance's."""
    epoch: int = await conn.fetchval(
        """INSERT INTO ledger_leases (pbx_id, epoch, holder) VALUES ($1, 1, $2)
           ON CONFLICT (pbx_id) DO UPDATE SET epoch = ledger_leases.epoch + 1,
               holder = EXCLUDED.holder, acquired_at = now()
           RETURNING epoch""", pbx_id, holder)
    return epoch


class LeadershipLost(Exception):
    """The connection holding the PBX's advisory lock is gone: the lock may be another's."""


async def watch_lock(conn: asyncpg.Connection, interval_s: float, timeout_s: float) -> None:
    """Return never; raise :class:`LeadershipLost` as soon as the lock's connection is
    found closed or does not answer (PostgreSQL releases the lock with the session)."""
    lost = asyncio.Event()
    conn.add_termination_listener(lambda _conn: lost.set())
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s):
                await lost.wait()
        if lost.is_set() or conn.is_closed():
            raise LeadershipLost("the advisory lock's connection closed")
        try:
            async with asyncio.timeout(timeout_s):
                await conn.fetchval("SELECT 1")
        except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
            raise LeadershipLost(f"the advisory lock's connection failed: {exc}") from exc


def instance_name() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


async def run_locked(pipeline: LedgerPipeline, pool: asyncpg.Pool,
                     retry_s: float = 5.0, watch_s: float = 1.0) -> None:
    """Run the pipeline only while this instance holds the PBX's advisory lock.

    Another instance holding it means this one stands by; when that one dies, PostgreSQL
    releases its lock and this one takes over (ingestion is idempotent, nothing is counted
    twice).  Taking over bumps the PBX's epoch (``ledger_leases``) and every write checks
    it, so a leader that lost its lock connection (and has not noticed yet) cannot write
    after the new one started; it notices within ``watch_s`` and stops.
    """
    key = pbx_lock_key(pipeline.pbx.pbx_id)
    pbx_id = pipeline.pbx.pbx_id
    while True:
        try:
            conn = await pool.acquire(timeout=5)
        except TRANSIENT_ERRORS as exc:
            log.warning("ami_lock_db_unavailable", pbx=pbx_id, error=str(exc))
            await asyncio.sleep(retry_s)
            continue
        try:
            got = await conn.fetchval("SELECT pg_try_advisory_lock($1)", key)
            if not got:
                log.info("ami_standby", pbx=pbx_id)
                await pool.release(conn)
                conn = None
                await asyncio.sleep(retry_s)
                continue
            epoch = await take_lease(conn, pbx_id, instance_name())
            pipeline.writer.fence = Fence(pbx_id, epoch)
            pipeline.writer.fenced = False
            log.info("ami_lock_acquired", pbx=pbx_id, epoch=epoch)
            await pipeline.restore_open_calls(pool)
            # The lock lives as long as this connection.  The pipeline outlives a database
            # outage (records are spooled), but not the loss of the lock's connection: then
            # another instance may lead, and the fence refuses this one's writes anyway.
            async with asyncio.TaskGroup() as group:
                group.create_task(watch_lock(conn, watch_s, max(5.0, watch_s)))
                await pipeline.run()
        finally:
            if conn is not None:
                with contextlib.suppress(*TRANSIENT_ERRORS):
                    await conn.execute("SELECT pg_advisory_unlock($1)", key)
                with contextlib.suppress(*TRANSIENT_ERRORS):
                    await pool.release(conn)
