"""Repeat-lookup benchmark: the query the route makes, against 10 million calls of history.

Uses the history database of bench/agi_route.py (built there, or here if missing). Prints the
latency of :class:`service.callbacks.repeat_sql.SqlRepeatLookup` for callers who did call
recently (every lookup runs the SQL: the worst case), and of the route's filtered lookup for a
realistic mix (most callers have no recent call and never reach PostgreSQL).  Run the lookups
one after another from one process, as a route session would.

    .venv/bin/python bench/repeat_lookup.py            # 20,000 lookups of each kind
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import agi_route

from service.callbacks.recent import FilteredRepeatLookup, RecentCallers
from service.callbacks.repeat_sql import SqlRepeatLookup, create_lookup_pool
from service.config import Config
from service.logs import configure_logging
from service.store.db import database_url


def summary(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000  # noqa: E731
    return (f"{label:44} n={len(ordered):>6,}  p50 {p(0.50):6.3f} ms  p99 {p(0.99):6.3f} ms  "
            f"max {ordered[-1] * 1000:7.2f} ms  mean {statistics.mean(ordered) * 1000:6.3f} ms")


async def main(lookups: int, calls: int) -> None:
    url = await agi_route.ensure_history(await database_url(Config()), calls)
    pool = await create_lookup_pool(url)  # as service/app.py
    sql = SqlRepeatLookup(pool)
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        recent_pairs = await conn.fetch(
            "SELECT client, caller_e164 FROM calls WHERE direction = 'inbound' "
            "AND started_at > now() - interval '72 hours' LIMIT 50000")
        total = await conn.fetchval("SELECT count(*) FROM calls")
    rnd = random.Random(3)
    for _ in range(200):  # warm-up: plans, caches
        pair = rnd.choice(recent_pairs)
        await sql(pair["client"], pair["caller_e164"], now, 72 * 3600, "x")

    worst: list[float] = []
    counted = 0
    for _ in range(lookups):
        pair = rnd.choice(recent_pairs)
        started = time.perf_counter()
        history = await sql(pair["client"], pair["caller_e164"], now, 72 * 3600, "x")
        worst.append(time.perf_counter() - started)
        counted += history.calls

    recent = RecentCallers(lambda: 72 * 3600.0)
    watcher = asyncio.create_task(recent.run(pool))
    while not recent.ready:  # noqa: ASYNC110 - the initial load, once
        await asyncio.sleep(0.05)
    filtered = FilteredRepeatLookup(sql, recent)
    mixed: list[float] = []
    for i in range(lookups):
        if i % 10 == 0:  # one caller in ten called recently
            pair = rnd.choice(recent_pairs)
            client, caller = pair["client"], pair["caller_e164"]
        else:
            client = f"C{rnd.randrange(agi_route.CLIENTS):04d}"
            caller = f"+8190{rnd.randrange(agi_route.NUMBERS):08d}"
        started = time.perf_counter()
        await filtered(client, caller, now, 72 * 3600, "x")
        mixed.append(time.perf_counter() - started)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    await pool.close()
    print(f"history: {total:,} calls; recent (client, caller) pairs loaded: {len(recent):,}")
    print(summary("SQL lookup, callers who called recently", worst))
    print(summary("route's lookup, 1 in 10 callers recent", mixed))
    print(f"  (PostgreSQL asked {filtered.queried:,} times, spared {filtered.skipped:,}; "
          f"{counted:,} earlier calls counted in the worst case)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=10_000_000)
    args = parser.parse_args()
    configure_logging("error", "console")
    asyncio.run(main(args.lookups, args.calls))
