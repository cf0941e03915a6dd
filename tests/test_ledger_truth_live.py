"""A caller who hangs up during the member's whisper, on a real Asterisk: a missed call.

The member's whisper is Queue()'s gosub (as dialplan/orikaeshi.conf's repeat-caller whisper),
run on the member's channel while the caller waits in silence.  The caller hangs up in the
middle of it; app_queue then still logs ``CONNECT`` (AMI ``AgentConnect``) and at once
``COMPLETECALLER`` with talk 0.  The ledger must record the abandon, and the call back worker
must open the caller's obligation.

Run when ``ASTERISK_BIN`` (or ``asterisk`` on PATH) gives a binary; skipped otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from service.ami.adapter import AmiClient
from service.ami.parser import AmiMessage
from service.callbacks.worker import CallbackWorker
from service.clients.schema import parse_clients
from service.dialplan.render import render_fallback
from service.ledger.pipeline import build_pipeline
from service.reconcile.command import reconcile_command
from service.store.callbacks_sql import obligations
from tests.live_asterisk import (
    LIVE_VOICEMAIL,
    REPO,
    LiveAsterisk,
    asterisk_binary,
    extensions_head,
    free_port,
    ledger_and_control,
    silent_prompt,
)
from tests.replaying import config_for
from tests.waiting import eventually, running

pytestmark = [pytest.mark.asterisk,
              pytest.mark.skipif(asterisk_binary() is None, reason="no Asterisk binary")]

QUEUES = """[general]
[q-ksl]
strategy = linear
timeout = 20
retry = 1
ringinuse = no
"""


CDR_FILES = {
    "cdr.conf": "[general]\nenable = yes\n[csv]\nusegmtime = yes\nloguniqueid = yes\n"
                "loguserfield = yes\naccountlogs = no\n",
    "cdr_manager.conf": "[general]\nenabled = yes\n",
}


def _major(binary: str) -> int:
    done = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=20,
                          check=False)
    words = done.stdout.split()
    version = words[1] if len(words) > 1 else "0"
    head = version.split(".")[0]
    return int(head) if head.isdigit() else 0


def extensions(major: int) -> str:
    # Queue()'s gosub is its 7th argument from Asterisk 21 on, the 8th on 18 and 20.
    gosub = ",,test-whisper" if major >= 21 else ",,,test-whisper"
    return extensions_head(None) + f"""[from-pstn]
exten => 0312345678,1,Set(CHANNEL(accountcode)=KSL)
 same => n,Set(ROUTE_CLIENT=KSL)
 same => n,Answer()
 same => n,Queue(q-ksl,t,,,20{gosub})
 same => n,Hangup()

; The member's whisper: 12 s, as long as a spoken repeat-caller whisper.
[test-whisper]
exten => s,1,Wait(12)
 same => n,Return()

[test-operators]
exten => 201,1,Wait(1)
 same => n,Answer()
 same => n,Wait(30)
 same => n,Hangup()
