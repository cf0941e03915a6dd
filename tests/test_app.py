"""The service process: one aiohttp app whose parts start in cleanup contexts and stop
cleanly; /healthz tells the truth about the database and each PBX."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from agi import variables
from service.app import POOL, create_app, database_ctx, ledger_ctx
from service.config import REPO_ROOT, PbxConfig
from service.replay.recording import load_recording
from service.replay.server import ReplayServer
from tests.agi_peer import agi_session, route_headers
from tests.conftest import trace_dir
from tests.live_asterisk import free_port
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
            pbx1 = {p["pbx_id"]: p for p in health["pbx"]}["pbx1"]
            if pbx1["events"] > 100 and not pbx1["live_calls"]:
                break
            await asyncio.sleep(0.05)
        response = await client.get("/healthz")
        assert response.status == 200
        body = await response.json()
        assert body["database"] is True and body["pbx"][0]["state"] == "up"
        assert (body["pbx"][0]["pbx_id"], body["pbx"][0]["port"]) == ("pbx1", port)
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
        assert body["database"] is True and body["pbx"][0]["state"] == "down"


async def test_orikaeshi_serve_process_routes_records_and_stops_on_sigterm(
        db_url: str, tmp_path: Path) -> None:
    """The README's first command, as a process: on uvloop, it ingests a PBX, answers a
    FastAGI route, reports itself healthy, logs JSON, and exits 0 on SIGTERM."""
    pbx = ReplayServer(load_recording(trace_dir("answered_agent_hangup") / "ami.jsonl"))
    ami_port = await pbx.start()
    web_port, agi_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "ORIKAESHI_DATA_DIR": str(tmp_path / "data"),
           "ORIKAESHI_WEB_PORT": str(web_port), "ORIKAESHI_AGI_PORT": str(agi_port),
           "ORIKAESHI_AMI_PORT": str(ami_port), "ORIKAESHI_AMI_USERNAME": "u",
           "ORIKAESHI_AMI_SECRET": "p", "ORIKAESHI_PBX_ID": "pbx1",
           "ORIKAESHI_CLIENTS_FILE": str(REPO_ROOT / "deploy/clients.sample.yaml")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "serve", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    stderr = asyncio.create_task(process.stderr.read())
    try:
        health: dict[str, Any] = {}
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{web_port}/healthz") as response:
                        health = await response.json()
                        if response.status == 200 and health["routing_version"]:
                            break
                await asyncio.sleep(0.1)
        assert health["ok"] is True and health["event_loop"] == "uvloop"
        assert health["pbx"][0]["state"] == "up" and health["pbx"][0]["pbx_id"] == "pbx1"
        # The FastAGI listener is named even before its first session (it said null).
        assert health["agi"]["listening"] == f"127.0.0.1:{agi_port}", health["agi"]

        # A DID no client owns: answered all the same, in the unknown-DID queue.
        commands = await agi_session(agi_port, route_headers("0399999999", "09012345678"))
        assert len(commands) == 1 and commands[0].startswith("EXEC MSet ")
        assert f"{variables.QUEUE}=q-ksl" in commands[0]
        assert "unknown_did" in commands[0]

        await asyncio.wait_for(pbx.finished.wait(), 20)
        conn = await asyncpg.connect(db_url)
        try:
            row = None
            for _ in range(200):
                row = await conn.fetchrow("SELECT outcome, answered_by FROM calls "
                                          "WHERE pbx_id = 'pbx1' AND ended_at IS NOT NULL")
                if row is not None:
                    break
                await asyncio.sleep(0.05)
        finally:
            await conn.close()
        assert row is not None and (row["outcome"], row["answered_by"]) == ("answered", "201")
    except AssertionError:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
        print((await stderr).decode("utf-8")[-6000:])  # shown with the failure
        raise
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
        await pbx.close()
    log = (await stderr).decode("utf-8")
    assert code == 0, log[-2000:]
    events = [json.loads(line)["event"] for line in log.splitlines() if line.startswith("{")]
    assert "serving" in events and "shutting_down" in events
    # Phone numbers are masked in the logs, even the caller of the routed call.
    assert "09012345678" not in log
