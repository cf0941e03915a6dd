"""Routing benchmark: the ``route`` FastAGI against a load generator playing Asterisk.

Setup: 1,000 clients (one DID each, open all day so every call runs the repeat lookup) and a
history of 10 million inbound calls in PostgreSQL (kept between runs in the database
``orikaeshi_bench_routing`` of the configured or embedded server; built once, ~2 minutes).
The server runs in its own process pinned to one core; the generator (an asyncio Protocol
that answers every command ``200 result=1`` as Asterisk does) runs pinned to the other.

For orikaeshi's route (on the service's event loop, uvloop, and on asyncio's) and, in the
same run, for panoramisk 1.4's bare ``Application`` setting the same variables to constants
(on asyncio's loop, as panoramisk runs by default, and on uvloop, to show what the loop alone
gives), it prints:

  (a) the saturated rate with 200 sessions in flight;
  (b) p50/p99 session latency at an offered 1,000 sessions/s (open loop).

10% of the sessions (``--repeat-share``) come from a caller who called the same client in the
last 70 hours, so their repeat lookup runs in PostgreSQL; the others are new callers, answered
from memory.  Those sessions' own p50/p99 are printed too.

    .venv/bin/python bench/agi_route.py                  # 10M calls of history
    .venv/bin/python bench/agi_route.py --calls 1000000 --seconds 5 --rounds 1
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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import benchdb

from service.config import Config
from service.logs import configure_logging
from service.store.db import database_url

BENCH_DB = "orikaeshi_bench_routing"
CLIENTS = 1000
NUMBERS = 1_000_000
YEAR_S = 365 * 86400
# The history is written in time order, as a real ledger is (the last days' calls sit together
# at the end of the table); it is rebuilt when its layout changes or its newest call is more
# than a day old, because repeat windows count back from now.
LAYOUT = "orikaeshi bench history v2 (time-ordered, one year up to the build)"


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
    async def is_current(conn: asyncpg.Connection) -> bool:
        have = await conn.fetchval("SELECT count(*) FROM calls WHERE pbx_id = 'bench'")
        indexes = await conn.fetchval(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'calls_repeat'")
        layout = await conn.fetchval("SELECT obj_description('calls'::regclass)")
        fresh = await conn.fetchval(
            "SELECT max(started_at) > now() - interval '1 day' FROM calls")
        return bool(have == calls and indexes and layout == LAYOUT and fresh)

    url, kept = await benchdb.kept_or_new(server_url, BENCH_DB, is_current)
    if kept:
        return url
    conn = await asyncpg.connect(url)
    try:
        print(f"building the history: {calls:,} calls (once) ...", flush=True)
        started = time.perf_counter()
        indexes = await benchdb.drop_secondary_indexes(conn, "calls")
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
                       now() - ({calls} - g) * interval '{YEAR_S / calls} seconds',
                       now() - ({calls} - g) * interval '{YEAR_S / calls} seconds'
                             + interval '2 minutes',
                       (ARRAY['answered','abandoned','short_abandon','timeout'])[1 + g % 4],
                       g % 40, g % 300, (200 + g % 20)::text, now()
                FROM generate_series({first + 1}, {min(calls, first + step)}) AS g""")
            print(f"  {min(calls, first + step):,} rows", flush=True)
        for index in indexes:
            await conn.execute(index)
        await conn.execute("ANALYZE calls")
        await conn.execute(f"COMMENT ON TABLE calls IS '{LAYOUT}'")
        print(f"history built in {time.perf_counter() - started:.0f} s", flush=True)
        return url
    finally:
        await conn.close()


# -- servers (each in its own process, pinned) ----------------------------------------------

def serve_orikaeshi(url: str, port_queue: multiprocessing.Queue, cpu: int | None,
                    event_loop: str) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    configure_logging("error", "console")
    from service.eventloop import freeze_startup_objects, loop_factory

    async def main() -> None:
        from agi.context import AgiContext
        from agi.route import route
        from agi.server import AgiServer
        from service.callbacks.recent import FilteredRepeatLookup, RecentCallers
        from service.callbacks.repeat_sql import SqlRepeatLookup, create_lookup_pool
        from service.clients.schema import parse_clients
        from service.routing.cache import RoutingCache
        from service.store.db import create_pool

        pool = await create_lookup_pool(url)  # as service/app.py
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
        freeze_startup_objects()  # as `orikaeshi serve` does
        port_queue.put(await server.start("127.0.0.1", 0))
        await watcher

    # The service's own event loop (uvloop unless configured otherwise), as `orikaeshi serve`.
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        runner.run(main())


