"""Ingestion benchmark: about a million AMI events through the adapter and the ledger into
PostgreSQL, and panoramisk's bare parse-and-discard rate on the same stream.

The stream is the burst_concurrent recording of ../shared/asterisk-traces re-keyed many times
(new Uniqueids/Linkedids and times per copy), with ``Timestamp`` headers as Asterisk sends
them with ``timestampevents = yes``.  A feeder process plays the PBX on a loopback socket
(pinned to the other core); this process, pinned to one core, runs the real AmiClient,
LedgerIngest, LedgerMachine and LedgerWriter into a scratch database.  The clock stops when
the last record is committed (every record durable), so the figure includes PostgreSQL.

    .venv/bin/python bench/ingest.py                # ~1,000,000 events
    .venv/bin/python bench/ingest.py --events 200000

Prints events/s, peak RSS, records written, and panoramisk's rate over the same socket.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import os
import re
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.config import Config, PbxConfig, load_config
from service.eventloop import loop_factory
from service.ledger.pipeline import build_pipeline
from service.logs import configure_logging
from service.replay.recording import base_epoch, load_recording
from service.store.db import create_pool, database_url
from service.store.scratch import scratch_database

TRACE = Path(__file__).resolve().parents[2] / "shared" / "asterisk-traces" / \
    "burst_concurrent" / "ami.jsonl"
UNIQUEID = re.compile(r"^(\d{10})\.(\d+)$")


def build_stream(path: Path, target_events: int) -> tuple[int, int]:
    """Write the re-keyed stream to ``path``; return (events, bytes)."""
    connections = load_recording(TRACE)
    base = base_epoch(connections) or 1_795_347_300.0
    messages = [m for c in connections for m in c.messages if m.is_event]
    span = (messages[-1].t or 0.0) + 5.0
    copies = max(1, round(target_events / len(messages)))
    events = 0
    with path.open("wb") as out:
        for copy in range(copies):
            shift_s = int(copy * span)
            chunk = []
            for message in messages:
                lines = []
                for key, value in message.headers:
                    if value is None:
                        lines.append(key)
                        continue
                    match = UNIQUEID.match(value)
                    if match:
                        value = f"{int(match.group(1)) + shift_s}.{match.group(2)}"
                    lines.append(f"{key}: {value}")
                    if key == "Privilege":
                        lines.append(f"Timestamp: {base + shift_s + (message.t or 0):.6f}")
                chunk.append("\r\n".join(lines) + "\r\n\r\n")
                events += 1
            out.write("".join(chunk).encode("utf-8"))
    return events, path.stat().st_size


def feeder(path: str, port_queue: multiprocessing.Queue, cpu: int | None) -> None:
    """The PBX side: banner, Login, empty snapshots, then the whole stream as fast as TCP
    takes it.  Runs in its own process, on its own core."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    listener = socket.create_server(("127.0.0.1", 0))
    port_queue.put(listener.getsockname()[1])
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"Asterisk Call Manager/13.0.0\r\n")
            buffer = b""
            answered = 0
            while answered < 3:  # Login + the ledger's two snapshot actions (if any)
                conn.settimeout(1.0)
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    break
                if not data:
                    break
                buffer += data
                while b"\r\n\r\n" in buffer:
                    raw, buffer = buffer.split(b"\r\n\r\n", 1)
                    action = dict(line.split(": ", 1) for line in raw.decode().split("\r\n")
                                  if ": " in line)
                    aid = action.get("ActionID", "")
                    if action.get("Action", "").lower() == "login":
                        conn.sendall(f"Response: Success\r\nActionID: {aid}\r\n"
                                     "Message: Authentication accepted\r\n\r\n".encode())
                    elif action.get("Action", "").lower() == "ping":
                        conn.sendall(f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\n"
                                     "\r\n".encode())
                        continue
                    else:
                        name = action.get("Action", "")
                        conn.sendall(f"Response: Success\r\nActionID: {aid}\r\n"
                                     "EventList: start\r\n\r\n"
                                     f"Event: {name}Complete\r\nActionID: {aid}\r\n"
                                     "EventList: Complete\r\nListItems: 0\r\n\r\n".encode())
                    answered += 1
            conn.settimeout(None)
            with open(path, "rb") as stream:
                conn.sendfile(stream)
            # Answer Pings (the end-of-stream marker) until the client goes.
            buffer = b""
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                buffer += data
                while b"\r\n\r\n" in buffer:
                    raw, buffer = buffer.split(b"\r\n\r\n", 1)
                    aid = next((line.split(": ", 1)[1] for line in raw.decode().split("\r\n")
                                if line.startswith("ActionID: ")), "")
                    conn.sendall(f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\n\r\n"
                                 .encode())


