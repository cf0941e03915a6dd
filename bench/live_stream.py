"""Live-stream benchmark: 500 pages on ``/api/stream`` while the burst recording replays.

The service (web + ledger, the real app) runs in its own process pinned to one core; this
process (pinned to the other) plays the PBX (the burst_concurrent recording at its real
pace, with its clock moved to now, so each AMI event's Timestamp is the moment it is sent)
and holds 500 Server-Sent-Events connections.  Latency is measured per delivered message,
from the AMI event behind it (``event_at``) to its arrival at a client: ledger batching,
the commit, NOTIFY, LISTEN and the fan-out to 500 clients included.

    .venv/bin/python bench/live_stream.py              # 500 clients
    .venv/bin/python bench/live_stream.py --clients 100
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import psutil

from service.config import Config, PbxConfig
from service.logs import configure_logging
from service.replay.recording import load_recording
from service.replay.server import ReplayServer
from service.store.db import database_url
from service.store.scratch import scratch_database

TRACE = Path(__file__).resolve().parents[2] / "shared" / "asterisk-traces" / \
    "burst_concurrent" / "ami.jsonl"


def serve(config: Config, port_queue: multiprocessing.Queue, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    configure_logging("error", "console")
    from service.eventloop import loop_factory

    async def main() -> None:
        from aiohttp import web

        from service.app import create_app, database_ctx, ledger_ctx, web_ctx
        from service.eventloop import freeze_startup_objects

        runner = web.AppRunner(create_app(config, [database_ctx, web_ctx, ledger_ctx]))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        freeze_startup_objects()  # as `orikaeshi serve` does
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    # The service's own event loop (uvloop unless configured otherwise), as `orikaeshi serve`.
    with asyncio.Runner(loop_factory=loop_factory(config.event_loop)) as runner:
        runner.run(main())


class SseClient(asyncio.Protocol):
    """A page's stream, as lean as possible: latencies of the ``call`` messages it gets."""

    def __init__(self, token: str, latencies: list[float], ready: asyncio.Event) -> None:
        self.token = token
        self.latencies = latencies
        self.ready = ready
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(  # type: ignore[attr-defined]
            b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
            b"Authorization: Bearer " + self.token.encode() + b"\r\n\r\n")

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"event: hello"):
                self.ready.set()
            elif line.startswith(b"data: {\"kind\":\"call\""):
                event_at = json.loads(line[6:]).get("event_at")
                if event_at:
                    self.latencies.append(now - event_at)


async def run(args: argparse.Namespace, config: Config, url: str) -> None:
    from service.store import web_sql
    from service.web.auth import hash_password

    conn = await asyncpg.connect(url)
    try:
        user = await web_sql.create_user(conn, "bench", hash_password("bench-password"),
                                         "supervisor", extension="301")
        token = await web_sql.new_api_token(conn, user.id, "bench")
    finally:
        await conn.close()
    replay = ReplayServer(load_recording(TRACE), speed=1.0, live_clock=True,
                          gate=asyncio.Event())
    pbx_port = await replay.start()
    # One process and one user stand in for 500 browsers: the per-user stream cap and the
    # per-address connection cap (which protect a real service) would refuse them.
    config = dataclasses.replace(config, database_url=url, ami_lock=False, pbxs=(
        PbxConfig(pbx_id="bench", ami_port=pbx_port, ami_username="b", ami_secret="b"),),
        stream_max_per_user=args.clients, stream_max_total=max(1000, args.clients),
        http_max_per_source=args.clients + 16)
    ports: multiprocessing.Queue = multiprocessing.Queue()
    pin = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1
    process = multiprocessing.Process(target=serve, args=(config, ports, 0 if pin else None),
                                      daemon=True)
    process.start()
    try:
        web_port = ports.get(timeout=60)
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        readies = []
        transports = []
        for _ in range(args.clients):
            ready = asyncio.Event()
            readies.append(ready)
            transport, _ = await loop.create_connection(
                lambda ready=ready: SseClient(token, latencies, ready), "127.0.0.1", web_port)
            transports.append(transport)
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
        service = psutil.Process(process.pid)
        cpu_before = sum(service.cpu_times()[:2])
        started = time.perf_counter()
        assert replay.gate is not None
        replay.gate.set()
        await asyncio.wait_for(replay.finished.wait(), 300)
        await asyncio.sleep(2.0)  # the last writes, notifications and deliveries
        elapsed = time.perf_counter() - started
        cpu = (sum(service.cpu_times()[:2]) - cpu_before) / elapsed
        for transport in transports:
            transport.close()
    finally:
        process.terminate()
        process.join()
        await replay.close()
    ordered = sorted(latencies)
    if not ordered:
        print("no messages arrived")
        return
    p = lambda q: ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000  # noqa: E731
    print(f"clients: {args.clients}; burst_concurrent replayed in {elapsed:.1f} s at its own "
          "pace (45 calls)")
    print(f"messages delivered: {len(ordered):,} ({len(ordered) / args.clients:.0f} per client)")
    print(f"AMI event -> client latency: p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms, "
          f"max {ordered[-1] * 1000:.1f} ms, mean {statistics.mean(ordered) * 1000:.1f} ms")
    print(f"service CPU during the replay: {cpu:.0%} of one core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    args = parser.parse_args()
    configure_logging("error", "console")
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})

    async def go() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            config = dataclasses.replace(Config(), data_dir=Path(tmp))
            server = await database_url(config)
            async with scratch_database(server, "orikaeshi_bench_stream") as url:
                await run(args, config, url)

    asyncio.run(go())


if __name__ == "__main__":
    main()
