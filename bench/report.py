"""Monthly report benchmark: the report of one client with 100,000 calls in the month, and of
all 1,000 clients of a 10-million-call ledger at once (the figures the 1st's delivery and the
admins' "every client" page need).  Targets: under 1 s and under 60 s.

The ledger is built once in its own database (``orikaeshi_bench_reports`` of the configured or
embedded server), in time order as a real ledger is written: ``--calls`` inbound calls spread
over ``--months`` months ending with the measured month (2026-11, Tokyo), 1,000 clients, of
which C0000 has ``--big`` calls in the measured month; obligations for one missed call in
three and a message for one call in twenty.  It is rebuilt when its size differs.

    .venv/bin/python bench/report.py                          # 10,000,000 calls
    .venv/bin/python bench/report.py --calls 2000000 --months 2   # a smaller ledger
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import benchdb

from service.clients.store import load_document
from service.config import Config
from service.logs import configure_logging
from service.reports.monthly import monthly_report, monthly_reports
from service.reports.rules import month_period
from service.store.db import database_url

BENCH_DB = "orikaeshi_bench_reports"
CLIENTS = 1000
MONTH = "2026-11"
LAYOUT = "orikaeshi bench reports v2"


def clients_yaml() -> str:
    lines = ["defaults:", "  national_holidays: none", "clients:"]
    for i in range(CLIENTS):
        lines += [f"  C{i:04d}:", f"    name: Client {i}", f"    dids: [03{6000_0000 + i:08d}]",
                  "    hours: {daily: 00:00-24:00}", f"    queue: q-{i:04d}",
                  f"    voicemail: {1000 + i}@vm", "    plan_calls: 500",
                  f"    plan_counts: {'offered' if i % 2 else 'answered'}",
                  "    overage_price: 120"]
    return "\n".join(lines) + "\n"


async def ensure_ledger(server_url: str, calls: int, months: int, big: int) -> str:
    layout = f"{LAYOUT} calls={calls} months={months} big={big}"

    async def is_current(conn: asyncpg.Connection) -> bool:
        return bool(await conn.fetchval("SELECT obj_description('calls'::regclass)") == layout)

    url, kept = await benchdb.kept_or_new(server_url, BENCH_DB, is_current)
    if kept:
        return url
    conn = await asyncpg.connect(url)
    try:
        await load_document(conn, clients_yaml(), "bench-clients.yaml")
        print(f"building the ledger: {calls:,} calls over {months} months (once) ...",
              flush=True)
        started = time.perf_counter()
        indexes = await benchdb.drop_secondary_indexes(conn, "calls")
        period = month_period(MONTH, "Asia/Tokyo")
        end = period.end.timestamp()
        span = months * 30 * 86400.0
        begin = end - span
        month_start = period.start.timestamp()
        in_month = int(calls * (end - month_start) / span)
        step = 1_000_000
        # Calls in time order; in the measured month every 1 call in
        # (in_month / big) goes to C0000, the others to C0001..C0999 in turn.
        every = max(1, in_month // big) if big else 0
        for first in range(0, calls, step):
            last = min(calls, first + step)
            await conn.execute(f"""
                INSERT INTO calls (pbx_id, linkedid, direction, client, did, caller_number,
                    caller_e164, uniqueids, started_at, ended_at, outcome, wait_s, talk_s,
                    answered_by, escalated, escalation_reason, voicemail_left,
                    callbacks_seen_at, forward_answered)
                SELECT 'bench', 'r' || g, 'inbound',
                       CASE WHEN t >= {month_start} AND {every} > 0
                                 AND g % {every or 1} = 0 THEN 'C0000'
                            ELSE 'C' || lpad((1 + g % {CLIENTS - 1})::text, 4, '0') END,
                       '0360000000', '090' || lpad((g % 1000000)::text, 8, '0'),
                       '+8190' || lpad((g % 1000000)::text, 8, '0'), ARRAY['r' || g],
                       to_timestamp(t), to_timestamp(t + 90),
                       (ARRAY['answered','answered','answered','abandoned','short_abandon',
                              'timeout','after_hours','no_agents','forwarded','ivr_hangup'])
                           [1 + g % 10],
                       (g % 45)::float8, (60 + g % 300)::float8, (200 + g % 20)::text,
                       g % 50 = 0, CASE WHEN g % 50 = 0 THEN
                           (ARRAY['repeat_caller','complaint','payment_dispute'])[1 + g % 3]
                       END, g % 10 = 5, now(), CASE WHEN g % 10 = 8 THEN g % 20 = 8 END
                  FROM generate_series({first + 1}, {last}) AS g,
                       LATERAL (SELECT {begin} + (g - 1) * {span / calls} AS t) AS moment""")
            print(f"  {last:,} calls", flush=True)
        await conn.execute("""
            INSERT INTO callback_obligations (client, caller_e164, caller_number, state,
                fulfilment, reason, opened_at, due_at, calls, fulfilled_at, closed_at)
            SELECT client, caller_e164, caller_number,
                   (ARRAY['fulfilled','fulfilled','expired','cancelled'])[1 + id % 4],
                   CASE WHEN id % 4 = 0 THEN 'verified' WHEN id % 4 = 1 THEN 'reported' END,
                   'missed', started_at, started_at + interval '1 day', 1,
                   CASE WHEN id % 4 < 2 THEN started_at + interval '3 hours' END,
                   CASE WHEN id % 4 >= 2 THEN started_at + interval '8 days' END
              FROM calls WHERE outcome IN ('abandoned', 'timeout') AND id % 3 = 0""")
        await conn.execute("""
            INSERT INTO messages (client, caller_number, caller_e164, disposition, body,
                                  created_at)
            SELECT client, caller_number, caller_e164,
                   (ARRAY['callback_requested','urgent','info_only'])[1 + id % 3],
                   'bench message', ended_at
              FROM calls WHERE id % 20 = 0""")
        print("  obligations and messages; indexes ...", flush=True)
        for index in indexes:
            await conn.execute(index)
        await conn.execute("ANALYZE")
        await conn.execute(f"COMMENT ON TABLE calls IS '{layout}'")
        print(f"ledger built in {time.perf_counter() - started:.0f} s", flush=True)
        return url
    finally:
        await conn.close()


async def main(calls: int, months: int, big: int, rounds: int) -> None:
    url = await ensure_ledger(await database_url(Config()), calls, months, big)
    conn = await asyncpg.connect(url)
    try:
        period = month_period(MONTH, "Asia/Tokyo")
        total = await conn.fetchval("SELECT count(*) FROM calls")
        in_month = await conn.fetchval("SELECT count(*) FROM calls WHERE started_at >= $1 "
                                       "AND started_at < $2", period.start, period.end)
        big_calls = await conn.fetchval("SELECT count(*) FROM calls WHERE client = 'C0000' "
                                        "AND started_at >= $1 AND started_at < $2",
                                        period.start, period.end)
        print(f"ledger: {total:,} calls, {in_month:,} in {MONTH}, C0000 has {big_calls:,} "
              f"in {MONTH}; {CLIENTS} clients")
        one: list[float] = []
        for _ in range(rounds):
            started = time.perf_counter()
            report = await monthly_report(conn, "C0000", MONTH)
            one.append(time.perf_counter() - started)
        assert report["calls"] == big_calls
        print(f"one client, {big_calls:,} calls: " + ", ".join(f"{t:.3f} s" for t in one)
              + f"  (median {statistics.median(one):.3f} s; target < 1 s)")
        every: list[float] = []
        for _ in range(max(1, rounds // 2)):
            started = time.perf_counter()
            reports = await monthly_reports(conn, MONTH)
            every.append(time.perf_counter() - started)
        assert len(reports) == CLIENTS and sum(r["calls"] for r in reports) == in_month
        print(f"every client ({CLIENTS}), {in_month:,} calls: "
              + ", ".join(f"{t:.2f} s" for t in every)
              + f"  (median {statistics.median(every):.2f} s; target < 60 s)")
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--months", type=int, default=10)
    parser.add_argument("--big", type=int, default=100_000,
                        help="calls of client C0000 in the measured month")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    configure_logging("warning", "console")
    asyncio.run(main(args.calls, args.months, args.big, args.rounds))
