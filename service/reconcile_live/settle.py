"""One reconciliation pass over the recent past, and the state /healthz and the supervisor
page show.

A pass reads the ledger's inbound calls that started inside the look-back window and ended
at least ``settle_after_s`` ago, and Asterisk's rows for the same window from the ``cdr``
and ``queue_log`` tables (written by Asterisk through cdr_pgsql / realtime, or by the file
follower).  The rows go through the project's own readers (service.reconcile.asterisk_logs)
and comparison (service.reconcile.compare), unknown calls are settled and calls the ledger
never saw are added by service.reconcile.command.settle, exactly as the manual
``orikaeshi reconcile`` does; what is left is stored in ``reconcile_differences``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.config import Config, PbxConfig
from service.reconcile.asterisk_logs import CDR_COLUMNS, read_cdr, read_queue_log
from service.reconcile.command import load_calls, settle
from service.reconcile.compare import Difference, compare

_UTC = ZoneInfo("UTC")
# Ledger calls are read this much wider than the CDR window, so that every CDR row inside
# it finds its call (their start times differ by milliseconds to seconds).
_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class PassResult:
    calls_checked: int
    settled: int
    added: int
    differences: list[Difference]


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def cdr_text(rows: list[asyncpg.Record]) -> str:
    """Rows of the ``cdr`` table as a Master.csv (UTC times) for the project's CDR reader."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    for row in rows:
        values: list[Any] = []
        for column in CDR_COLUMNS:
            value = row[column]
            if isinstance(value, datetime):
                value = value.strftime("%Y-%m-%d %H:%M:%S")
            values.append("" if value is None else value)
        writer.writerow(values)
    return out.getvalue()


def queue_log_text(rows: list[asyncpg.Record]) -> str:
    """Rows of the ``queue_log`` table as queue_log lines, for the project's reader.  Adaptive
    realtime fills data1..data5; the plain form one ``data`` with the fields joined by ``|``."""
    lines = []
    for row in rows:
        slots = [row[f"data{i}"] for i in range(1, 6)]
        data = row["data"] if row["data"] and not any(slots) else "|".join(slots).rstrip("|")
        epoch = row["time"].replace(tzinfo=UTC).timestamp() if row["time"] else 0
        lines.append(f"{int(epoch)}|{row['callid']}|{row['queuename']}|{row['agent']}|"
                     f"{row['event']}|{data}")
    return "\n".join(lines) + ("\n" if lines else "")


def _source_ids(pbx: PbxConfig) -> list[str]:
    # Rows Asterisk writes itself carry no PBX ('' by the column default).
    return [pbx.pbx_id, ""] if pbx.reconcile_source == "database" else [pbx.pbx_id]


async def reconcile_pass(conn: asyncpg.Connection, config: Config, pbx: PbxConfig,
                         now: datetime) -> PassResult:
    since = now - timedelta(seconds=config.reconcile_lookback_s)
    until = now - timedelta(seconds=config.reconcile_settle_after_s)
    ids = _source_ids(pbx)
    cdr_rows = await conn.fetch(
        """SELECT * FROM cdr WHERE pbx_id = ANY ($1) AND start >= $2 AND start < $3
           ORDER BY start, id""", ids, _naive(since), _naive(until))
    calls = await load_calls(conn, pbx.pbx_id, since - _MARGIN, until + _MARGIN)
    callids = sorted({r["uniqueid"] for r in cdr_rows}
                     | {u for c in calls for u in (c["uniqueids"] or [])})  # type: ignore[attr-defined]
    queue_rows = await conn.fetch(
        "SELECT * FROM queue_log WHERE pbx_id = ANY ($1) AND callid = ANY ($2) ORDER BY time, id",
        ids, callids)
    findings = compare(calls, read_cdr(cdr_text(list(cdr_rows)), _UTC),
                       read_queue_log(queue_log_text(list(queue_rows))),
                       inbound_contexts=frozenset(pbx.inbound_contexts),
                       short_abandon_s=config.short_abandon_s)
    inside = {c["linkedid"] for c in calls
              if since <= c["started_at"] < until}  # type: ignore[operator]
    differences = [d for d in findings.differences
                   if d.kind != "missing_in_cdr" or d.linkedid in inside]
    # A call added from the records without an outcome stays a difference.
    differences += [Difference("unsettled", a.linkedid, f"call from {a.caller_number or '-'} "
                               f"to {a.did}: {a.note}; added with outcome unknown",
                               a.started_at)
                    for a in findings.additions if a.outcome == "unknown"]
    await settle(conn, pbx.pbx_id, findings)
    await _store(conn, pbx.pbx_id, differences, now, since)
    result = PassResult(findings.calls_checked, len(findings.settlements),
                        len(findings.additions), differences)
    # Counted here, once a pass, through the partial index calls_unknown: /healthz shows
    # the stored figure instead of counting the ledger on every request.
    unknown = await conn.fetchval(
        "SELECT count(*) FROM calls WHERE pbx_id = $1 AND outcome = 'unknown' "
        "AND started_at < $2", pbx.pbx_id, until)
    await conn.execute(
        """INSERT INTO reconcile_runs (pbx_id, ran_at, calls_checked, settled, added,
               differences, error, ok_at, unknown_calls)
           VALUES ($1, $2, $3, $4, $5, $6, NULL, $2, $7)
           ON CONFLICT (pbx_id) DO UPDATE SET ran_at = EXCLUDED.ran_at,
               calls_checked = EXCLUDED.calls_checked, settled = EXCLUDED.settled,
               added = EXCLUDED.added, differences = EXCLUDED.differences, error = NULL,
               ok_at = EXCLUDED.ok_at, unknown_calls = EXCLUDED.unknown_calls""",
        pbx.pbx_id, now, result.calls_checked, result.settled, result.added,
        len(differences), int(unknown))
    return result


