"""FastAGI latency while the web is stormed with logins (issue 12).

The real ``orikaeshi serve`` runs as a process pinned to one core (uvloop, embedded or
configured PostgreSQL, the sample clients, an admin user; ``login_workers`` at its default
of 1, so argon2 runs in one worker thread).  This process, pinned to the other core, offers
FastAGI ``route`` sessions open-loop at ``--rate`` per second (1,000 by default) for
``--seconds``, twice: alone, then with ``--logins`` wrong-password logins per second (200 by
default, unknown user names, from 50 loopback source addresses) hitting ``/api/login``.

It prints p50/p99/max of the route sessions in both phases, how many sessions went
unanswered (closed before any command: the dialplan's fallback would have queued them), and
what the logins got (401 checked, 429 throttled, 503 pool busy).

    .venv/bin/python bench/login_storm.py
    .venv/bin/python bench/login_storm.py --seconds 5 --rate 500 --logins 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import asyncpg
from agi_route import Session  # the FastAGI peer of the routing bench (plays Asterisk)

from service.config import REPO_ROOT, Config
from service.logs import configure_logging
from service.store.db import database_url
from service.store.scratch import scratch_database

KSL_DID = "0312345678"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def route_headers(i: int) -> bytes:
    pairs = [("agi_network", "yes"), ("agi_network_script", "route"),
             ("agi_request", "agi://127.0.0.1/route"), ("agi_channel", f"PJSIP/t-{i:08x}"),
             ("agi_uniqueid", f"1795400000.{i}"), ("agi_callerid", f"090{i % 10**8:08d}"),
             ("agi_calleridname", "田中太郎"), ("agi_context", "orikaeshi-inbound"),
             ("agi_extension", KSL_DID), ("agi_priority", "4"), ("agi_arg_1", KSL_DID)]
    return ("".join(f"{k}: {v}\n" for k, v in pairs) + "\n").encode()


async def route_sessions(port: int, rate: float, seconds: float) -> list[float]:
    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    start = time.perf_counter()
    tasks = []
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        done: asyncio.Future[tuple[float, int]] = loop.create_future()
        await loop.create_connection(lambda d=done, n=i: Session(route_headers(n), d),
                                     "127.0.0.1", port)
        tasks.append(done)
    return sorted(latency for latency, _ in await asyncio.gather(*tasks))


async def login_storm(base: str, rate: float, seconds: float) -> Counter[int]:
    statuses: Counter[int] = Counter()
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        local_addr=(f"127.0.0.{10 + n}", 0), limit=0)) for n in range(50)]
    total = int(rate * seconds)
    start = time.perf_counter()

    async def one(i: int) -> None:
        try:
            async with sessions[i % 50].post(
                    f"{base}/api/login", json={"username": f"nobody{i}",
                                               "password": "wrong-password"},
                    timeout=aiohttp.ClientTimeout(total=60)) as response:
                statuses[response.status] += 1
        except (aiohttp.ClientError, TimeoutError):
            statuses[0] += 1

    tasks = []
    try:
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    finally:
        for session in sessions:
            await session.close()
    return statuses


def figures(latencies: list[float]) -> str:
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    return (f"p50 {statistics.median(latencies) * 1000:7.2f} ms   p99 {p99 * 1000:8.2f} ms   "
            f"max {latencies[-1] * 1000:8.2f} ms   ({len(latencies):,} sessions)")


async def wait_up(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base}/healthz") as response:
                    if (await response.json()).get("routing_version"):
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError("the service did not come up")


async def seed_admin(url: str) -> None:
    from service.store import web_sql
    from service.web.auth import hash_password

    conn = await asyncpg.connect(url)
    try:
        await web_sql.create_user(conn, "admin", hash_password("correct horse battery"),
                                  "admin")
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> None:
    server_url = await database_url(Config())
    async with scratch_database(server_url, "orikaeshi_bench_storm") as url:
        from service.store.db import migrate_url

        await migrate_url(url)
        await seed_admin(url)
        web_port, agi_port = free_port(), free_port()
        data = Path(tempfile.mkdtemp(prefix="orikaeshi-storm-"))
        env = {**os.environ, "DATABASE_URL": url, "ORIKAESHI_DATA_DIR": str(data),
               "ORIKAESHI_WEB_PORT": str(web_port), "ORIKAESHI_AGI_PORT": str(agi_port),
               "ORIKAESHI_AMI_PORT": "1", "ORIKAESHI_LOG_LEVEL": "error",
               "ORIKAESHI_AGI_MAX_SESSIONS": "2000",
               "ORIKAESHI_CLIENTS_FILE": str(REPO_ROOT / "deploy/clients.sample.yaml")}
        command = [sys.executable, "-m", "service", "serve"]
        if args.pin:
            command = ["taskset", "-c", str(args.server_cpu), *command]
        process = await asyncio.create_subprocess_exec(
            *command, env=env, cwd=data, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        base = f"http://127.0.0.1:{web_port}"
        try:
            await wait_up(base)
            await route_sessions(agi_port, 200, 1.0)  # warm-up
            Session.unanswered = 0
            alone = await route_sessions(agi_port, args.rate, args.seconds)
            unanswered_alone = Session.unanswered
            Session.unanswered = 0
            storm = asyncio.create_task(login_storm(base, args.logins, args.seconds + 1))
            await asyncio.sleep(1.0)  # the storm under way before measuring
            stormed = await route_sessions(agi_port, args.rate, args.seconds)
            unanswered_storm = Session.unanswered
            statuses = await storm
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)
    print(f"FastAGI route at {args.rate:,.0f}/s offered for {args.seconds:g} s, service "
          f"pinned to one core, login_workers=1")
    print(f"  alone:                      {figures(alone)}   unanswered {unanswered_alone}")
    print(f"  with {args.logins:g} logins/s:        {figures(stormed)}   "
          f"unanswered {unanswered_storm}")
    print("  logins: " + ", ".join(f"{code or 'error'}: {count}"
                                   for code, count in sorted(statuses.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--logins", type=float, default=200.0)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--generator-cpu", type=int, default=1)
    args = parser.parse_args()
    configure_logging("error", "console")
    args.pin = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1
    if args.pin:
        os.sched_setaffinity(0, {args.generator_cpu})
    from service.eventloop import loop_factory

    with asyncio.Runner(loop_factory=loop_factory("uvloop")) as runner:
        runner.run(run(args))


if __name__ == "__main__":
    main()
