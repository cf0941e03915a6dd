"""The outbound guard on a real Asterisk: dialplan/outbound-guard.conf Gosub'd from an
outbound context before Dial, the real outbound_guard FastAGI route, the real policy and a
real database.

* A handset dial at 22:30 in the callee's time is refused: the operator hears
  orikaeshi/outbound-refused-hours, nothing is dialled, the refusal is recorded (who, what,
  when, why).
* Inside the window it goes through (the callee's extension runs).
* With ``max_attempts_per_day: 2`` the third dial of the day is refused with the limit prompt.
* A number on the client's do-not-call list is refused on the handset, by click-to-call
  (the Originate is never sent) and as a scheduled call back.
* The service unreachable: the dial is refused (fail closed) with the "cannot check" prompt.
* The same on the shipped files, installed as an admin would (extensions.conf.sample and
  every include): a handset's outside dial through [orikaeshi-phones] and the shipped
  [orikaeshi-outbound] is refused at 22:30 and put through at 10:00, and the ledger has an
  outbound call only for the one that was dialled.

The guard's FastAGI route is served as ``orikaeshi serve`` wires it (tests/outbound_live.py).
Run when ``ASTERISK_BIN`` gives a binary; skipped otherwise.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.ami.adapter import AmiClient
from service.ami.parser import AmiMessage
from service.callbacks.dialer import place_callback
from service.clients.schema import parse_clients
from service.clients.store import load_document
from service.compliance.scheduler import ScheduledCallbacks, schedule
from tests.callflows_live import install_prompts
from tests.live_asterisk import (
    REPO,
    LiveAsterisk,
    asterisk_binary,
    booted_control,
    dump,
    free_port,
    ledger_and_control,
    live_clients,
    silent_prompt,
)
from tests.outbound_live import fetch_when, handset_dial, shipped_pbx, start_guard_agi
from tests.replaying import config_for
from tests.waiting import eventually

pytestmark = [pytest.mark.asterisk,
              pytest.mark.skipif(asterisk_binary() is None, reason="no Asterisk binary")]

CLIENTS = live_clients("KSL") + """    outbound:
      max_attempts_per_day: 2
      do_not_call:
        - {number: 03-1234-0000, reason: workplace}
"""
LATE = datetime(2026, 6, 10, 13, 30, tzinfo=UTC)     # 22:30 in Tokyo
DAYTIME = datetime(2026, 6, 10, 1, 0, tzinfo=UTC)    # 10:00 in Tokyo
PROMPTS = ("outbound-refused-hours", "outbound-refused-limit", "outbound-refused-dnc",
           "outbound-guard-unavailable")


def extensions(agi_port: int, dead_port: int) -> str:
    return f"""[general]
static = yes
writeprotect = yes

[globals]
ORIKAESHI_AGI = agi://127.0.0.1:{agi_port}

#include {REPO / "dialplan" / "outbound-guard.conf"}

; A minimal outbound context with the one line the shipped one gets at merge.
[test-outbound]
exten => _0X.,1,Gosub(orikaeshi-outbound-guard,s,1(${{EXTEN}}))
 same => n,Dial(Local/${{EXTEN}}@test-callee,10)
 same => n,Hangup()

; Operator 201's handset: its account code is the client it works for (as pjsip.conf's
; accountcode= would set it); it dials the number in DIALLED.
[test-handset]
exten => 201,1,Set(CHANNEL(accountcode)=KSL)
 same => n,Goto(test-outbound,${{DIALLED}},1)
