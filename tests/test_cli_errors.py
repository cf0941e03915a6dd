"""Bad input to the command line ends in one clear line, never a traceback (issue 8, item
10): a time that is not one, a database with no tables yet, a reader that closes the pipe,
and call-back hours that run past midnight."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.clients.schema import ClientsFileError, parse_clients
from service.config import REPO_ROOT
from tests.conftest import fresh_database, trace_dir

SAMPLE = REPO_ROOT / "deploy" / "clients.sample.yaml"


def orikaeshi(tmp_path: Path, *args: str, db_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORIKAESHI_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": db_url}
    return subprocess.run([sys.executable, "-m", "service", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False, cwd=REPO_ROOT)


@pytest.fixture
async def empty_db_url(pg_server_url: str) -> AsyncIterator[str]:
    """A database with nothing in it: no migration has run."""
    async for url in fresh_database(pg_server_url, "orikaeshi_empty"):
        yield url


def test_explain_at_a_time_that_is_not_one(tmp_path: Path, db_url: str) -> None:
    done = orikaeshi(tmp_path, "route", "explain", "--did", "0312345678", "--caller",
                     "09011112222", "--at", "tomorrow", "--clients", str(SAMPLE),
                     db_url=db_url)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "orikaeshi route explain: --at 'tomorrow' is not an ISO date and time (e.g. "
        "2026-11-24T10:00 in the client's time zone, or 2026-11-24T10:00+09:00)"]
    assert done.stdout == ""


def test_explain_on_an_unmigrated_database(tmp_path: Path, empty_db_url: str) -> None:
    # A Tuesday 10:00 in Tokyo: KSL is open, so the repeat check asks the database.
    done = orikaeshi(tmp_path, "route", "explain", "--did", "0312345678", "--caller",
                     "09011112222", "--at", "2026-11-24T10:00", "--clients", str(SAMPLE),
                     db_url=empty_db_url)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("orikaeshi route explain: no repeat check: the database has no "
                           "orikaeshi tables yet (")
    assert line.endswith("run `orikaeshi db migrate`")
    assert "  ROUTE_FLAGS = repeat_check_unavailable" in done.stdout


def test_replay_into_a_pipe_closed_early(tmp_path: Path, db_url: str) -> None:
    """`orikaeshi replay … | head`: the reader is gone before the report is written (here
    the pipe's read end is closed from the start, so it happens on every machine)."""
    env = {**os.environ, "ORIKAESHI_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": db_url}
    recording = trace_dir("answered_agent_hangup") / "ami.jsonl"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        writer = subprocess.run([sys.executable, "-m", "service", "replay", str(recording),
                                 "--json"], stdout=write_end, stderr=subprocess.PIPE,
                                text=True, env=env, timeout=300, check=False, cwd=REPO_ROOT)
    finally:
        os.close(write_end)
    assert "Traceback" not in writer.stderr and "Exception ignored" not in writer.stderr
    assert writer.stderr.splitlines()[-1] == \
        "orikaeshi: output closed by the reader (broken pipe); stopped"
    assert writer.returncode == 141


def test_reversed_calling_hours_are_refused_with_their_line() -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace("calling_hours: 08:00-21:00",
                                                      "calling_hours: 20:00-09:00")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "calling_hours" in row)
    with pytest.raises(ClientsFileError) as refused:
        parse_clients(text, "clients.yaml")
    message = str(refused.value)
    assert f"clients.yaml:{line}:" in message
    assert ("defaults.calling_hours: '20:00-09:00' runs past midnight; call backs may only "
            "be dialled inside one day (callee's local time), e.g. 08:00-21:00") in message
    # Opening hours that run past midnight stay allowed: there the schema means overnight.
    overnight = SAMPLE.read_text(encoding="utf-8").replace("mon-fri: 09:00-18:00",
                                                           "mon-fri: 22:00-06:00", 1)
    assert parse_clients(overnight, "clients.yaml").clients["KSL"]
