"""``orikaeshi reconcile``: read the files, compare, settle unknown calls, report."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from service.config import Config
from service.localtime import local_iso
from service.phone import is_withheld, to_e164
from service.reconcile.asterisk_logs import LogFormatError, read_cdr, read_queue_log
from service.reconcile.compare import Difference, Findings, compare
from service.store.db import create_pool, database_url, migrate_url


def _parse_when(text: str | None, tz: ZoneInfo) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


async def load_calls(conn: asyncpg.Connection, pbx_id: str, since: datetime | None,
                     until: datetime | None) -> list[dict[str, object]]:
    rows = await conn.fetch(
        """SELECT linkedid, caller_uniqueid, uniqueids, started_at, outcome, answered_by, wait_s,
                  fallback_routed
           FROM calls WHERE pbx_id = $1 AND direction = 'inbound' AND ended_at IS NOT NULL
             AND ($2::timestamptz IS NULL OR started_at >= $2)
             AND ($3::timestamptz IS NULL OR started_at < $3)
           ORDER BY started_at""", pbx_id, since, until)
    return [dict(r) for r in rows]


async def settle(conn: asyncpg.Connection, pbx_id: str, findings: Findings) -> int:
    """Write the settlements and the additions, marked as coming from Asterisk's records."""
    async with conn.transaction():
        for a in findings.additions:
            await conn.execute(
                """INSERT INTO calls (pbx_id, linkedid, direction, client, did, caller_number,
                       caller_e164, caller_withheld, caller_uniqueid, uniqueids, started_at,
                       ended_at, outcome, answered_by, wait_s, end_seen, settled_by,
                       settled_note, fallback_routed)
                   VALUES ($1, $2, 'inbound', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                           $14, false, 'reconcile', $15, $16)
                   ON CONFLICT (pbx_id, linkedid) DO NOTHING""",
                pbx_id, a.linkedid, a.client, a.did, a.caller_number or None,
                to_e164(a.caller_number), is_withheld(a.caller_number), a.caller_uniqueid,
                a.uniqueids, a.started_at or a.ended_at, a.ended_at, a.outcome,
                a.answered_by, a.wait_s, a.note, a.fallback_routed)
        for linkedid in findings.fallback_flags:
            await conn.execute(
                """UPDATE calls SET fallback_routed = true, updated_at = now()
                   WHERE pbx_id = $1 AND linkedid = $2""", pbx_id, linkedid)
        for s in findings.settlements:
            await conn.execute(
                """UPDATE calls SET outcome = $3, answered_by = coalesce($4, answered_by),
                       wait_s = coalesce(wait_s, $5), ended_at = coalesce($6, ended_at),
                       settled_by = 'reconcile', settled_note = $7, updated_at = now()
                   WHERE pbx_id = $1 AND linkedid = $2 AND outcome = 'unknown'""",
                pbx_id, s.linkedid, s.outcome, s.answered_by, s.wait_s, s.ended_at, s.note)
    return len(findings.settlements) + len(findings.additions) + len(findings.fallback_flags)


