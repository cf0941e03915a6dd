"""Every recorded scenario, replayed over a real socket into a real database, against the
ground truth of its scenario.json and Asterisk's own queue_log figures.

The recordings come from ../shared/asterisk-traces (read in place, never edited).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TRACES, trace_dir
from tests.replaying import replay

SCENARIOS = sorted(p.parent.name for p in TRACES.glob("*/scenario.json"))


def asterisk_figures(folder: Path) -> dict[str, dict[str, float]]:
    """Per queue_log callid: total wait and talk as Asterisk itself counted them."""
    figures: dict[str, dict[str, float]] = defaultdict(lambda: {"wait": 0.0, "talk": 0.0})
    for line in (folder / "queue_log").read_text().splitlines():
        f = line.split("|")
        if len(f) < 5 or f[1] in ("NONE", "MANAGER"):
            continue
        callid, verb, data = f[1], f[4], f[5:]
        if verb == "CONNECT":
            figures[callid]["wait"] += float(data[0])
        elif verb in ("ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY"):
            figures[callid]["wait"] += float(data[2] if verb != "EXITWITHKEY" else data[3])
        elif verb in ("COMPLETEAGENT", "COMPLETECALLER"):
            figures[callid]["talk"] += float(data[1])
        elif verb == "BLINDTRANSFER":
            figures[callid]["talk"] += float(data[3])
    return figures


def expected_outcome(truth: dict[str, Any]) -> str:
    # The recorder marks a fallback-routed call by that fact; in the ledger it is a flag and
    # the outcome is what happened to the call.
    if truth["outcome_code"] == "fallback_routed":
        return truth["queue_legs"][-1]["result"]
    return truth["outcome_code"]


def answered_by_ok(got: str | None, truth: dict[str, Any]) -> bool:
    legs = truth["queue_legs"]
    if truth["answered_by"] is None:
        return got is None
    agent = legs[-1]["agent"] if legs else truth["answered_by"]
    if agent and agent.startswith("any:"):
        return got in agent[4:].split(",")
    return got == truth["answered_by"]


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_scenario_replays_to_ground_truth(scenario: str, pool, tmp_path) -> None:
    folder = trace_dir(scenario)
    truth = json.loads((folder / "scenario.json").read_text())
    report, result = await replay(pool, tmp_path, folder / "ami.jsonl")
    inbound = [c for c in truth["calls"] if c["direction"] == "inbound"]

    # Every call once, in the order they were placed.
    assert len(report) == len(inbound), [r["caller_number"] for r in report]
    assert len({r["linkedid"] for r in report}) == len(report)
    assert result.pipeline.client.stats.bad_messages == 0

    async with pool.acquire() as conn:
        uniqueids = {r["linkedid"]: r["caller_uniqueid"] for r in
                     await conn.fetch("SELECT linkedid, caller_uniqueid FROM calls")}
    figures = asterisk_figures(folder)
    by_number: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in report:
        by_number[row["caller_number"]].append(row)
    for call in inbound:
        row = by_number[call["caller_number"]].pop(0)
        where = f"{scenario}/{call['id']}"
        assert row["outcome"] == expected_outcome(call), where
        assert answered_by_ok(row["answered_by"], call), (where, row["answered_by"])
        assert row["client"] == call["client"], where
        assert row["did"] == call["did"], where
        assert row["caller_name"] == call["caller_name"], where
        assert row["escalated"] == call["escalated"], where
        assert row["voicemail_left"] == call["voicemail_left"], where
        assert row["fallback_routed"] == (call["outcome_code"] == "fallback_routed"), where
        assert row["end_seen"] is True
        assert row["started_at"] and row["ended_at"], where
        # Wait and talk within 1 s of Asterisk's own queue_log figures.
        own = figures.get(uniqueids[row["linkedid"]])
        if own is None:
            assert row["wait_s"] is None, where  # never joined a queue
        else:
            assert row["wait_s"] == pytest.approx(own["wait"], abs=1.0), where
            if row["outcome"] == "answered":
                assert row["talk_s"] == pytest.approx(own["talk"], abs=1.0), where
                assert row["answered_at"] is not None
            else:
                assert row["talk_s"] is None and row["answered_at"] is None, where
