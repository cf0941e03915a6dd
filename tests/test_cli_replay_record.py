"""The admin commands as an admin runs them: `orikaeshi replay --json` (the documented
contract) and `orikaeshi record` (whose output replays to the same ledger)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from service.config import PbxConfig
from service.replay.record import record
from service.replay.recording import load_recording
from service.replay.server import ReplayServer
from tests.conftest import trace_dir
from tests.replaying import replay

CONTRACT = {"pbx", "linkedid", "client", "caller", "caller_name", "did", "started_at",
            "answered_at", "ended_at", "outcome", "wait_s", "talk_s", "answered_by",
            "escalated", "fallback_routed", "voicemail_left"}


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_replay_json_prints_one_object_per_inbound_call(pg_server_url: str,
                                                       tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": pg_server_url, "ORIKAESHI_DATA_DIR": str(tmp_path)}
    folder = trace_dir("japanese_caller_names")
    done = run_cli("replay", str(folder / "ami.jsonl"), "--json", env=env)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    truth = json.loads((folder / "scenario.json").read_text())["calls"]
    assert [r["caller_name"] for r in rows] == [c["caller_name"] for c in truth]
    assert [r["outcome"] for r in rows] == [c["outcome_code"] for c in truth]
    for row in rows:
        assert set(row) >= CONTRACT
        assert row["caller"].startswith("+81")
    # The scratch database is gone afterwards.
    assert "orikaeshi_replay" not in run_cli("db", "url", env=env).stdout


def test_replay_rejects_a_file_that_is_not_a_recording(pg_server_url: str,
                                                       tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello\r\n\r\n")
    env = {**os.environ, "DATABASE_URL": pg_server_url, "ORIKAESHI_DATA_DIR": str(tmp_path)}
    done = run_cli("replay", str(bogus), env=env)
    assert done.returncode == 2 and "banner" in done.stderr


async def test_record_then_replay_gives_the_same_ledger(pool, tmp_path: Path) -> None:
    source = trace_dir("repeat_caller_escalated") / "ami.jsonl"
    server = ReplayServer(load_recording(source), speed=20.0)
    port = await server.start()
    out = tmp_path / "recorded.jsonl"
    pbx = PbxConfig(pbx_id="rec", ami_port=port, ami_username="u", ami_secret="p")
    recording = asyncio.create_task(record(pbx, out, seconds=4.0))
    await asyncio.wait_for(server.finished.wait(), 30)
    count = await recording
    await server.close()
    assert count > 200
    original, _ = await replay(pool, tmp_path, source, pbx_id="a")
    again, _ = await replay(pool, tmp_path, out, pbx_id="b")
    keys = ("caller_name", "outcome", "answered_by", "escalated", "queues")
    assert [tuple(r[k] for k in keys) for r in again] == \
        [tuple(r[k] for k in keys) for r in original]
