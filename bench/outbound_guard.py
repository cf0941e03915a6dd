"""Outbound-guard benchmark: what the handset waits for before Dial.

Builds (once) a database ``orikaeshi_bench_outbound`` on the configured server (the
embedded one by default) with the sample clients (KSL with a daily limit, a gap and a
do-not-call list) and a history of outbound decisions (default 1,000,000 over 30 days and
50,000 callees), then measures, one after another as handsets dial:

1. ``check_outbound`` alone (policy + history query + the evidence row, one transaction);
2. a whole FastAGI session of the ``outbound_guard`` route over a real socket (headers,
   decision, ``EXEC MSet`` answered as Asterisk would).

    .venv/bin/python bench/outbound_guard.py [--dials 5000] [--history 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
from repeat_lookup import summary  # the same figures as the repeat-lookup bench

from agi.context import AgiContext
from agi.outbound_guard import HandsetDial, outbound_guard
from agi.server import AgiServer
from service.clients.store import current_directory, load_document
from service.compliance.guard import check_outbound
from service.compliance.policy import OutboundDecision
from service.config import Config
from service.logs import configure_logging
from service.routing.cache import RoutingCache
from service.store.db import create_pool, database_url, migrate_url
from service.store.scratch import with_database
from tests.agi_peer import agi_session
from tests.live_asterisk import free_port

REPO = Path(__file__).resolve().parents[1]
NAME = "orikaeshi_bench_outbound"
RULES = """    outbound:
      max_attempts_per_day: 3
      min_gap: 10m
      do_not_call: [{number: 03-1234-0000, reason: workplace}, {prefix: "0120", reason: x}]
"""


async def ensure(server: str, history: int) -> str:
    admin = await asyncpg.connect(server)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", NAME):
            await admin.execute(f'CREATE DATABASE "{NAME}"')
    finally:
        await admin.close()
    url = with_database(server, NAME)
    await migrate_url(url)
    conn = await asyncpg.connect(url)
    try:
        have = await conn.fetchval("SELECT count(*) FROM outbound_decisions")
        if have < history:
            text = (REPO / "deploy" / "clients.sample.yaml").read_text()
            text = text.replace("    plan_calls: 300\n", "    plan_calls: 300\n" + RULES, 1)
            await load_document(conn, text, "bench.yaml")
            print(f"writing {history - have:,} decisions of history ...", file=sys.stderr)
            await conn.execute(
                """INSERT INTO outbound_decisions (decided_at, client, callee_e164, dialled,
                       path, requested_by, operator, allowed, rule, reason)
                   SELECT now() - (random() * interval '30 days'), 'KSL',
                          '+8190' || lpad((g % 50000)::text, 8, '0'), '090', 'handset',
                          '201', '201', true, 'allowed', 'bench'
                   FROM generate_series(1, $1) g""", history - have)
            await conn.execute("ANALYZE outbound_decisions")
    finally:
        await conn.close()
    return url


async def main(dials: int, history: int) -> None:
    configure_logging("warning", "console")
    url = await ensure(await database_url(Config()), history)
    pool = await create_pool(url, max_size=4)
    async with pool.acquire() as conn:
        directory = await current_directory(conn)
    assert directory is not None
    ksl = directory.clients["KSL"]
    rnd = random.Random(13)
    # 11:00 in Tokyo today: inside the window, so the history decides.
    now = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)

    def number() -> str:
        return f"090{rnd.randrange(50000):08d}"

    direct: list[float] = []
    for _ in range(200 + dials):
        started = time.perf_counter()
        async with pool.acquire() as conn:
            await check_outbound(conn, ksl, number(), path="handset", now=now,
                                 requested_by="201", operator="201")
        direct.append(time.perf_counter() - started)

    async def check(dial: HandsetDial, at: datetime) -> OutboundDecision:
        async with pool.acquire(timeout=1) as conn:
            return (await check_outbound(conn, dial.client, dial.number, path="handset",
                                         now=at, requested_by=dial.operator,
                                         operator=dial.operator)).decision

    cache = RoutingCache()
    cache.directory = directory
    server = AgiServer(state=AgiContext(cache, clock=lambda: now, check_outbound=check))
    server.add_route("outbound_guard", outbound_guard)
    port = free_port()
    await server.start("127.0.0.1", port)
    sessions: list[float] = []
    try:
        for _ in range(200 + dials):
            headers = [("agi_network", "yes"), ("agi_network_script", "outbound_guard"),
                       ("agi_channel", "PJSIP/201-00000001"), ("agi_uniqueid", "1.1"),
                       ("agi_accountcode", "KSL"), ("agi_arg_1", number()),
                       ("agi_arg_2", "KSL")]
            started = time.perf_counter()
            await agi_session(port, headers)
            sessions.append(time.perf_counter() - started)
    finally:
        await server.close()
        await pool.close()
    print(f"history: {history:,} decisions; now {now:%Y-%m-%d %H:%M} UTC")
    print(summary("check_outbound (decision + evidence)", direct[200:]))
    print(summary("outbound_guard FastAGI session", sessions[200:]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dials", type=int, default=5000)
    parser.add_argument("--history", type=int, default=1_000_000)
    args = parser.parse_args()
    asyncio.run(main(args.dials, args.history))