async def _store(conn: asyncpg.Connection, pbx_id: str, differences: list[Difference],
                 now: datetime, since: datetime) -> None:
    """Keep what this pass found (first seen kept); drop what it no longer finds inside the
    window.  Older differences stay until someone looks (they are not checked again)."""
    async with conn.transaction():
        for d in differences:
            await conn.execute(
                """INSERT INTO reconcile_differences (pbx_id, kind, linkedid, detail,
                       started_at, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $6)
                   ON CONFLICT (pbx_id, kind, linkedid) DO UPDATE SET detail = EXCLUDED.detail,
                       last_seen = EXCLUDED.last_seen""",
                pbx_id, d.kind, d.linkedid or "", d.detail, d.started_at, now)
        await conn.execute(
            """DELETE FROM reconcile_differences WHERE pbx_id = $1 AND last_seen < $2
                 AND (started_at IS NULL OR started_at >= $3)""", pbx_id, now, since)


async def record_failure(pool: asyncpg.Pool, pbx_id: str, now: datetime, error: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO reconcile_runs (pbx_id, ran_at, calls_checked, settled, added,
                   differences, error) VALUES ($1, $2, 0, 0, 0, 0, $3)
               ON CONFLICT (pbx_id) DO UPDATE SET ran_at = EXCLUDED.ran_at,
                   error = EXCLUDED.error""", pbx_id, now, error[:500])


async def reconcile_state(pool: asyncpg.Pool) -> dict[str, Any]:
    """What /healthz and the supervisor page show: each PBX's last pass, the differences
    left, and the calls still ``unknown``.  ``ok`` is false while any difference is left or
    the last pass failed."""
    async with pool.acquire() as conn:
        runs = await conn.fetch("SELECT * FROM reconcile_runs ORDER BY pbx_id")
        kinds = await conn.fetch(
            "SELECT pbx_id, kind, count(*) AS n, min(first_seen) AS oldest "
            "FROM reconcile_differences WHERE resolved_at IS NULL "
            "GROUP BY pbx_id, kind ORDER BY pbx_id, kind")
        # outcome 'unknown' implies an inbound call: the predicate of the partial index
        # calls_unknown, so this reads that small index, not the ledger.
        unknown = await conn.fetchval("SELECT count(*) FROM calls WHERE outcome = 'unknown'")
    pbxs: dict[str, dict[str, Any]] = {}
    for run in runs:
        pbxs[run["pbx_id"]] = {"last_pass": run["ran_at"].isoformat(),
                               "calls_checked": run["calls_checked"],
                               "settled": run["settled"], "added": run["added"],
                               "error": run["error"], "differences": {}}
    for row in kinds:
        entry = pbxs.setdefault(row["pbx_id"], {"last_pass": None, "differences": {}})
        entry["differences"][row["kind"]] = int(row["n"])
    total = sum(int(r["n"]) for r in kinds)
    return {"ok": total == 0 and not any(r["error"] for r in runs),
            "running": bool(runs), "differences": total, "unknown_calls": int(unknown),
            "pbx": pbxs}


async def differences(conn: asyncpg.Connection, limit: int = 500) -> list[dict[str, Any]]:
    """The differences for the page: unresolved first, then those resolved (who, why)."""
    # With the call's client and its zone: the page shows a difference's times in it.
    rows = await conn.fetch(
        """SELECT d.pbx_id, d.kind, d.linkedid, d.detail, d.started_at, d.first_seen,
                  d.last_seen, d.resolved_at, d.resolved_by, d.resolved_note, c.client,
                  cl.timezone
           FROM reconcile_differences d
           LEFT JOIN calls c ON c.pbx_id = d.pbx_id AND c.linkedid = d.linkedid
           LEFT JOIN clients cl ON cl.code = c.client
           ORDER BY d.resolved_at IS NOT NULL, d.started_at DESC NULLS LAST LIMIT $1""",
        limit)
    return [dict(r) for r in rows]


async def resolve(conn: asyncpg.Connection, pbx_id: str, kind: str, linkedid: str, *,
                  by: str, note: str, now: datetime) -> str:
    """Mark a difference resolved by a person (it no longer raises the alert; a later pass
    that finds it again keeps it resolved).  Returns ``resolved``, ``already`` or
    ``missing``."""
    row = await conn.fetchrow(
        """UPDATE reconcile_differences SET resolved_at = $4, resolved_by = $5,
               resolved_note = $6
           WHERE pbx_id = $1 AND kind = $2 AND linkedid = $3 AND resolved_at IS NULL
           RETURNING pbx_id""", pbx_id, kind, linkedid, now, by, note)
    if row is not None:
        return "resolved"
    exists = await conn.fetchval(
        "SELECT 1 FROM reconcile_differences WHERE pbx_id = $1 AND kind = $2 AND linkedid = $3",
        pbx_id, kind, linkedid)
    return "already" if exists else "missing"
