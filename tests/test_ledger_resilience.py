"""No duplicates, no lost calls: replaying twice, AMI disconnects, gaps, reconciliation."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import asyncpg

from service.reconcile.command import reconcile_command
from tests.conftest import trace_dir
from tests.replaying import config_for, replay

KEYS = ("linkedid", "client", "caller", "caller_name", "did", "outcome", "answered_by",
        "escalated", "fallback_routed", "voicemail_left", "started_at")


def essentials(report: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(row[k] for k in KEYS) for row in report]


async def table_counts(pool: asyncpg.Pool) -> tuple[int, int, int]:
    async with pool.acquire() as conn:
        return (await conn.fetchval("SELECT count(*) FROM calls"),
                await conn.fetchval("SELECT count(*) FROM stints"),
                await conn.fetchval("SELECT count(*) FROM ring_attempts"))


async def test_same_trace_twice_changes_nothing(pool, tmp_path: Path) -> None:
    recording = trace_dir("burst_concurrent") / "ami.jsonl"
    first, _ = await replay(pool, tmp_path, recording)
    counts = await table_counts(pool)
    second, _ = await replay(pool, tmp_path, recording)
    assert await table_counts(pool) == counts
    assert len(first) == 45
    assert second == first


async def test_disconnect_without_loss_gives_the_same_ledger(pool, tmp_path: Path) -> None:
    recording = trace_dir("burst_concurrent") / "ami.jsonl"
    whole, _ = await replay(pool, tmp_path, recording, pbx_id="whole")
    cut, result = await replay(pool, tmp_path, recording, pbx_id="cut",
                               disconnect_after=1500, gap=0)
    assert result.pipeline.client.stats.connects == 2
    assert essentials(cut) == essentials(whole)


async def test_gap_closes_calls_as_unknown_and_reconcile_settles_them(
        pool, db_url: str, tmp_path: Path, capsys) -> None:
    folder = trace_dir("burst_concurrent")
    whole, _ = await replay(pool, tmp_path, folder / "ami.jsonl", pbx_id="whole")
    truth = {r["linkedid"]: r for r in whole}
    # Asterisk does not replay what happened while the client was away: 2,500 messages
    # are never seen; the ledger resynchronises with CoreShowChannels/QueueStatus.
    cut, result = await replay(pool, tmp_path, folder / "ami.jsonl", pbx_id="pbx1",
                               disconnect_after=1200, gap=2500)
    assert result.pipeline.client.stats.connects == 2
    unknown = [r for r in cut if r["outcome"] == "unknown"]
    assert unknown, "some calls must have ended inside the gap"
    assert all(r["end_seen"] is False for r in unknown)
    seen = {r["linkedid"] for r in cut}
    assert seen < set(truth), "calls that began and ended in the gap are not on AMI at all"
    # What AMI did see is right: every call whose end was seen has its true outcome.
    for row in cut:
        if row["end_seen"]:
            assert row["outcome"] == truth[row["linkedid"]]["outcome"], row["linkedid"]

    config = dataclasses.replace(config_for(tmp_path), database_url=db_url)
    args = argparse.Namespace(pbx=None, cdr=folder / "cdr.csv", queue_log=folder / "queue_log",
                              since=None, until=None, dry_run=False, json=True)
    status = await reconcile_command(config, args)
    out = json.loads(capsys.readouterr().out)
    assert out["settlements"] and out["additions"]
    async with pool.acquire() as conn:
        rows = {r["linkedid"]: r for r in await conn.fetch(
            "SELECT linkedid, outcome, answered_by, settled_by FROM calls WHERE pbx_id='pbx1'")}
    # No call lost: after reconciliation every call of the uninterrupted run is there, once.
    assert set(rows) == set(truth)
    open_questions = {d["linkedid"] for d in out["differences"] if d["kind"] == "unsettled"}
    for linkedid, row in rows.items():
        if row["outcome"] == "unknown":
            # Only calls that never reached a queue can stay unknown (queue_log is silent),
            # and each of them is reported.
            assert truth[linkedid]["outcome"] in ("ivr_hangup", "queue_full")
            assert linkedid in open_questions
        else:
            assert row["outcome"] == truth[linkedid]["outcome"], linkedid
            assert row["answered_by"] == truth[linkedid]["answered_by"], linkedid
    assert {d["kind"] for d in out["differences"]} <= {"unsettled"}
    assert status == (1 if out["differences"] else 0)


async def test_reconcile_agrees_with_a_clean_replay(pool, db_url: str, tmp_path: Path,
                                                   capsys) -> None:
    for name in ("queue_timeout_to_voicemail", "operator_blind_transfer_to_supervisor",
                 "abandon_short", "queue_full"):
        folder = trace_dir(name)
        await replay(pool, tmp_path, folder / "ami.jsonl", pbx_id="pbx1")
        config = dataclasses.replace(config_for(tmp_path), database_url=db_url)
        args = argparse.Namespace(pbx=None, cdr=folder / "cdr.csv",
                                  queue_log=folder / "queue_log", since=None, until=None,
                                  dry_run=True, json=True)
        status = await reconcile_command(config, args)
        out = json.loads(capsys.readouterr().out)
        assert out["differences"] == [], name
        assert status == 0
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM calls")


async def test_reconcile_reports_a_call_missing_from_the_ledger(pool, db_url: str,
                                                                tmp_path: Path, capsys) -> None:
    folder = trace_dir("queue_full")
    await replay(pool, tmp_path, folder / "ami.jsonl", pbx_id="pbx1")
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM calls WHERE caller_number = '08011110002'")
    config = dataclasses.replace(config_for(tmp_path), database_url=db_url)
    args = argparse.Namespace(pbx=None, cdr=folder / "cdr.csv", queue_log=folder / "queue_log",
                              since=None, until=None, dry_run=True, json=True)
    assert await reconcile_command(config, args) == 1
    out = json.loads(capsys.readouterr().out)
    missing = [d for d in out["differences"] if d["kind"] == "missing_in_ledger"]
    assert len(missing) == 1 and "08011110002" in missing[0]["detail"]
