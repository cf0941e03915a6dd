"""One instance ingesting several PBXs at once (issue 12): events/s and per-PBX lag.

The stream of bench/ingest.py (the burst_concurrent recording re-keyed, ``Timestamp``
headers) is served by ``--pbxs`` feeder processes at once (each plays one PBX, all on the
other core, as fast as TCP takes it); this process, pinned to one core, runs one real ledger
pipeline per PBX (AmiClient, edge check, machine, writer) on one pool into a scratch
database, as ``orikaeshi serve`` does with several ``[[pbx]]`` tables.

Prints the aggregate rate until every PBX's last record is committed, and per PBX: its
events, when it finished, and its lag (the most events read but not yet applied, sampled
every 50 ms, and that backlog in milliseconds at the PBX's own rate).

    .venv/bin/python bench/ingest_many.py                      # 10 PBXs x 100,000 events
    .venv/bin/python bench/ingest_many.py --pbxs 10 --events 30000
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import build_stream, feeder  # the single-PBX ingestion bench's stream and feeder

from service.config import Config, PbxConfig, load_config
from service.eventloop import loop_factory
from service.ledger.pipeline import LedgerPipeline, build_pipeline
from service.logs import configure_logging
from service.store.db import create_pool, database_url
from service.store.scratch import scratch_database


async def run(ports: list[int], events: int, config: Config) -> dict[str, object]:
    url = await database_url(config)
    async with scratch_database(url, "orikaeshi_bench_many") as scratch:
        pool = await create_pool(scratch, max_size=max(4, len(ports)))
        try:
            pipelines: list[LedgerPipeline] = []
            done = {f"pbx{i}": asyncio.Event() for i in range(len(ports))}
            for i, port in enumerate(ports):
                pbx_id = f"pbx{i}"
                pbx = PbxConfig(pbx_id=pbx_id, ami_port=port, ami_username="b",
                                ami_secret="b")

                def count(pid: str, _batch: list[object], n: int = i) -> None:
                    if pipelines[n].client.stats.events >= events:
                        done[pid].set()

                pipelines.append(build_pipeline(config, pbx, pool, taps=[count]))
            tasks = [asyncio.create_task(p.run()) for p in pipelines]
            for p in pipelines:
                await p.client.logged_in.wait()
            start = time.perf_counter()
            finished: dict[str, float] = {}
            backlog = {p.pbx.pbx_id: 0 for p in pipelines}

            async def sample() -> None:
                while True:
                    for p in pipelines:
                        queued = p.client._queued_events
                        backlog[p.pbx.pbx_id] = max(backlog[p.pbx.pbx_id], queued)
                    await asyncio.sleep(0.05)

            async def settle(p: LedgerPipeline) -> None:
                await done[p.pbx.pbx_id].wait()
                await p.client.send_action({"Action": "Ping"}, timeout=300)
                await p.client.drained()
                await p.writer.flush()
                finished[p.pbx.pbx_id] = time.perf_counter() - start

            sampler = asyncio.create_task(sample())
            await asyncio.gather(*(settle(p) for p in pipelines))
            elapsed = time.perf_counter() - start
            sampler.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(sampler, *tasks, return_exceptions=True)
            async with pool.acquire() as conn:
                calls = dict(await conn.fetch(
                    "SELECT pbx_id, count(*) FROM calls GROUP BY pbx_id"))
        finally:
            await pool.close()
    total = sum(p.client.stats.events for p in pipelines)
    return {"elapsed": elapsed, "total": total, "finished": finished, "backlog": backlog,
            "calls": calls, "events": {p.pbx.pbx_id: p.client.stats.events for p in pipelines},
            "refused": sum(p.fanout.rejected for p in pipelines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pbxs", type=int, default=10)
    parser.add_argument("--events", type=int, default=100_000, help="per PBX")
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--feeder-cpu", type=int, default=1)
    args = parser.parse_args()
    configure_logging("warning", "console")
    pin = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1
    if pin:
        os.sched_setaffinity(0, {args.cpu})
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "stream.ami"
        events, size = build_stream(stream, args.events)
        print(f"{args.pbxs} PBXs, each streaming {events:,} events ({size / 1e6:.0f} MB) at once")
        config = dataclasses.replace(Config(), data_dir=Path(tmp) / "data",
                                     database_url=asyncio.run(database_url(load_config())),
                                     ami_ping_interval_s=3600)
        procs, ports = [], []
        for _ in range(args.pbxs):
            queue: multiprocessing.Queue = multiprocessing.Queue()
            proc = multiprocessing.Process(target=feeder, args=(
                str(stream), queue, args.feeder_cpu if pin else None), daemon=True)
            proc.start()
            procs.append(proc)
            ports.append(queue.get(timeout=10))
        try:
            with asyncio.Runner(loop_factory=loop_factory(config.event_loop)) as runner:
                result = runner.run(run(ports, events, config))
        finally:
            for proc in procs:
                proc.terminate()
                proc.join()
    rate = result["total"] / result["elapsed"]  # type: ignore[operator]
    print(f"all PBXs: {result['total']:,} events in {result['elapsed']:.1f} s = "
          f"{rate:,.0f} events/s, every record committed; refused at the edge: "
          f"{result['refused']}")
    finished: dict[str, float] = result["finished"]  # type: ignore[assignment]
    backlog: dict[str, int] = result["backlog"]  # type: ignore[assignment]
    calls: dict[str, int] = result["calls"]  # type: ignore[assignment]
    counts: dict[str, int] = result["events"]  # type: ignore[assignment]
    for pbx_id in sorted(finished, key=lambda k: int(k[3:])):
        own_rate = counts[pbx_id] / finished[pbx_id]
        print(f"  {pbx_id}: {own_rate:,.0f} events/s, done at {finished[pbx_id]:5.1f} s, "
              f"{calls.get(pbx_id, 0):,} calls; lag max {backlog[pbx_id]:,} events read but "
              f"not applied (~{backlog[pbx_id] / own_rate * 1000:.0f} ms at its own rate)")


if __name__ == "__main__":
    main()
