"""The embedded PostgreSQL outlives a ``kill -9`` of the ``orikaeshi serve`` that started it,
and the next ``serve`` to stop is the last owner: it stops the server.  Real processes, a
real server in the test's own data directory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import aiohttp
import psutil

from service.config import REPO_ROOT
from tests.live_asterisk import free_port


def postgres_of(pgdata: Path) -> list[psutil.Process]:
    """Every postgres process serving ``pgdata`` (the postmaster and its children)."""
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] == "postgres" and str(pgdata) in cmdline:
            found.append(proc)
    return found


def tail(log: Path) -> str:
    """The end of a serve process's log, shown with a failure."""
    return log.read_text(errors="replace")[-3000:]


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


async def start_serve(data_dir: Path, log: Path) -> tuple[asyncio.subprocess.Process, int]:
    web_port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "ORIKAESHI_CONFIG")}
    env.update({"ORIKAESHI_DATA_DIR": str(data_dir), "ORIKAESHI_WEB_PORT": str(web_port),
                "ORIKAESHI_AGI_PORT": str(free_port()), "ORIKAESHI_AMI_PORT": str(free_port()),
                "ORIKAESHI_LOG_FORMAT": "json"})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "serve", env=env, cwd=REPO_ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=log.open("wb"))
    return process, web_port


async def wait_until_serving(process: asyncio.subprocess.Process, web_port: int,
                             log: Path) -> None:
    """Until /healthz answers with the database reachable (503 is fine: no PBX here)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(1200):
            assert process.returncode is None, \
                "serve exited: " + tail(log)
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{web_port}/healthz") as response:
                    if (await response.json())["database"] is True:
                        return
            await asyncio.sleep(0.1)
    raise AssertionError("serve never answered /healthz with its database: " +
                         tail(log))


async def test_embedded_postgres_is_stopped_after_a_kill_9_and_a_restart(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    pgdata = (data_dir / "postgres").resolve()
    logs = [tmp_path / "serve-1.log", tmp_path / "serve-2.log"]  # kept for a failure
    first, port = await start_serve(data_dir, logs[0])
    second = None
    try:
        await wait_until_serving(first, port, logs[0])
        server_pid = postmaster_pid(pgdata)
        assert server_pid is not None and psutil.pid_exists(server_pid)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        # The owner is gone without a word; its server is still there, with the dead owner
        # in its list.
        assert psutil.pid_exists(server_pid) and postgres_of(pgdata)
        assert str(first.pid) in (pgdata / ".handle_pids.json").read_text()

        second, port = await start_serve(data_dir, logs[1])
        await wait_until_serving(second, port, logs[1])
        assert postmaster_pid(pgdata) == server_pid  # the same server, taken over
        assert str(first.pid) not in (pgdata / ".handle_pids.json").read_text()
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 60) == 0, \
            tail(logs[1])
    finally:
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
    # The last owner stopped it: no postgres process is left for this data directory.
    assert not psutil.pid_exists(server_pid) or \
        psutil.Process(server_pid).status() == psutil.STATUS_ZOMBIE
    assert postgres_of(pgdata) == [], tail(logs[1])