; The same handset while the service is unreachable.
exten => 209,1,Set(CHANNEL(accountcode)=KSL)
 same => n,Set(GLOBAL(ORIKAESHI_AGI)=agi://127.0.0.1:{dead_port})
 same => n,Goto(test-outbound,${{DIALLED}},1)

; Operator 201's phone as click-to-call rings it (PbxConfig.phone_channel): it answers.
[test-phone]
exten => 201,1,Answer()
 same => n,Wait(15)
 same => n,Hangup()

[test-callee]
exten => _0X.,1,Answer()
 same => n,Wait(1)
 same => n,Hangup()
"""


async def test_handset_dials_under_the_guard(pool, tmp_path: Path) -> None:
    directory = parse_clients(CLIENTS, "live.yaml")
    async with pool.acquire() as conn:
        await load_document(conn, CLIENTS, "live.yaml")
    agi_port, dead_port = free_port(), free_port()
    pbx = LiveAsterisk(tmp_path / "asterisk", extensions(agi_port, dead_port),
                       queues="[general]\n")
    for prompt in PROMPTS:
        silent_prompt(pbx.sounds / "orikaeshi" / f"{prompt}.wav")
    pbx.start()
    now = {"at": LATE}
    agi = await start_guard_agi(pool, directory, agi_port, lambda: now["at"],
                                (pbx.pbx_config,))
    events: list[AmiMessage] = []

    async def dial(control: AmiClient, number: str, handset: str = "201") -> str:
        return await handset_dial(control, events, number, handset=handset)

    try:
        async with booted_control(pbx, events) as control:
            # Outside the window (22:30 in Tokyo): refused with the prompt, nothing dialled.
            assert await dial(control, "09011112222") == "orikaeshi/outbound-refused-hours"
            # Inside: through, twice; the third attempt of the day is over the limit.
            now["at"] = DAYTIME
            assert await dial(control, "09011112222") == "dialled"
            assert await dial(control, "09011112222") == "dialled"
            assert await dial(control, "09011112222") == "orikaeshi/outbound-refused-limit"
            # Another callee is not limited by the first one's attempts.
            assert await dial(control, "09033334444") == "dialled"
            # The do-not-call number (the debtor's workplace), on every path.
            assert await dial(control, "0312340000") == "orikaeshi/outbound-refused-dnc"
            async with pool.acquire() as conn:
                clicked = await place_callback(control, conn, pbx.pbx_config, client="KSL",
                                               number="0312340000", operator="201",
                                               requested_by="sup301", now=DAYTIME)
                scheduled = await schedule(conn, obligation_id=None, client="KSL",
                                           callee_e164="+81312340000", operator="201",
                                           requested_by="sup301", run_at=DAYTIME)
            scheduler = ScheduledCallbacks(pool, lambda: (pbx.pbx_config, control),
                                           clock=lambda: DAYTIME)
            assert await scheduler.run_once() == 1
            async with pool.acquire() as conn:
                row = await conn.fetchrow("SELECT state, last_reason FROM scheduled_callbacks "
                                          "WHERE id = $1", scheduled)
            assert not clicked.placed and "do-not-call" in clicked.reason
            assert row["state"] == "refused" and "workplace" in row["last_reason"]
            # Click-to-call into the guarded context: decided once before the Originate, the
            # guard confirms that decision (no second attempt), the callee is dialled.
            phone = dataclasses.replace(pbx.pbx_config, phone_channel="Local/{ext}@test-phone/n",
                                        callback_context="test-outbound")
            start = len(events)
            async with pool.acquire() as conn:
                placed = await place_callback(control, conn, phone, client="KSL",
                                              number="09077778888", operator="201",
                                              requested_by="sup301", now=DAYTIME)
            assert placed.placed, placed
            for _ in range(200):
                if any(e.get("Event") == "Newexten" and e.get("Context") == "test-callee"
                       and e.get("Exten") == "09077778888" for e in events[start:]):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the click-to-call never reached the callee")
            # The service unreachable: refused, fail closed.
            assert await dial(control, "09055556666", handset="209") == \
                "orikaeshi/outbound-guard-unavailable"
    finally:
        await agi.close()
        pbx.stop()
    originates = [e for e in events if e.get("Event") == "OriginateResponse"]
    assert all("0312340000" not in str(e.get("Exten", "")) for e in originates)
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM outbound_decisions ORDER BY id")
    seen = [(r["path"], r["callee_e164"], r["allowed"], r["rule"]) for r in rows]
    assert seen == [
        ("handset", "+819011112222", False, "calling_hours"),
        ("handset", "+819011112222", True, "allowed"),
        ("handset", "+819011112222", True, "allowed"),
        ("handset", "+819011112222", False, "max_attempts"),
        ("handset", "+819033334444", True, "allowed"),
        ("handset", "+81312340000", False, "do_not_call"),
        ("click_to_call", "+81312340000", False, "do_not_call"),
        ("scheduled", "+81312340000", False, "do_not_call"),
        ("click_to_call", "+819077778888", True, "allowed"),
    ]
    assert rows[-1]["result"] == "dialled"  # confirmed by the guard, counted once
    late = rows[0]
    assert (late["client"], late["operator"], late["decided_at"]) == ("KSL", "201", LATE)
    assert late["callee_local"] == "2026-06-10T22:30:00+09:00"
    assert "22:30 in Asia/Tokyo" in late["reason"]
    assert late["uniqueid"] and late["pbx_id"] == "live"
    assert "workplace" in rows[5]["reason"]


# What a real site's pjsip.conf and carrier give, as Local channels: operator 201's phone
# (an endpoint with context = orikaeshi-phones and accountcode = KSL: it carries the client's
# account code and dials DIALLED in the shipped [orikaeshi-phones]) and the far end of the
# trunk (ORIKAESHI_OUTSIDE_SUFFIX = @test-callee/n), which answers.
SITE = """[test-handset]
exten => 201,1,Set(CHANNEL(accountcode)=KSL)
 same => n,Goto(orikaeshi-phones,${DIALLED},1)

[test-callee]
exten => _0X.,1,Answer()
 same => n,Wait(1)
 same => n,Hangup()
"""


async def test_a_handset_dial_through_the_shipped_sample_dialplan(pool, tmp_path: Path) -> None:
    """extensions.conf.sample as the admin installs it: an operator dials an outside number
    from the phone ([orikaeshi-phones] _0X.), which goes to [orikaeshi-outbound] and its
    guard.  At 22:30 in the callee's time: refused with the shipped prompt, the channel hung
    up (cause 21), nothing dialled, the refusal recorded and no outbound call in the ledger.
    At 10:00: through to the callee, one allowed decision, one answered outbound call."""
    directory = parse_clients(CLIENTS, "live.yaml")
    async with pool.acquire() as conn:
        await load_document(conn, CLIENTS, "live.yaml")
    agi_port = free_port()
    pbx = shipped_pbx(tmp_path / "asterisk", directory, agi_port, SITE)
    install_prompts(pbx)  # the shipped Japanese prompts, dialplan/sounds/orikaeshi
    pbx.start()
    now = {"at": LATE}
    agi = await start_guard_agi(pool, directory, agi_port, lambda: now["at"],
                                (pbx.pbx_config,))
    events: list[AmiMessage] = []
    try:
        async with ledger_and_control(pbx, pool, config_for(tmp_path), {}, events) as control:
            assert await handset_dial(control, events, "09011112222") == \
                "orikaeshi/outbound-refused-hours"
            refused = next(e for e in events if e.get("Event") == "Newexten"
                           and e.get("Context") == "orikaeshi-outbound-guard"
                           and e.get("Application") == "Playback")
            # The whole prompt is heard, then the guard hangs up.
            await eventually(lambda: any(e.get("Event") == "Hangup" and
                                         e.get("Uniqueid") == refused["Uniqueid"]
                                         for e in events), 30, 0.1, "the refusal's hang-up")
            now["at"] = DAYTIME
            assert await handset_dial(control, events, "09033334444") == "dialled"
            [call] = await fetch_when(pool, "SELECT * FROM calls WHERE direction = 'outbound' "
                                            "AND ended_at IS NOT NULL")
    finally:
        await agi.close()
        pbx.stop()
        dump(tmp_path / "ami-events.jsonl", events)
    # Both went the shipped way: the phone's outside pattern, then the guarded context.
    phones = [e["Exten"] for e in events if e.get("Event") == "Newexten"
              and e.get("Context") == "orikaeshi-phones" and e.get("Application") == "Goto"]
    assert phones == ["09011112222", "09033334444"], phones
    dials = [e["AppData"] for e in events if e.get("Event") == "Newexten"
             and e.get("Context") == "orikaeshi-outbound" and e.get("Application") == "Dial"]
    assert dials == ["Local/09033334444@test-callee/n,45"], dials
    hangup = next(e for e in events if e.get("Event") == "Hangup"
                  and e.get("Uniqueid") == refused["Uniqueid"])
    assert hangup["Cause"] == "21", hangup
    # The shipped prompt was there to play (Asterisk's log says when a file is missing).
    assert "outbound-refused-hours" not in (pbx.root / "log" / "messages.log").read_text()
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM outbound_decisions ORDER BY id")
    assert [(r["path"], r["callee_e164"], r["allowed"], r["rule"], r["client"], r["operator"])
            for r in rows] == [
        ("handset", "+819011112222", False, "calling_hours", "KSL", "201"),
        ("handset", "+819033334444", True, "allowed", "KSL", "201")]
    assert rows[0]["uniqueid"] == refused["Uniqueid"]  # ties the refusal to the channel
    assert rows[0]["callee_local"] == "2026-06-10T22:30:00+09:00"
    # The ledger: the refused dial placed no call; the allowed one is an answered call out.
    assert (call["callee_number"], call["placed_by"], call["client"], call["dial_result"]) == \
        ("09033334444", "201", "KSL", "answered"), dict(call)