async def reconcile_command(config: Config, args: argparse.Namespace) -> int:
    pbx = config.pbx(args.pbx) if args.pbx else config.pbxs[0]
    tz = ZoneInfo(pbx.clock_tz)
    try:
        cdr = read_cdr(args.cdr.read_text(encoding="utf-8"), tz)
        queue = read_queue_log(args.queue_log.read_text(encoding="utf-8"))
        since, until = _parse_when(args.since, tz), _parse_when(args.until, tz)
    except (OSError, LogFormatError, ValueError) as exc:
        print(f"orikaeshi reconcile: {exc}", file=sys.stderr)
        return 2
    if since or until:
        cdr = [r for r in cdr if r.start and (not since or r.start >= since)
               and (not until or r.start < until)]
    url = await database_url(config)
    await migrate_url(url)
    pool = await create_pool(url, max_size=2)
    try:
        async with pool.acquire() as conn:
            calls = await load_calls(conn, pbx.pbx_id, since, until)
            findings = compare(calls, cdr, queue, inbound_contexts=frozenset(
                pbx.inbound_contexts), short_abandon_s=config.short_abandon_s)
            settled = 0 if args.dry_run else await settle(conn, pbx.pbx_id, findings)
            zones = await call_zones(conn, pbx.pbx_id, findings)
    finally:
        await pool.close()
    # A call the ledger never saw is a difference until it is added, and stays one when
    # Asterisk's records cannot tell its outcome.
    for a in findings.additions:
        if args.dry_run or a.outcome == "unknown":
            findings.differences.append(Difference(
                "missing_in_ledger" if args.dry_run else "unsettled", a.linkedid,
                f"call from {a.caller_number or '(no number)'} to {a.did}: {a.note}"
                + ("" if args.dry_run else "; added with outcome unknown"), a.started_at))
    print_findings(findings, settled, as_json=args.json, dry_run=args.dry_run, zones=zones,
                   default_zone=config.company_timezone)
    return 1 if findings.differences else 0


async def call_zones(conn: asyncpg.Connection, pbx_id: str,
                     findings: Findings) -> dict[str, str]:
    """linkedid → the time zone of the call's client, for the calls the output names (a
    person reads their times in the client's zone)."""
    clients = {r["code"]: r["timezone"] for r in
               await conn.fetch("SELECT code, timezone FROM clients")}
    named = [d.linkedid for d in findings.differences if d.linkedid]
    zones = {r["linkedid"]: clients[r["client"]] for r in await conn.fetch(
        "SELECT linkedid, client FROM calls WHERE pbx_id = $1 AND linkedid = ANY ($2)",
        pbx_id, named) if r["client"] in clients}
    zones.update({a.linkedid: clients[a.client] for a in findings.additions
                  if a.client in clients})
    return zones


def print_findings(findings: Findings, settled: int, *, as_json: bool, dry_run: bool,
                   zones: dict[str, str] | None = None,
                   default_zone: str | None = None) -> None:
    """The findings for a person (times in each call's client's zone, ``zones``; of a call
    of no known client in ``default_zone``, the company's), or JSON (ISO with offsets)."""
    zones = zones or {}
    if as_json:
        print(json.dumps({"calls_checked": findings.calls_checked, "written": settled,
                          "settlements": [asdict(s) for s in findings.settlements],
                          "additions": [asdict(a) for a in findings.additions],
                          "fallback_flags": findings.fallback_flags,
                          "differences": [asdict(d) for d in findings.differences]},
                         default=str, ensure_ascii=False, indent=1))
        return
    verb = "would settle" if dry_run else "settled"
    for linkedid in findings.fallback_flags:
        print(f"{'would flag' if dry_run else 'flagged'}: {linkedid} fallback_routed "
              "(CDR userfield orikaeshi-fallback)")
    for s in findings.settlements:
        print(f"{verb}: {s.linkedid} unknown -> {s.outcome}"
              f"{' by ' + s.answered_by if s.answered_by else ''} ({s.note})")
    for a in findings.additions:
        if not dry_run:
            at = local_iso(a.started_at, zones.get(a.linkedid) or default_zone)
            print(f"added: {a.linkedid} from {a.caller_number} at {at}: {a.outcome} "
                  f"({a.note})")
    for d in findings.differences:
        at = local_iso(d.started_at, zones.get(d.linkedid or "") or default_zone)
        print(f"{d.kind}: {d.linkedid or '-'} {at} {d.detail}")
    print(f"{findings.calls_checked} ledger calls checked, {len(findings.settlements)} "
          f"settled, {len(findings.additions)} missing from the ledger"
          f"{'' if dry_run else ' (added)'}, {len(findings.differences)} differences",
          file=sys.stderr)
