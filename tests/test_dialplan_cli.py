"""What PBX admins run: ``orikaeshi dialplan check``, ``orikaeshi prompts`` and
``orikaeshi route explain``, as processes, on the sample clients and the shipped dialplan."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.dialplan.check import MUST_READ, check_variables
from service.dialplan.prompts import SEGMENTS, tools_available
from tests.pbx_files import SAMPLE_CONFIG, sample_etc

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "deploy" / "clients.sample.yaml"
TOOLS = tools_available()


def orikaeshi(tmp_path: Path, *args: str, db_url: str | None = None
              ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORIKAESHI_DATA_DIR": str(tmp_path / "data")}
    if db_url:
        env["DATABASE_URL"] = db_url
    return subprocess.run([sys.executable, "-m", "service", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False, cwd=REPO)


def etc_with(tmp_path: Path, queues: str) -> Path:
    """The sample PBX files (tests/pbx_files.py) with this queues.conf."""
    etc = sample_etc(tmp_path)
    (etc / "queues.conf").write_text(queues)
    return etc


# The sample configuration, and a PBX release given (no AMI to ask in these tests).
CHECK = ("--config", str(SAMPLE_CONFIG), "dialplan", "check", "--asterisk-version", "22.5.0")


def test_the_shipped_dialplan_uses_exactly_the_variable_names() -> None:
    for name in ("orikaeshi.conf", "escalation.conf", "supervisor.conf"):
        text = (REPO / "dialplan" / name).read_text()
        must_read = MUST_READ if name == "orikaeshi.conf" else ()
        assert check_variables(text, must_read=must_read) == [], name
    # A typo reads as an empty variable in Asterisk: the check names it.
    typo = (REPO / "dialplan" / "orikaeshi.conf").read_text().replace(
        "Queue(${ROUTE_QUEUE}", "Queue(${ROUTE_QEUE}")
    assert "dialplan uses ${ROUTE_QEUE}, which is not in agi/variables.py" in \
        check_variables(typo)


@pytest.mark.skipif(not TOOLS, reason="Open JTalk, espeak-ng or sox not installed")
def test_prompts_are_generated_reproducibly_and_the_check_passes(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    made = orikaeshi(tmp_path, "prompts", "--clients", str(SAMPLE), "--out", str(sounds))
    assert made.returncode == 0, made.stderr
    assert (sounds / "custom" / "whisper-ksl.wav").read_bytes()[:4] == b"RIFF"
    # The segments shipped in dialplan/sounds are what this command makes, byte for byte.
    for name in SEGMENTS:
        shipped = REPO / "dialplan" / "sounds" / f"{name}.wav"
        assert shipped.read_bytes() == (sounds / f"{name}.wav").read_bytes(), name

    # Only what `orikaeshi prompts` made: no Asterisk core sound (digits/<n>) is needed.
    # The clients have after-call work: the sample queues.conf includes what
    # `orikaeshi dialplan wrapup` wrote.
    etc = etc_with(tmp_path, (REPO / "dialplan" / "queues.conf.sample").read_text())
    clients = clients_with_wrapup(tmp_path)
    wrote = orikaeshi(tmp_path, "--config", str(SAMPLE_CONFIG), "dialplan", "wrapup",
                      "--clients", str(clients), "--out", str(etc / "orikaeshi-wrapup.conf"))
    assert wrote.returncode == 0, wrote.stderr
    ok = orikaeshi(tmp_path, *CHECK, "--clients", str(clients),
                   "--asterisk-etc", str(etc), "--sounds", str(sounds))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok: 3 clients, 5 DIDs" in ok.stdout


def clients_with_wrapup(tmp_path: Path) -> Path:
    """The sample clients, KSL with 15 s of after-call work and MDC with 30 s."""
    text = SAMPLE.read_text(encoding="utf-8")
    for queue, wrapup in (("q-ksl", "15s"), ("q-mdc", "30s")):
        assert f"    queue: {queue}\n" in text
        text = text.replace(f"    queue: {queue}\n",
                            f"    queue: {queue}\n    wrapup: {wrapup}\n", 1)
    path = tmp_path / "clients-wrapup.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_wrapup_is_written_for_queues_conf_and_checked(tmp_path: Path) -> None:
    """`orikaeshi dialplan wrapup` writes each client queue's wrapuptime; `dialplan check`
    refuses a queues.conf without the include, with a value that differs from the clients
    file, and a value left for a client that no longer has one; with the file written
    again the wrap-up lines are gone."""
    clients = clients_with_wrapup(tmp_path)
    etc = etc_with(tmp_path, (REPO / "dialplan" / "queues.conf.sample").read_text())
    base = ("--config", str(SAMPLE_CONFIG), "dialplan")
    printed = orikaeshi(tmp_path, *base, "wrapup", "--clients", str(clients))
    assert (printed.returncode, printed.stdout) == (0, (
        "; after-call work per client (orikaeshi clients file: wrapup)\n"
        "[q-ksl](+)\nwrapuptime = 15\n[q-mdc](+)\nwrapuptime = 30\n"))
    check = (*CHECK, "--clients", str(clients), "--asterisk-etc", str(etc),
             "--sounds", str(tmp_path / "no-sounds"))

    def wrapup_lines() -> list[str]:
        done = orikaeshi(tmp_path, *check)
        assert done.returncode == 1  # the prompts are missing here, whatever else
        return [line for line in done.stdout.splitlines() if "wrapuptime" in line]

    # Not written yet: the sample's #tryinclude finds nothing.
    lines = wrapup_lines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{etc / 'queues.conf'}:")
    assert ("[q-ksl] has no wrapuptime but the clients file gives KSL wrapup 15s: queues.conf "
            "lacks `#include orikaeshi-wrapup.conf` at its end (write it with `orikaeshi "
            f"dialplan wrapup --out {etc / 'orikaeshi-wrapup.conf'}`)") in lines[0]
    assert "[q-mdc] has no wrapuptime but the clients file gives MDC wrapup 30s" in lines[1]
    out = etc / "orikaeshi-wrapup.conf"
    wrote = orikaeshi(tmp_path, *base, "wrapup", "--clients", str(clients), "--out", str(out))
    assert (wrote.returncode, wrote.stderr.strip()) == (0, f"wrote {out}")
    assert wrapup_lines() == []
    # The clients file changes (KSL 20 s, MDC none) but the file is not written again.
    changed = tmp_path / "changed.yaml"
    changed.write_text(clients.read_text().replace("wrapup: 15s", "wrapup: 20s")
                       .replace("    wrapup: 30s\n", ""))
    check = (*CHECK, "--clients", str(changed), "--asterisk-etc", str(etc),
             "--sounds", str(tmp_path / "no-sounds"))
    assert wrapup_lines() == [
        f"{out}:3: [q-ksl] wrapuptime = 15 but the clients file gives KSL wrapup 20s: run "
        f"`orikaeshi dialplan wrapup --out {out}` (and keep `#include orikaeshi-wrapup.conf` "
        "last in queues.conf)",
        f"{out}:5: [q-mdc] wrapuptime = 30, but no client of q-mdc (MDC) sets a wrapup any "
        f"more: run `orikaeshi dialplan wrapup --out {out}`"]
    # An unwritable --out is a clear refusal, not a traceback.
    refused = orikaeshi(tmp_path, *base, "wrapup", "--clients", str(clients), "--out",
                        str(tmp_path / "missing" / "dir" / "w.conf"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith(f"orikaeshi: cannot write {tmp_path / 'missing'}")


def test_check_names_each_missing_queue_route_and_prompt(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    for name in SEGMENTS:  # the shipped segments, but no per-client prompt
        (sounds / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "dialplan" / "sounds" / f"{name}.wav", sounds / f"{name}.wav")
    # The outbound guard's refusal: the operator would hear nothing before the hang-up.
    (sounds / "orikaeshi" / "outbound-refused-hours.wav").unlink()
    queues = (REPO / "dialplan" / "queues.conf.sample").read_text().replace("[q-mdc]",
                                                                            "[q-mdc-old]")
    etc = etc_with(tmp_path, queues)
    fallback = etc / "orikaeshi-fallback.conf"
    fallback.write_text(fallback.read_text().replace("exten => 0120987654,", "; "))
    bad = orikaeshi(tmp_path, *CHECK, "--clients", str(SAMPLE),
                    "--asterisk-etc", str(etc), "--sounds", str(sounds))
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert "queue q-mdc (client MDC) is not in queues.conf" in lines
    assert any(line.startswith("DID 0120987654 (WSH) has no fallback route") for line in lines)
    assert any(line.startswith("prompt custom/whisper-ksl has no audio file") for line in lines)
    assert not any("orikaeshi/repeat-caller" in line for line in lines)
    assert any(line.startswith("prompt orikaeshi/outbound-refused-hours has no audio file")
               for line in lines), lines
    # No core sound is asked for: the repeat whisper is a Japanese prompt per count.
    assert not any("digits/" in line for line in lines), lines


def test_prompts_list_tells_what_to_record(tmp_path: Path) -> None:
    listed = orikaeshi(tmp_path, "prompts", "--clients", str(SAMPLE), "--list",
                       "--out", "/var/lib/asterisk/sounds")
    assert listed.returncode == 0
    rows = dict(line.split("\t", 1) for line in listed.stdout.splitlines())
    assert rows["/var/lib/asterisk/sounds/custom/greeting-ksl.wav"] == \
        "お電話ありがとうございます。霞法律事務所でございます。"
    assert rows["/var/lib/asterisk/sounds/orikaeshi/repeat-3.wav"] == \
        "リピーターのお客様、3回目のお電話です。"


def test_explain_names_the_holiday(tmp_path: Path, db_url: str) -> None:
    # 2026-11-23 is Labour Thanksgiving Day, a Monday: KSL (mon-fri) is closed.
    done = orikaeshi(tmp_path, "route", "explain", "--did", "03-1234-5678", "--caller",
                     "09011112222", "--at", "2026-11-23T10:00", "--clients", str(SAMPLE),
                     db_url=db_url)
    assert done.returncode == 0, done.stderr
    assert "  - closed: national holiday (Labor Thanksgiving Day)" in done.stdout
    assert "  ROUTE_ACTION = closed" in done.stdout
    assert "  VM_BOX = 1001@lab" in done.stdout


async def test_explain_shows_the_repeat_count_and_rule(tmp_path: Path, db_url: str,
                                                       pool) -> None:
    at = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # Tuesday 10:00 in Tokyo
    async with pool.acquire() as conn:
        for n, hours in enumerate((30, 5)):
            await conn.execute(
                "INSERT INTO calls (pbx_id, linkedid, direction, client, caller_e164, "
                "uniqueids, started_at) VALUES ('p', $1, 'inbound', 'KSL', $2, $3, $4)",
                f"l{n}", "+819011112222", [f"l{n}"], at - timedelta(hours=hours))
    done = orikaeshi(tmp_path, "route", "explain", "--did", "0312345678", "--caller",
                     "090-1111-2222", "--at", at.isoformat(), "--clients", str(SAMPLE),
                     "--json", db_url=db_url)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    decision, variables = out["decision"], dict(out["variables"])
    assert decision["escalated"] is True and decision["repeat_count"] == 3, done.stdout
    assert variables["ROUTE_QUEUE"] == "q-sup" and variables["QUEUE_PRIO"] == "10"
    assert ("repeat rule: escalate at 2 earlier calls within 72h since the last call back; "
            "found 2 since the last 72h") in decision["reasons"]
    assert decision["reasons"][-1] == ("escalated: repeat caller, call number 3, to q-sup at "
                                       "priority 10; no supervisor in 30s: back to q-ksl, first")


def test_explain_without_a_database_says_the_repeat_check_is_unavailable(
        tmp_path: Path) -> None:
    done = orikaeshi(tmp_path, "route", "explain", "--did", "0312345678", "--caller",
                     "09011112222", "--at", "2026-11-24T10:00", "--clients", str(SAMPLE),
                     db_url="postgresql://nobody@127.0.0.1:9/none")
    assert done.returncode == 0, done.stderr
    assert "no repeat check, database unreachable" in done.stderr
    assert "repeat check unavailable (database slow or away): routed normally" in done.stdout
    assert "  ROUTE_FLAGS = repeat_check_unavailable" in done.stdout


def test_wrapup_check_reads_the_value_asterisk_will_use(tmp_path: Path) -> None:
    """A queue takes wrapuptime from its own section (and `(+)` additions) or from the
    templates its header names, the later one winning; the check compares that value."""
    from service.callflows.presence import render_wrapup
    from service.clients.schema import parse_clients
    from service.dialplan.asterisk_conf import read_conf
    from service.dialplan.check import check_wrapup

    directory = parse_clients(clients_with_wrapup(tmp_path).read_text(), "c.yaml")
    queues = tmp_path / "queues.conf"
    queues.write_text("[base](!)\nwrapuptime = 15\n[slow](!)\nwrapuptime = 30\n"
                      "[q-ksl](base)\n[q-mdc](base,slow)\n[q-wsh](base)\n[q-sup]\n")
    conf = read_conf(queues)
    assert conf is not None
    # KSL 15 s from the template; MDC 30 s from the later template; WSH has no wrapup and
    # the admin's own template value is left alone.
    assert check_wrapup(directory, conf) == []
    queues.write_text("[base](!)\nwrapuptime = 15\n[q-ksl](base)\n[q-mdc](base)\n"
                      "[q-wsh](base)\n[q-sup]\n#include orikaeshi-wrapup.conf\n")
    (tmp_path / "orikaeshi-wrapup.conf").write_text(render_wrapup(directory))
    conf = read_conf(queues)
    assert conf is not None and check_wrapup(directory, conf) == []
    queues.write_text(queues.read_text().replace("#include orikaeshi-wrapup.conf\n", ""))
    conf = read_conf(queues)
    assert conf is not None
    problems = check_wrapup(directory, conf)
    assert len(problems) == 1 and problems[0].startswith(
        f"{queues}:2: [q-mdc] wrapuptime = 15 but the clients file gives MDC wrapup 30s")