def serve_panoramisk(variables: int, port_queue: multiprocessing.Queue,
                     cpu: int | None, on_uvloop: bool = False) -> None:
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

    if on_uvloop:
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())


# -- the load generator: Asterisk's side, as lean as possible ---------------------------------

class Session(asyncio.Protocol):
    """Send the headers, answer each command line, note when the server closes."""

    unchecked = 0  # sessions routed without their repeat check (flagged by the route)
    unanswered = 0  # sessions closed before any command: the dialplan's fallback would route

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
        if self.commands == 0:
            Session.unanswered += 1
        if not self.done.done():
            self.done.set_result((time.perf_counter() - self.started, self.commands))


# Share of sessions from a caller who already called the same client inside the repeat window:
# those cannot be answered from memory and cost a query in PostgreSQL.
REPEAT_SHARE = 0.10
RECENT_PAIRS: list[tuple[int, int]] = []  # (client, number) with a call in the last 72 h


async def load_recent_pairs(url: str, limit: int = 20_000) -> list[tuple[int, int]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT client, caller_number FROM calls WHERE started_at > now() - interval '70h' "
            "AND pbx_id = 'bench' LIMIT $1", limit)
    finally:
        await conn.close()
    return [(int(r["client"][1:]), int(r["caller_number"][3:])) for r in rows]


def headers_for(i: int, rnd: random.Random) -> tuple[bytes, bool]:
    """One session's headers, and whether its caller called the client inside the window."""
    repeat = bool(RECENT_PAIRS) and rnd.random() < REPEAT_SHARE
    if repeat:
        client, number_index = rnd.choice(RECENT_PAIRS)
    else:
        client, number_index = rnd.randrange(CLIENTS), rnd.randrange(NUMBERS)
    number = caller(number_index)
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
    return ("".join(f"{k}: {v}\n" for k, v in pairs) + "\n").encode(), repeat


async def one(loop: asyncio.AbstractEventLoop, port: int, headers: bytes) -> tuple[float, int]:
    done: asyncio.Future[tuple[float, int]] = loop.create_future()
    await loop.create_connection(lambda: Session(headers, done), "127.0.0.1", port)
    return await done


async def saturated(port: int, in_flight: int, seconds: float,
                    seed: int = 1) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    rnd = random.Random(seed)
    count = 0
    commands = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count, commands
        while time.perf_counter() < deadline:
            _, n = await one(loop, port, headers_for(count, rnd)[0])
            count += 1
            commands += n

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return count / (time.perf_counter() - started), commands / max(count, 1)


async def offered(port: int, rate: float, seconds: float) -> list[tuple[float, bool]]:
    loop = asyncio.get_running_loop()
    rnd = random.Random(2)
    total = int(rate * seconds)
    start = time.perf_counter()
    tasks = []
    kinds: list[bool] = []
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        headers, repeat = headers_for(i, rnd)
        kinds.append(repeat)
        tasks.append(asyncio.create_task(one(loop, port, headers)))
    results = await asyncio.gather(*tasks)
    return [(latency, repeat) for (latency, _), repeat in zip(results, kinds, strict=True)]


def percentile(ordered: list[float], q: float) -> float:
    return ordered[max(0, int(len(ordered) * q) - 1)]


def measure(port: int, pid: int, seconds: float, rate: float) -> dict[str, float]:
    import psutil

    server = psutil.Process(pid)

    async def run() -> dict[str, float]:
        await saturated(port, 50, 1.0, seed=0)  # warm-up: connections, caches, plans
        Session.unchecked = Session.unanswered = 0
        cpu_before = sum(server.cpu_times()[:2])
        sat, commands = await saturated(port, 200, seconds)
        busy = (sum(server.cpu_times()[:2]) - cpu_before) / seconds
        unchecked_saturated = Session.unchecked
        Session.unchecked = 0
        sessions = await offered(port, rate, seconds)
        latencies = sorted(latency for latency, _ in sessions)
        repeats = sorted(latency for latency, repeat in sessions if repeat) or [0.0]
        return {"saturated": sat, "commands": commands, "server_cpu": busy,
                "unchecked_saturated": unchecked_saturated,
                "unchecked_offered": Session.unchecked,
                "unanswered": Session.unanswered,
                "p50_ms": statistics.median(latencies) * 1000,
                "p99_ms": percentile(latencies, 0.99) * 1000,
                "repeat_p50_ms": statistics.median(repeats) * 1000,
                "repeat_p99_ms": percentile(repeats, 0.99) * 1000}
    return asyncio.run(run())