"""


async def test_caller_gone_during_the_whisper_is_missed_on_a_real_asterisk(pool, tmp_path: Path
                                                                            ) -> None:
    binary = asterisk_binary()
    assert binary is not None
    pbx = LiveAsterisk(tmp_path / "asterisk", extensions(_major(binary)), queues=QUEUES,
                       extra_files=CDR_FILES)
    pbx.start()
    events: list[AmiMessage] = []
    banner = "unknown"
    try:
        async with ledger_and_control(pbx, pool, config_for(tmp_path), {"q-ksl": "201"},
                                      events) as control:
            # The caller stays 7 s after the PBX answers: 201 picks up after ~1 s and the
            # whisper lasts 12 s, so the caller is gone in the middle of it.
            answer = await control.send_action({
                "Action": "Originate", "Channel": "Local/0312345678@from-pstn/n",
                "CallerID": '"Tanaka" <09011112222>', "Application": "Wait", "Data": "7",
                "Async": "true", "Timeout": "10000"})
            first = answer[0] if isinstance(answer, list) else answer
            assert first.response == "Success", answer
            banner = getattr(control.protocol, "version", None) or "unknown"

            async def ended() -> dict[str, object] | None:
                async with pool.acquire() as conn:
                    row = await conn.fetchrow(
                        "SELECT outcome, answered_by, answered_at, talk_s, wait_s, caller_e164 "
                        "FROM calls WHERE pbx_id = 'live' AND direction = 'inbound' "
                        "AND outcome IS NOT NULL")
                return None if row is None else dict(row)

            result: list[dict[str, object]] = []

            async def done() -> bool:
                row = await ended()
                if row is not None:
                    result.append(row)
                return row is not None

            for _ in range(400):
                if await done():
                    break
                await asyncio.sleep(0.1)
            assert result, "the call never ended in the ledger"
    finally:
        pbx.stop()
        # What this PBX sent, in the ami.jsonl form (tests/fixtures/whisper_hangup_* are
        # such files, from runs of this test).
        stamps = [float(e["Timestamp"]) for e in events if e.get("Timestamp")]
        zero = (stamps[0] - 1.0) if stamps else 0.0
        (tmp_path / "ami.jsonl").write_text(
            json.dumps({"t": 0.0, "conn": 1, "banner": f"Asterisk Call Manager/{banner}"}) + "\n"
            + "".join(json.dumps({"t": round(float(e.get("Timestamp") or zero) - zero, 6),
                                  "conn": 1, "headers": [[k, val] for k, val in e.items()]},
                                 ensure_ascii=False) + "\n" for e in events))
    row = result[-1]
    names = [e.get("Event") for e in events]
    # What Asterisk did: the member answered, the caller went during the whisper.
    assert "AgentCalled" in names
    assert (row["outcome"], row["answered_by"], row["answered_at"], row["talk_s"]) == \
        ("abandoned", None, None, None), (row, names)
    assert row["wait_s"] is not None and 5.0 <= row["wait_s"] < 12.0
    await CallbackWorker(pool).run_once()
    async with pool.acquire() as conn:
        owed = await obligations(conn)
    assert [(o["caller_e164"], o["state"]) for o in owed] == [("+819011112222", "open")]


FALLBACK_CLIENTS = """defaults: {queue_timeout: 20s}
unknown_did: {queue: q-ksl, whisper: orikaeshi/whisper-unknown, voicemail: 1009@lab}
clients:
  KSL:
    name: Kasumi Law Office
    dids: [0312345678]
    hours: {daily: 00:00-24:00}
    national_holidays: none
    queue: q-ksl
    whisper: custom/whisper-ksl
    voicemail: 1001@lab
"""


def fallback_extensions(dead_agi_port: int) -> str:
    # orikaeshi.conf as LiveAsterisk writes it for the binary's release.
    return extensions_head(dead_agi_port, outside="test-operators",
                           globals_extra="ORIKAESHI_SUPERVISORS = q-sup") + """[test-operators]
exten => 201,1,Wait(1)
 same => n,Answer()
 same => n,Wait(30)
 same => n,Hangup()
