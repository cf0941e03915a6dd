"""What continuous reconciliation costs /healthz on a large ledger with many unknown calls.

Builds (once, kept between runs) a ledger of ``--calls`` inbound calls over 30 days of which
``--unknown`` are ``unknown`` (ended in an AMI outage), and ``--differences`` differences
left in ``reconcile_differences``.  Then times, on the embedded PostgreSQL:

* the count ``reconcile_state`` used to make on every request, without the partial index
  ``calls_unknown`` (the index dropped inside a transaction that is rolled back);
* the same count with the index: what each pass now does once, storing the figure;
* ``read_health``: what the worker reads after each pass for /healthz;
* ``GET /healthz`` over HTTP on the real application, its reconcile part read from the
  worker's last reading (no query for it per request).

    .venv/bin/python bench/reconcile_health.py                   # 1M calls, 100k unknown
    .venv/bin/python bench/reconcile_health.py --calls 200000 --unknown 20000 --rounds 50
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import benchdb
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app, database_ctx
from service.config import Config, PbxConfig
from service.logs import configure_logging
from service.reconcile_live.health import read_health
from service.reconcile_live.worker import ReconcileWorker
from service.status import RECONCILE_WORKER
from service.store.db import create_pool, database_url

BENCH_DB = "orikaeshi_bench_reconcile"
LAYOUT = "orikaeshi bench reconcile v2"
NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
OLD_COUNT = "SELECT count(*) FROM calls WHERE direction = 'inbound' AND outcome = 'unknown'"
PASS_COUNT = ("SELECT count(*) FROM calls WHERE pbx_id = $1 AND outcome = 'unknown' "
              "AND started_at < $2")


async def ensure(server_url: str, calls: int, unknown: int, differences: int) -> str:
    layout = f"{LAYOUT} calls={calls} unknown={unknown} differences={differences}"
    url, kept = await benchdb.kept_with_layout(server_url, BENCH_DB, layout)
    if kept:
        return url
    conn = await asyncpg.connect(url)
    try:
        print(f"building: {calls:,} calls, {unknown:,} unknown (once) ...", flush=True)
        indexes = await benchdb.drop_secondary_indexes(conn, "calls")
        every = max(1, calls // max(1, unknown))
        span = 30 * 86400.0
        begin = NOW.timestamp() - span
        await conn.execute(f"""
            INSERT INTO calls (pbx_id, linkedid, direction, client, did, caller_number,
                caller_e164, uniqueids, started_at, ended_at, outcome)
            SELECT 'bench', 'r' || g, 'inbound', 'C' || (g % 100), '0360000000',
                   '090' || lpad((g % 1000000)::text, 8, '0'),
                   '+8190' || lpad((g % 1000000)::text, 8, '0'), ARRAY['r' || g],
                   to_timestamp(t), to_timestamp(t + 90),
                   CASE WHEN g % {every} = 0 AND g / {every} <= {unknown} THEN 'unknown'
                        ELSE (ARRAY['answered','answered','abandoned','timeout'])[1 + g % 4]
                   END
              FROM generate_series(1, {calls}) AS g,
                   LATERAL (SELECT {begin} + (g - 1) * {span / calls} AS t) AS moment""")
        for index in indexes:
            await conn.execute(index)
        await conn.execute(f"""
            INSERT INTO reconcile_differences (pbx_id, kind, linkedid, detail, started_at,
                                               first_seen, last_seen)
            SELECT 'bench', 'unsettled', 'r' || g, 'still unknown', $1, $1, $1
              FROM generate_series(1, {differences}) AS g""", NOW)
        await conn.execute(
            """INSERT INTO reconcile_runs (pbx_id, ran_at, calls_checked, settled, added,
                   differences, error, ok_at, unknown_calls)
               VALUES ('bench', $1, 0, 0, 0, $2, NULL, $1, $3)""", NOW, differences, unknown)
        await conn.execute("VACUUM ANALYZE")  # as autovacuum leaves a settled table
        await conn.execute(f"COMMENT ON TABLE calls IS '{layout}'")
        return url
    finally:
        await conn.close()


def line(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"{label:52} n={len(ordered):>5}  median {statistics.median(ordered) * 1000:8.3f} ms"
            f"  p99 {p99 * 1000:8.3f} ms")


async def timed(samples: list[float], coro_factory) -> object:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = await coro_factory()
    samples.append(time.perf_counter() - start)
    return result


async def main(calls: int, unknown: int, differences: int, rounds: int, requests: int) -> None:
    configure_logging("warning")
    config = Config()
    url = await ensure(await database_url(config), calls, unknown, differences)
    conn = await asyncpg.connect(url)
    old: list[float] = []
    new: list[float] = []
    reading: list[float] = []
    try:
        print(f"ledger: {await conn.fetchval('SELECT count(*) FROM calls'):,} calls, "
              f"{await conn.fetchval(PASS_COUNT, 'bench', NOW):,} unknown, "
              f"{await conn.fetchval('SELECT count(*) FROM reconcile_differences'):,} "
              "differences")
        for _ in range(rounds):
            before = conn.transaction()  # as before migration 0014: no partial index
            await before.start()
            await conn.execute("DROP INDEX calls_unknown")
            await timed(old, lambda: conn.fetchval(OLD_COUNT))
            await before.rollback()  # the index is back
            await timed(new, lambda: conn.fetchval(PASS_COUNT, "bench", NOW))
            await timed(reading, lambda: read_health(conn, ["bench"], NOW))
    finally:
        await conn.close()
    print(line("count per request, before (no index)", old))
    print(line("count once a pass, calls_unknown index", new))
    print(line("read_health (once a pass)", reading))

    pbx = PbxConfig(pbx_id="bench", reconcile_source="database")
    app_config = dataclasses.replace(config, database_url=url, pbxs=(pbx,))
    app = create_app(app_config, [database_ctx], clock=lambda: NOW)
    pool = await create_pool(url)
    worker = ReconcileWorker(pool, app_config, clock=lambda: NOW)
    await worker.refresh()
    worker.running = True
    app[RECONCILE_WORKER] = worker
    latencies: list[float] = []
    try:
        async with TestClient(TestServer(app)) as client:
            for _ in range(requests):
                start = time.perf_counter()
                response = await client.get("/healthz")
                body = await response.json()
                latencies.append(time.perf_counter() - start)
            [state] = body["reconcile"]
            print(f"/healthz says: unknown_calls={state['unknown_calls']:,} "
                  f"differences={state['differences']:,}, status {response.status}")
    finally:
        await pool.close()
    print(line("GET /healthz (HTTP, the whole answer)", latencies))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--unknown", type=int, default=100_000)
    parser.add_argument("--differences", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.unknown, args.differences, args.rounds, args.requests))