def route_variables() -> int:
    """How many variables the route sets for an ordinary call (the bare app sets as many)."""
    from datetime import UTC, datetime

    from service.clients.schema import parse_clients
    from service.routing.policy import decide

    directory = parse_clients(clients_yaml(), "bench.yaml")
    return len(decide(directory, did(1), caller(1), datetime.now(UTC)).variables())


def main() -> None:
    global REPEAT_SHARE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--repeat-share", type=float, default=REPEAT_SHARE,
                        help="share of sessions from callers with a call in the window")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per server, interleaved; each figure is their median")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--generator-cpu", type=int, default=1)
    args = parser.parse_args()
    configure_logging("error", "console")
    pin = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1
    if pin:
        os.sched_setaffinity(0, {args.generator_cpu})
    config = dataclasses.replace(Config())
    url = asyncio.run(_prepare(config, args.calls))
    REPEAT_SHARE = args.repeat_share
    RECENT_PAIRS[:] = asyncio.run(load_recent_pairs(url))
    server_cpu = args.server_cpu if pin else None
    names = ("orikaeshi", "orikaeshi-asyncio", "panoramisk", "panoramisk-uvloop")
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    # Rounds interleave the servers, so that a neighbour's burst on a shared machine spoils
    # one round of each rather than every figure of one server; each figure is their median.
    for _ in range(args.rounds):
        for name in names:
            ports: multiprocessing.Queue = multiprocessing.Queue()
            targs: tuple[object, ...]
            target: Callable[..., None]
            if name.startswith("orikaeshi"):
                target, targs = serve_orikaeshi, (url, ports, server_cpu,
                                                  "asyncio" if name.endswith("asyncio")
                                                  else config.event_loop)
            else:
                target, targs = serve_panoramisk, (route_variables(), ports, server_cpu,
                                                   name == "panoramisk-uvloop")
            proc = multiprocessing.Process(target=target, args=targs, daemon=True)
            proc.start()
            try:
                port = ports.get(timeout=60)
                assert proc.pid is not None
                rounds[name].append(measure(port, proc.pid, args.seconds, args.rate))
            finally:
                proc.terminate()
                proc.join()
    results = {name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
               for name, runs in rounds.items()}
    print(f"history: {args.calls:,} calls; {CLIENTS} clients; server pinned to one core; "
          f"median of {args.rounds} round(s) of {args.seconds:g} s per figure")
    print(f"{'':28} {'saturated (200 in flight)':>26} {'p50 @' + str(int(args.rate)) + '/s':>12} "
          f"{'p99 @' + str(int(args.rate)) + '/s':>12}")
    for name, label in (("orikaeshi", f"orikaeshi route ({config.event_loop})"),
                        ("orikaeshi-asyncio", "  the same, on asyncio's loop"),
                        ("panoramisk", "panoramisk bare Application"),
                        ("panoramisk-uvloop", "  the same, on uvloop")):
        r = results[name]
        print(f"{label:28} {r['saturated']:>14,.0f} /s (cpu {r['server_cpu']:.0%}) "
              f"{r['p50_ms']:>9.2f} ms {r['p99_ms']:>9.2f} ms")
        each = ", ".join(f"{run['saturated']:,.0f}/s {run['p99_ms']:.1f} ms"
                         for run in rounds[name])
        lost = sum(int(run["unanswered"]) for run in rounds[name])
        print(f"{'':30}rounds: {each}; sessions with no answer: {lost}")
    r = results["orikaeshi"]
    print(f"orikaeshi sessions routed without their repeat check (lookup past its 150 ms "
          f"budget): {int(r['unchecked_saturated'])} while saturated, "
          f"{int(r['unchecked_offered'])} at {int(args.rate)}/s")
    print(f"{REPEAT_SHARE:.0%} of sessions come from a caller with a call in the window "
          f"(picked from {len(RECENT_PAIRS):,} such pairs): their repeat lookup runs in "
          "PostgreSQL; the others are answered from memory (service/callbacks/recent.py)")
    print(f"  those sessions alone at {int(args.rate)}/s: p50 {r['repeat_p50_ms']:.2f} ms, "
          f"p99 {r['repeat_p99_ms']:.2f} ms")
    print(f"(each session sets {route_variables()} variables: orikaeshi in "
          f"{results['orikaeshi']['commands']:.2f} round trip(s) a session (EXEC MSet) after a "
          f"repeat lookup in PostgreSQL, panoramisk in {results['panoramisk']['commands']:.2f} "
          "SET VARIABLE round trips)")


async def _prepare(config: Config, calls: int) -> str:
    server = await database_url(config)
    return await ensure_history(server, calls)


if __name__ == "__main__":
    main()
