"""The service process: one aiohttp app whose parts start in cleanup contexts and stop
cleanly; /healthz tells the truth about the database and each PBX."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from service.app import POOL, create_app, database_ctx, ledger_ctx
from service.config import PbxConfig
from service.replay.recording import load_recording
from service.replay.server import ReplayServer
from tests.conftest import trace_dir
from tests.replaying import config_for


async def test_serve_ingests_a_pbx_and_shuts_down_cleanly(db_url: str, tmp_path: Path) -> None:
    server = ReplayServer(load_recording(trace_dir("answered_agent_hangup") / "ami.jsonl"))
    port = await server.start()
    config = dataclasses.replace(
        config_for(tmp_path), database_url=db_url, ami_lock=True,
        pbxs=(PbxConfig(pbx_id="pbx1", ami_port=port, ami_username="u", ami_secret="p"),))
    app = create_app(config, [database_ctx, ledger_ctx])
    tasks_before = asyncio.all_tasks()
    async with TestClient(TestServer(app)) as client:
        await asyncio.wait_for(server.finished.wait(), 10)
        for _ in range(100):
            health = await (await client.get("/healthz")).json()
            if health["pbx"]["pbx1"]["events"] > 100 and not health["pbx"]["pbx1"]["live_calls"]:
                break
            await asyncio.sleep(0.05)
        response = await client.get("/healthz")
        assert response.status == 200
        body = await response.json()
        assert body["database"] is True and body["pbx"]["pbx1"]["ami_logged_in"] is True
        assert response.headers["X-Request-Id"]
        row = None
        for _ in range(100):  # the writer flushes every 50 ms
            async with app[POOL].acquire() as conn:
                row = await conn.fetchrow(
                    "SELECT outcome, answered_by FROM calls WHERE ended_at IS NOT NULL")
            if row is not None:
                break
            await asyncio.sleep(0.05)
        assert row is not None and (row["outcome"], row["answered_by"]) == ("answered", "201")
    # Shutdown cancelled and awaited every task the app started.
    await asyncio.sleep(0)
    leftover = {t for t in asyncio.all_tasks() - tasks_before if not t.done()}
    leftover.discard(asyncio.current_task())  # type: ignore[arg-type]
    assert not [t for t in leftover if "ledger" in t.get_name() or "ami" in t.get_name()]
    await server.close()


async def test_healthz_says_503_when_the_pbx_is_unreachable(db_url: str, tmp_path: Path) -> None:
    config = dataclasses.replace(
        config_for(tmp_path), database_url=db_url, ami_lock=False,
        pbxs=(PbxConfig(pbx_id="down", ami_port=1, ami_username="u", ami_secret="p"),))
    async with TestClient(TestServer(create_app(config, [database_ctx, ledger_ctx]))) as client:
        response = await client.get("/healthz")
        assert response.status == 503
        body = await response.json()
        assert body["database"] is True and body["pbx"]["down"]["ami_logged_in"] is False
