"""Idle and half-sent connections cannot take routing down (issue 12, High 3 and Medium 4).

``orikaeshi serve`` runs as a process under a low descriptor limit (RLIMIT_NOFILE 512, set
in the child before it starts).  A thousand HTTP connections from twenty addresses, idle or
stopped half-way through their headers, are opened against it; so are idle FastAGI
connections from an address that is not a PBX.  Route sessions from the PBX's address are
answered all through; the half-sent HTTP connections are closed by the header timeout, and
the web answers again afterwards.  Live streams are capped per user and in total.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app, database_ctx, web_ctx
from service.config import REPO_ROOT
from tests.agi_peer import agi_session, route_headers
from tests.live_asterisk import free_port
from tests.webapp import seed, web_config

NOFILE = 512


def _low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


@contextlib.asynccontextmanager
async def serve_process(db_url: str, tmp_path: Path, **env: str
                        ) -> AsyncIterator[tuple[int, int, asyncio.Task[bytes]]]:
    web_port, agi_port = free_port(), free_port()
    environ = {**os.environ, "DATABASE_URL": db_url,
               "ORIKAESHI_DATA_DIR": str(tmp_path / "data"),
               "ORIKAESHI_WEB_PORT": str(web_port), "ORIKAESHI_AGI_PORT": str(agi_port),
               "ORIKAESHI_AMI_PORT": "1",  # no PBX: the ledger retries, routing works
               "ORIKAESHI_CLIENTS_FILE": str(REPO_ROOT / "deploy/clients.sample.yaml"),
               **env}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "serve", env=environ, cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        preexec_fn=_low_nofile)
    assert process.stderr is not None
    stderr = asyncio.create_task(process.stderr.read())
    try:
        async with aiohttp.ClientSession() as http:

            async def up() -> bool:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{web_port}/healthz") as response:
                        body = await response.json()
                        return bool(body.get("routing_version"))
                return False

            for _ in range(300):
                if await up():
                    break
                await asyncio.sleep(0.1)
        yield web_port, agi_port, stderr
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)


async def open_idle(port: int, source: str, partial: bytes) -> asyncio.StreamWriter | None:
    """A connection from ``source`` that sends ``partial`` and then nothing."""
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                       local_addr=(source, 0))
    except OSError:
        return None
    writer.write(partial)
    return writer


async def routed(agi_port: int, n: int) -> int:
    answered = 0
    for i in range(n):
        commands = await agi_session(agi_port, route_headers("0312345678", "09011112222",
                                                             uniqueid=f"2.{i}"))
        if commands and commands[0].startswith("EXEC MSet ") and "ROUTE_CLIENT=KSL" in \
                commands[0]:
            answered += 1
    return answered


@pytest.mark.slow
async def test_idle_connection_flood_under_a_low_descriptor_limit(db_url: str,
                                                                  tmp_path: Path) -> None:
    async with serve_process(db_url, tmp_path, ORIKAESHI_HTTP_HEADER_TIMEOUT_S="3"
                             ) as (web_port, agi_port, stderr):
        assert await routed(agi_port, 3) == 3
        half = [b"", b"GET /api/calls HTTP/1.1\r\nHost: x\r\n", b"POST /api/login HTTP/1.1\r\n"]
        flood = await asyncio.gather(*[
            open_idle(web_port, f"127.0.0.{2 + i % 20}", half[i % 3]) for i in range(1000)])
        # Idle FastAGI connections from an address that is not a PBX: closed at once.
        strangers = await asyncio.gather(*[
            open_idle(agi_port, "127.0.0.2", b"agi_network: yes\n") for _ in range(200)])
        try:
            # Routing answers every session while the flood holds its sockets.
            assert await routed(agi_port, 30) == 30
            assert any(w is not None for w in flood)
            # The HTTP budget is full of half-sent connections; the header timeout closes
            # them, and the web answers again.
            async with aiohttp.ClientSession() as http:
                async def healthz_answers() -> bool:
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        async with asyncio.timeout(2), http.get(
                                f"http://127.0.0.1:{web_port}/healthz") as response:
                            return response.status in (200, 503)
                    return False

                for _ in range(100):
                    if await healthz_answers():
                        break
                    await asyncio.sleep(0.2)
                assert await healthz_answers()
            assert await routed(agi_port, 3) == 3
        finally:
            for writer in [*flood, *strangers]:
                if writer is not None:
                    writer.close()
    log = (await stderr).decode("utf-8", "replace")
    assert "http_connection_refused" in log  # the budget refused the excess
    assert "agi_refused_source" in log
    assert "Too many open files" not in log


@pytest.fixture
async def stream_api(db_url: str, pool, tmp_path: Path) -> AsyncIterator[tuple[TestClient,
                                                                             dict[str, str]]]:
    seeded = await seed(pool)
    app = create_app(web_config(tmp_path, db_url, stream_max_per_user=2, stream_max_total=3),
                     [database_ctx, web_ctx])
    async with TestClient(TestServer(app)) as client:
        yield client, seeded.tokens


async def test_live_streams_are_capped_per_user_and_in_total(stream_api) -> None:
    client, tokens = stream_api

    async def open_stream(who: str) -> aiohttp.ClientResponse:
        return await client.get("/api/stream",
                                headers={"Authorization": f"Bearer {tokens[who]}"})

    ksl = [await open_stream("ksl") for _ in range(2)]
    assert all(r.status == 200 for r in ksl)
    refused = await open_stream("ksl")
    assert refused.status == 429 and "per user" in (await refused.json())["error"]
    assert (await open_stream("sup")).status == 200
    full = await open_stream("admin")
    assert full.status == 429 and "instance" in (await full.json())["error"]
    for response in ksl:
        response.close()