async def run_orikaeshi(port: int, events: int, config: Config) -> dict[str, float]:
    url = await database_url(config)
    async with scratch_database(url, "orikaeshi_bench") as scratch:
        pool = await create_pool(scratch, max_size=4)
        try:
            pbx = PbxConfig(pbx_id="bench", ami_port=port, ami_username="b", ami_secret="b")
            all_read = asyncio.Event()

            def count(_pbx: str, _batch: list[object]) -> None:
                if pipeline.client.stats.events >= events:
                    all_read.set()

            pipeline = build_pipeline(config, pbx, pool, taps=[count])
            task = asyncio.create_task(pipeline.run())
            await pipeline.client.logged_in.wait()
            start = time.perf_counter()
            cpu_start = time.process_time()
            await all_read.wait()
            await pipeline.client.send_action({"Action": "Ping"}, timeout=120)
            await pipeline.client.drained()
            await pipeline.writer.flush()
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            async with pool.acquire() as conn:
                calls = await conn.fetchval("SELECT count(*) FROM calls")
                outcomes = dict(await conn.fetch(
                    "SELECT outcome, count(*) FROM calls WHERE direction = 'inbound' "
                    "GROUP BY outcome"))
        finally:
            await pool.close()
    return {"elapsed_s": elapsed, "cpu_s": cpu, "events": pipeline.client.stats.events,
            "calls": calls, "records": pipeline.writer.records_written,
            "bad": pipeline.client.stats.bad_messages, "outcomes": outcomes}


async def run_panoramisk(port: int, events: int) -> dict[str, float]:
    """panoramisk 1.4's own protocol over the same socket: parse, then discard."""
    from panoramisk import Manager

    seen = 0
    done = asyncio.Event()

    class Discard(Manager):
        def dispatch(self, event):
            nonlocal seen
            seen += 1
            if seen >= events:
                done.set()
            return []

    manager = Discard(host="127.0.0.1", port=port, username="b", secret="b",
                      ping_delay=3600, loop=asyncio.get_running_loop())
    start = time.perf_counter()
    cpu_start = time.process_time()
    manager.connect()
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    manager.close()
    return {"elapsed_s": elapsed, "cpu_s": cpu, "events": seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--cpu", type=int, default=0, help="core for this process")
    parser.add_argument("--feeder-cpu", type=int, default=1)
    args = parser.parse_args()
    configure_logging("warning", "console")
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {args.cpu})
        feeder_cpu: int | None = args.feeder_cpu
    else:
        feeder_cpu = None
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "stream.ami"
        t0 = time.perf_counter()
        events, size = build_stream(stream, args.events)
        print(f"stream: {events:,} events, {size / 1e6:.0f} MB "
              f"(built in {time.perf_counter() - t0:.1f} s)")
        # The default database server (embedded unless DATABASE_URL), a scratch database in
        # it; the spool in the temporary directory.
        config = dataclasses.replace(Config(), data_dir=Path(tmp) / "data",
                                     database_url=asyncio.run(database_url(load_config())),
                                     ami_ping_interval_s=3600)
        results = {}
        for name in ("panoramisk", "orikaeshi"):
            ports: multiprocessing.Queue = multiprocessing.Queue()
            proc = multiprocessing.Process(target=feeder, args=(str(stream), ports, feeder_cpu),
                                           daemon=True)
            proc.start()
            port = ports.get(timeout=10)
            try:
                if name == "panoramisk":
                    results[name] = asyncio.run(run_panoramisk(port, events))
                else:
                    # On the service's event loop (uvloop unless configured otherwise).
                    with asyncio.Runner(loop_factory=loop_factory(config.event_loop)) as loop:
                        results[name] = loop.run(run_orikaeshi(port, events, config))
            finally:
                proc.terminate()
                proc.join()
    ours, bare = results["orikaeshi"], results["panoramisk"]
    our_rate = ours["events"] / ours["elapsed_s"]
    bare_rate = bare["events"] / bare["elapsed_s"]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"panoramisk 1.4 bare parse+discard: {bare_rate:,.0f} events/s "
          f"({bare['events']:,} events in {bare['elapsed_s']:.1f} s)")
    print(f"orikaeshi adapter+ledger+PostgreSQL: {our_rate:,.0f} events/s "
          f"({ours['events']:,} events in {ours['elapsed_s']:.1f} s wall, "
          f"{ours['cpu_s']:.1f} s CPU of this process)")
    print(f"  calls recorded: {ours['calls']:,}; records committed: {ours['records']:,}; "
          f"bad messages: {ours['bad']}")
    print(f"  outcomes: {json.dumps(ours['outcomes'], sort_keys=True)}")
    print(f"  ratio to bare panoramisk: {our_rate / bare_rate:.2f}")
    print(f"peak RSS of this process: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