"""


async def test_fallback_call_made_while_the_service_is_down_is_flagged_after_it_starts(
        pool, db_url: str, tmp_path: Path, capsys) -> None:
    """The route AGI is unreachable and the service is not running: the dialplan's fallback
    queues the call (ROUTE_SOURCE=fallback, CDR(userfield)=orikaeshi-fallback).  The service
    starts while the caller talks to 201: it learns the call from CoreShowChannels and
    flags it by ``Getvar`` before the call ends; the Cdr event and Master.csv carry the
    trace too, and reconcile flags the call it adds from them."""
    directory = parse_clients(FALLBACK_CLIENTS, "live.yaml")
    queues = (REPO / "dialplan" / "queues.conf.sample").read_text()
    pbx = LiveAsterisk(tmp_path / "asterisk", fallback_extensions(free_port()), queues=queues,
                       voicemail=LIVE_VOICEMAIL,
                       extra_files={"orikaeshi-fallback.conf": render_fallback(directory),
                                    **CDR_FILES})
    silent_prompt(pbx.sounds / "custom" / "whisper-ksl.wav")
    (tmp_path / "asterisk" / "log" / "cdr-csv").mkdir()  # cdr_csv does not create it
    pbx.start()
    seen: list[AmiMessage] = []
    booted = asyncio.Event()

    def watch(batch: list[AmiMessage]) -> None:
        seen.extend(batch)
        if any(e.get("Event") == "FullyBooted" for e in batch):
            booted.set()

    control = AmiClient("control", "127.0.0.1", pbx.ami_port, "test", "test", watch)
    config = config_for(tmp_path)
    flagged_live: list[object] = []
    try:
        async with running(control.run()):
            async with asyncio.timeout(30):
                await control.logged_in.wait()
                await booted.wait()
            await control.send_action({"Action": "QueueAdd", "Queue": "q-ksl",
                                       "MemberName": "op201",
                                       "Interface": "Local/201@test-operators/n"})
            answer = await control.send_action({
                "Action": "Originate", "Channel": "Local/0312345678@orikaeshi-inbound/n",
                "CallerID": '"Tanaka" <09011112222>', "Application": "Wait", "Data": "12",
                "Async": "true", "Timeout": "10000"})
            first = answer[0] if isinstance(answer, list) else answer
            assert first.response == "Success", answer
            await eventually(lambda: any(e.get("Event") == "AgentConnect" for e in seen),
                             timeout=30, what="201 answering the fallback-routed call")
            # Only now does the service start: the call's VarSets are long gone.
            pipeline = build_pipeline(config, pbx.pbx_config, pool)
            async with running(pipeline.run()):
                async def flagged() -> dict[str, object] | None:
                    async with pool.acquire() as conn:
                        row = await conn.fetchrow(
                            "SELECT fallback_routed, ended_at, outcome FROM calls "
                            "WHERE pbx_id = 'live' AND direction = 'inbound'")
                    return None if row is None else dict(row)

                for _ in range(300):
                    row = await flagged()
                    if row is not None and row["fallback_routed"]:
                        flagged_live.append(row)
                        break
                    await asyncio.sleep(0.1)
                for _ in range(400):
                    row = await flagged()
                    if row is not None and row["outcome"] is not None:
                        break
                    await asyncio.sleep(0.1)
                final = row
    finally:
        pbx.stop()
    assert flagged_live and flagged_live[0]["ended_at"] is None, flagged_live
    assert final is not None and final["fallback_routed"] is True
    assert final["outcome"] == "answered"
    cdr = [e for e in seen if e.get("Event") == "Cdr" and e.get("LastApplication") == "Queue"]
    assert cdr and cdr[0].get("UserField") == "orikaeshi-fallback", cdr

    # Asterisk's own Master.csv and queue_log: reconcile on an empty ledger adds the call,
    # answered and flagged.
    master = tmp_path / "asterisk" / "log" / "cdr-csv" / "Master.csv"
    assert "orikaeshi-fallback" in master.read_text()
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM calls")
    live_config = dataclasses.replace(
        config, database_url=db_url,
        pbxs=(dataclasses.replace(pbx.pbx_config, clock_tz="UTC"),))
    args = argparse.Namespace(pbx=None, cdr=master,
                              queue_log=tmp_path / "asterisk" / "log" / "queue_log",
                              since=None, until=None, dry_run=False, json=True)
    await reconcile_command(live_config, args)
    out = json.loads(capsys.readouterr().out)
    assert [(a["fallback_routed"], a["outcome"], a["answered_by"]) for a in out["additions"]] \
        == [(True, "answered", "201")]
