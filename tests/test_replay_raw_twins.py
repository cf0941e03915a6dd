"""Every recording replays to the same outcomes from ``ami.raw`` (no event times) as from its
``ami.jsonl`` twin (event times): without times the ledger takes waits, talks and the
short-abandon rule from Asterisk's own figures (HoldTime, TalkTime), and ``replay`` says so.

Parametrized over the folders found in ../shared/asterisk-traces, so recordings added later
are covered too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.replay.recording import has_times, load_recording
from tests.conftest import TRACES, trace_dir
from tests.replaying import replay

TWINS = sorted(p.parent.name for p in TRACES.glob("*/ami.raw")
               if (p.parent / "ami.jsonl").exists())
SAME = ("linkedid", "outcome", "answered_by", "client", "caller", "did", "escalated",
        "fallback_routed", "voicemail_left", "queues", "end_seen")


def test_the_twins_are_found() -> None:
    assert len(TWINS) >= 18, TWINS


@pytest.mark.parametrize("scenario", TWINS)
async def test_raw_replays_to_the_same_outcomes_as_jsonl(scenario: str, pool, tmp_path) -> None:
    folder = trace_dir(scenario)
    assert not has_times(load_recording(folder / "ami.raw"))
    timed, _ = await replay(pool, tmp_path, folder / "ami.jsonl", pbx_id="jsonl")
    untimed, result = await replay(pool, tmp_path, folder / "ami.raw", pbx_id="raw")
    assert result.pipeline.ingest.untimed_events > 0
    assert len(untimed) == len(timed) > 0
    by_id = {row["linkedid"]: row for row in untimed}
    for row in timed:
        other = by_id[row["linkedid"]]
        assert {k: other[k] for k in SAME} == {k: row[k] for k in SAME}, row["linkedid"]
        # Asterisk's whole seconds against measured times: within a second.
        for key in ("wait_s", "talk_s"):
            if row[key] is None:
                assert other[key] is None, (row["linkedid"], key)
            else:
                assert other[key] == pytest.approx(row[key], abs=1.0), (row["linkedid"], key)


def test_replay_warns_when_a_recording_has_no_times(pg_server_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": pg_server_url, "ORIKAESHI_DATA_DIR": str(tmp_path)}
    folder = trace_dir("abandon_short")
    runs = {name: subprocess.run([sys.executable, "-m", "service", "replay",
                                  str(folder / name), "--json"], capture_output=True,
                                 text=True, env=env, timeout=120, check=False)
            for name in ("ami.raw", "ami.jsonl")}
    assert all(done.returncode == 0 for done in runs.values()), runs
    warnings = [line for line in runs["ami.raw"].stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "no event times" in warnings[0], runs["ami.raw"].stderr
    assert "warning" not in runs["ami.jsonl"].stderr
    assert '"outcome": "short_abandon"' in runs["ami.raw"].stdout
