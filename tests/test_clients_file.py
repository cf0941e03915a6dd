"""The clients file: what admins write, what they are told when it is wrong, and loading it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.clients.schema import ClientsFileError, parse_clients
from service.clients.store import NOTIFY_CHANNEL, current_directory, load_document

SAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "clients.sample.yaml"

BROKEN = """\
defaults:
  timezone: Asia/Tokio
clients:
  KSL:
    name: Kasumi Law Office
    dids: [0312345678]
    hours:
      mon-fri: 09:00-18:00
      sat: 25:00-12:00
      funday: 09:00-10:00
    queue: q-ksl
    voicemail: 1001@lab
    open_days: [12-28]
  MDC:
    dids: [03-1234-5678]
    queue: q mdc
    queue_timeout: soon
    voicemail: 1002@lab
"""


def test_the_sample_file_is_valid() -> None:
    directory = parse_clients(SAMPLE.read_text(), "clients.sample.yaml")
    assert sorted(directory.clients) == ["KSL", "MDC", "WSH"]
    assert directory.by_did["0120987654"] == "WSH"
    ksl = directory.clients["KSL"]
    assert ksl.queue == "q-ksl" and ksl.voicemail == "1001@lab"
    assert ksl.repeat.earlier_calls == 2 and ksl.repeat.window_s == 72 * 3600
    assert directory.clients["WSH"].national_holidays is None


def test_every_error_is_reported_with_its_line() -> None:
    with pytest.raises(ClientsFileError) as caught:
        parse_clients(BROKEN, "c.yaml")
    errors = caught.value.errors
    expected = [
        ("c.yaml:2:13", "defaults.timezone", "not a time zone"),
        ("c.yaml:9:12", "clients.KSL.hours.sat", "'25:00-12:00' is not a time"),
        ("c.yaml:10:7", "clients.KSL.hours.funday", "not a weekday"),
        ("c.yaml:13:17", "clients.KSL.open_days", "needs its hours"),
        ("c.yaml:14:3", "clients.MDC", "name is required"),
        ("c.yaml:15:12", "clients.MDC.dids", "0312345678 already belongs to KSL"),
        ("c.yaml:16:12", "clients.MDC.queue", "is not a queue name"),
        ("c.yaml:17:20", "clients.MDC.queue_timeout", "not a duration"),
    ]
    for where, path, words in expected:
        assert any(e.startswith(f"{where}: {path}:") and words in e for e in errors), \
            (where, path, words, errors)
    # In the order an admin reads the file.
    lines = [int(e.split(":")[1]) for e in errors]
    assert lines == sorted(lines), errors


def test_yaml_syntax_errors_say_where() -> None:
    with pytest.raises(ClientsFileError) as caught:
        parse_clients("clients:\n  KSL: [unclosed\n", "x.yaml")
    assert caught.value.errors[0].startswith("x.yaml:3:")


def test_validate_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    env = {**os.environ, "ORIKAESHI_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "service", "clients", "validate", str(bad)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 1
    assert f"{bad}:9:12: clients.KSL.hours.sat" in done.stderr
    done = subprocess.run([sys.executable, "-m", "service", "clients", "validate",
                           str(SAMPLE)], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert done.returncode == 0 and "3 clients, 5 DIDs" in done.stdout


async def test_loading_stores_versions_and_notifies(pool) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()

    def on_notify(*args: object) -> None:
        heard.put_nowait(str(args[3]))

    async with pool.acquire() as listener:
        await listener.add_listener(NOTIFY_CHANNEL, on_notify)
        async with pool.acquire() as conn:
            v1, _ = await load_document(conn, SAMPLE.read_text(), "sample.yaml")
            fewer = SAMPLE.read_text().split("  WSH:")[0]
            v2, directory = await load_document(conn, fewer, "fewer.yaml")
            assert v2 > v1 and sorted(directory.clients) == ["KSL", "MDC"]
            rows = {r["code"]: r for r in await conn.fetch("SELECT * FROM clients")}
            current = await current_directory(conn)
        assert await asyncio.wait_for(heard.get(), 5) == str(v1)
        assert await asyncio.wait_for(heard.get(), 5) == str(v2)
        await listener.remove_listener(NOTIFY_CHANNEL, on_notify)
    # A client removed from the file is kept (its calls still name it), inactive.
    assert rows["WSH"]["active"] is False and rows["KSL"]["active"] is True
    assert rows["KSL"]["greeting_script"].startswith("お電話ありがとうございます")
    assert current is not None and current.version == v2
    assert "WSH" not in current.clients


def test_an_open_day_on_a_day_without_hours_must_give_them() -> None:
    text = """clients:
  A:
    name: A
    dids: [0311110000]
    hours: {mon-fri: 09:00-18:00}
    open_days: ["2027-01-02"]
    queue: q-a
    voicemail: 1@vm
"""
    with pytest.raises(ClientsFileError) as caught:
        parse_clients(text, "a.yaml")
    assert caught.value.errors == [
        "a.yaml:6:17: clients.A.open_days: 2027-01-02 is a sat, which has no regular hours: "
        "give its hours (e.g. '2027-01-02 09:00-12:00')"]
