"""Routing benchmark: the ``route`` FastAGI against a load generator playing Asterisk.

Setup: 1,000 clients (one DID each, open all day so every call runs the repeat lookup) and a
history of 10 million inbound calls in PostgreSQL (kept between runs in the database
``orikaeshi_bench_routing`` of the configured or embedded server; built once, ~2 minutes).
The server runs in its own process pinned to one core; the generator (an asyncio Protocol
that answers every command ``200 result=1`` as Asterisk does) runs pinned to the other.

For orikaeshi's route and, in the same run, for panoramisk 1.4's bare ``Application`` setting
the same variables to constants, it prints:

  (a) the saturated rate with 200 sessions in flight;
  (b) p50/p99 session latency at an offered 1,000 sessions/s (open loop).

    .venv/bin/python bench/agi_route.py                  # 10M calls of history
    .venv/bin/python bench/agi_route.py --calls 1000000 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from service.config import Config
from service.logs import configure_logging
from service.store.db import database_url, migrate_url
from service.store.scratch import with_database

BENCH_DB = "orikaeshi_bench_routing"
CLIENTS = 1000
NUMBERS = 1_000_000
YEAR_S = 365 * 86400


def did(i: int) -> str:
    return f"03{5000_0000 + i:08d}"


def caller(i: int) -> str:
    return f"090{i:08d}"


def clients_yaml() -> str:
    lines = ["defaults:", "  national_holidays: none",
             "  repeat: {earlier_calls: 2, window: 72h, queue: q-sup, priority: 10}",
             "clients:"]
    for i in range(CLIENTS):
        lines += [f"  C{i:04d}:", f"    name: Client {i}", f"    dids: [{did(i)}]",
                  "    hours: {daily: 00:00-24:00}", f"    queue: q-{i:04d}",
                  f"    whisper: custom/whisper-{i:04d}", f"    greeting: custom/greeting-{i:04d}",
                  f"    voicemail: {1000 + i}@vm"]
    return "\n".join(lines) + "\n"


async def ensure_history(server_url: str, calls: int) -> str:
    """The bench database with ``calls`` inbound calls of history; built when missing."""
    url = with_database(server_url, BENCH_DB)
    admin = await asyncpg.connect(server_url)
    try:
        if await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", BENCH_DB):
            conn = await asyncpg.connect(url)
            try:
                have = await conn.fetchval("SELECT count(*) FROM calls WHERE pbx_id = 'bench'")
                indexes = await conn.fetchval(
                    "SELECT count(*) FROM pg_indexes WHERE indexname = 'calls_repeat'")
            except asyncpg.UndefinedTableError:
                have, indexes = -1, 0
            finally:
                await conn.close()
            if have == calls and indexes:
                await migrate_url(url)
                return url
            await admin.execute(f'DROP DATABASE "{BENCH_DB}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
    finally:
        await admin.close()
    await migrate_url(url)
    conn = await asyncpg.connect(url)
    try:
        print(f"building the history: {calls:,} calls (once) ...", flush=True)
        started = time.perf_counter()
        # Bulk load without the secondary indexes (as the migrations made them), then
        # build them: far faster than maintaining them row by row.
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'calls' "
            "AND indexname NOT LIKE '%pkey' AND indexname NOT LIKE '%_key'")
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
        step = 1_000_000
        for first in range(0, calls, step):
            await conn.execute(f"""
                INSERT INTO calls (pbx_id, linkedid, direction, client, did, caller_number,
                    caller_e164, caller_uniqueid, uniqueids, started_at, ended_at, outcome,
                    wait_s, talk_s, answered_by, callbacks_seen_at)
                SELECT 'bench', 'h' || g, 'inbound', 'C' || lpad((g % {CLIENTS})::text, 4, '0'),
                       '03' || (50000000 + g % {CLIENTS}),
                       '090' || lpad((g % {NUMBERS})::text, 8, '0'),
                       '+8190' || lpad((g % {NUMBERS})::text, 8, '0'),
                       'h' || g, ARRAY['h' || g],
                       now() - ((g::bigint * 7919) % {YEAR_S}) * interval '1 second',
                       now() - ((g::bigint * 7919) % {YEAR_S}) * interval '1 second'
                             + interval '2 minutes',
                       (ARRAY['answered','abandoned','short_abandon','timeout'])[1 + g % 4],
                       g % 40, g % 300, (200 + g % 20)::text, now()
                FROM generate_series({first + 1}, {min(calls, first + step)}) AS g""")
            print(f"  {min(calls, first + step):,} rows", flush=True)
        for index in indexes:
            await conn.execute(index["indexdef"])
        await conn.execute("ANALYZE calls")
        print(f"history built in {time.perf_counter() - started:.0f} s", flush=True)
        return url
    finally:
        await conn.close()


# -- servers (each in its own process, pinned) ----------------------------------------------

def serve_orikaeshi(url: str, port_queue: multiprocessing.Queue, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    configure_logging("error", "console")

    async def main() -> None:
        from agi.context import AgiContext
        from agi.route import route
        from agi.server import AgiServer
        from service.callbacks.recent import FilteredRepeatLookup, RecentCallers
        from service.callbacks.repeat_sql import SqlRepeatLookup
        from service.clients.schema import parse_clients
        from service.routing.cache import RoutingCache
        from service.store.db import create_pool

        pool = await create_pool(url, min_size=4, max_size=16, read_only_fast=True)
        listen_pool = await create_pool(url, min_size=1, max_size=2)
        cache = RoutingCache()
        cache.directory = parse_clients(clients_yaml(), "bench.yaml")
        # As in service/app.py: PostgreSQL is asked only about callers who called recently.
        recent = RecentCallers(lambda: 72 * 3600.0)
        watcher = asyncio.create_task(recent.run(listen_pool))
        for _ in range(600):  # the initial load, before taking calls
            if recent.ready:
                break
            await asyncio.sleep(0.1)
        lookup = FilteredRepeatLookup(SqlRepeatLookup(pool), recent)
        server = AgiServer(state=AgiContext(cache, lookup), max_sessions=1000)
        server.add_route("route", route)
        port_queue.put(await server.start("127.0.0.1", 0))
        await watcher

    asyncio.run(main())


def serve_panoramisk(variables: int, port_queue: multiprocessing.Queue,
                     cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    import logging

    logging.disable(logging.CRITICAL)

    async def main() -> None:
        from panoramisk.fast_agi import Application

        app = Application(loop=asyncio.get_running_loop())

        async def route(request) -> None:  # type: ignore[no-untyped-def]
            for i in range(variables):
                await request.send_command(f'SET VARIABLE BARE_{i} "constant-{i}"')

        app.add_route("route", route)
        server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
        port_queue.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the load generator: Asterisk's side, as lean as possible ---------------------------------

class Session(asyncio.Protocol):
    """Send the headers, answer each command line, note when the server closes."""

    unchecked = 0  # sessions routed without their repeat check (flagged by the route)

    def __init__(self, headers: bytes, done: asyncio.Future[tuple[float, int]]) -> None:
        self.headers = headers
        self.done = done
        self.started = time.perf_counter()
        self.commands = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.headers)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if b"repeat_check_unavailable" in data:
            Session.unchecked += 1
        for line in data.splitlines():
            self.commands += 1
            # As Asterisk answers: EXEC gives the application's result (0), SET VARIABLE 1.
            self.transport.write(b"200 result=0\n" if line.startswith(b"EXEC ")
                                 else b"200 result=1\n")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result((time.perf_counter() - self.started, self.commands))


def headers_for(i: int, rnd: random.Random) -> bytes:
    number = caller(rnd.randrange(NUMBERS))
    client = rnd.randrange(CLIENTS)
    pairs = [("agi_network", "yes"), ("agi_network_script", "route"),
             ("agi_request", "agi://127.0.0.1/route"),
             ("agi_channel", f"PJSIP/trunk-{i:08x}"), ("agi_language", "ja"),
             ("agi_type", "PJSIP"), ("agi_uniqueid", f"1795400000.{i}"),
             ("agi_version", "22.0.0"), ("agi_callerid", number),
             ("agi_calleridname", "田中太郎"), ("agi_callingpres", "0"),
             ("agi_callingani2", "0"), ("agi_callington", "0"), ("agi_callingtns", "0"),
             ("agi_dnid", did(client)), ("agi_rdnis", "unknown"),
             ("agi_context", "orikaeshi-inbound"), ("agi_extension", did(client)),
             ("agi_priority", "4"), ("agi_enhanced", "0.0"), ("agi_accountcode", ""),
             ("agi_threadid", "140439889888960"), ("agi_arg_1", did(client))]
    return ("".join(f"{k}: {v}\n" for k, v in pairs) + "\n").encode()


async def one(loop: asyncio.AbstractEventLoop, port: int, headers: bytes) -> tuple[float, int]:
    done: asyncio.Future[tuple[float, int]] = loop.create_future()
    await loop.create_connection(lambda: Session(headers, done), "127.0.0.1", port)
    return await done


async def saturated(port: int, in_flight: int, seconds: float) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    rnd = random.Random(1)
    count = 0
    commands = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count, commands
        while time.perf_counter() < deadline:
            _, n = await one(loop, port, headers_for(count, rnd))
            count += 1
            commands += n

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return count / (time.perf_counter() - started), commands // max(count, 1)


async def offered(port: int, rate: float, seconds: float) -> list[float]:
    loop = asyncio.get_running_loop()
    rnd = random.Random(2)
    total = int(rate * seconds)
    start = time.perf_counter()
    tasks = []
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(loop, port, headers_for(i, rnd))))
    results = await asyncio.gather(*tasks)
    return [latency for latency, _ in results]


def measure(port: int, pid: int, seconds: float, rate: float) -> dict[str, float]:
    import psutil

    server = psutil.Process(pid)

    async def run() -> dict[str, float]:
        await saturated(port, 50, 1.0)  # warm-up: connections, caches, plans
        Session.unchecked = 0
        cpu_before = sum(server.cpu_times()[:2])
        sat, commands = await saturated(port, 200, seconds)
        busy = (sum(server.cpu_times()[:2]) - cpu_before) / seconds
        unchecked_saturated = Session.unchecked
        Session.unchecked = 0
        latencies = sorted(await offered(port, rate, seconds))
        return {"saturated": sat, "commands": commands, "server_cpu": busy,
                "unchecked_saturated": unchecked_saturated,
                "unchecked_offered": Session.unchecked,
                "p50_ms": statistics.median(latencies) * 1000,
                "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000}
    return asyncio.run(run())


def route_variables() -> int:
    """How many variables the route sets for an ordinary call (the bare app sets as many)."""
    from datetime import UTC, datetime

    from service.clients.schema import parse_clients
    from service.routing.policy import decide

    directory = parse_clients(clients_yaml(), "bench.yaml")
    return len(decide(directory, did(1), caller(1), datetime.now(UTC)).variables())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--generator-cpu", type=int, default=1)
    args = parser.parse_args()
    configure_logging("error", "console")
    pin = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1
    if pin:
        os.sched_setaffinity(0, {args.generator_cpu})
    config = dataclasses.replace(Config())
    url = asyncio.run(_prepare(config, args.calls))
    results = {}
    for name in ("orikaeshi", "panoramisk"):
        ports: multiprocessing.Queue = multiprocessing.Queue()
        if name == "orikaeshi":
            target, targs = serve_orikaeshi, (url, ports, args.server_cpu if pin else None)
        else:
            target, targs = serve_panoramisk, (route_variables(), ports,
                                               args.server_cpu if pin else None)
        proc = multiprocessing.Process(target=target, args=targs, daemon=True)
        proc.start()
        try:
            port = ports.get(timeout=60)
            assert proc.pid is not None
            results[name] = measure(port, proc.pid, args.seconds, args.rate)
        finally:
            proc.terminate()
            proc.join()
    print(f"history: {args.calls:,} calls; {CLIENTS} clients; server pinned to one core")
    print(f"{'':28} {'saturated (200 in flight)':>26} {'p50 @' + str(int(args.rate)) + '/s':>12} "
          f"{'p99 @' + str(int(args.rate)) + '/s':>12}")
    for name, label in (("orikaeshi", "orikaeshi route"),
                        ("panoramisk", "panoramisk bare Application")):
        r = results[name]
        print(f"{label:28} {r['saturated']:>14,.0f} /s (cpu {r['server_cpu']:.0%}) "
              f"{r['p50_ms']:>9.2f} ms {r['p99_ms']:>9.2f} ms")
    r = results["orikaeshi"]
    print(f"orikaeshi sessions routed without their repeat check (lookup past its 150 ms "
          f"budget): {int(r['unchecked_saturated'])} while saturated, "
          f"{int(r['unchecked_offered'])} at {int(args.rate)}/s")
    print(f"(each session sets {route_variables()} variables: orikaeshi in "
          f"{int(results['orikaeshi']['commands'])} round trip(s) (EXEC MSet) after a repeat "
          f"lookup in PostgreSQL, panoramisk in {int(results['panoramisk']['commands'])} "
          "SET VARIABLE round trips)")


async def _prepare(config: Config, calls: int) -> str:
    server = await database_url(config)
    return await ensure_history(server, calls)


if __name__ == "__main__":
    main()
