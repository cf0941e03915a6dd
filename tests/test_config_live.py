"""The configuration checks and the release-specific include on a real Asterisk (20 LTS and
21+ alike; run against each binary of /tmp/ASTERISK_READY with ``ASTERISK_BIN``).

* The PBX says its release over AMI (CoreSettings); the include written for it passes
  ``dialplan check`` and the shipped 21+ include is refused on 20.  An escalated repeat
  caller's member Gosub runs on the answering supervisor's channel, the short whisper ("repeat
  caller, call number three") is the queue's announcement, and the caller's hold music plays
  from the queue until after the member answered and heard it.
* A service configured with the wrong inbound context (issue 8's sample) is refused by
  ``dialplan check``, and when a call arrives /healthz raises the unrouted-calls alert.

Skipped without an Asterisk binary.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agi.context import AgiContext
from agi.route import route
from agi.server import AgiServer
from service.ami.adapter import AmiClient
from service.ami.parser import AmiMessage
from service.app import PIPELINES, create_app, database_ctx, ledger_ctx
from service.callbacks.repeat_sql import SqlRepeatLookup
from service.clients.schema import parse_clients
from service.config import PbxConfig
from service.dialplan.commands import probe_pbx
from service.dialplan.pbx_check import check_pbx, check_release_of_include
from service.dialplan.render import asterisk_major, render_fallback
from service.routing.cache import RoutingCache
from tests.live_asterisk import (
    LIVE_VOICEMAIL,
    REPO,
    LiveAsterisk,
    asterisk_binary,
    dump,
    free_port,
    ledger_and_control,
    live_clients,
    orikaeshi_extensions,
    silent_prompt,
)
from tests.replaying import config_for
from tests.waiting import eventually, running

pytestmark = [pytest.mark.asterisk,
              pytest.mark.skipif(asterisk_binary() is None, reason="no Asterisk binary")]

CLIENTS = live_clients("KSL", queue_timeout="25s")


def live_pbx(tmp_path: Path, agi_port: int, extra: str = "") -> LiveAsterisk:
    directory = parse_clients(CLIENTS, "live.yaml")
    pbx = LiveAsterisk(tmp_path / "asterisk",
                       orikaeshi_extensions(agi_port, talk_s=4, outside="test-operators")
                       + extra,
                       queues=(REPO / "dialplan" / "queues.conf.sample").read_text(),
                       voicemail=LIVE_VOICEMAIL,
                       extra_files={"orikaeshi-fallback.conf": render_fallback(directory),
                                    "cdr.conf": (REPO / "dialplan" /
                                                 "cdr.conf.sample").read_text()})
    for prompt in ("custom/whisper-ksl", "orikaeshi/repeat-3"):
        silent_prompt(pbx.sounds / f"{prompt}.wav")
    silent_prompt(pbx.root / "data" / "moh" / "hold.wav")  # the default class's music
    (pbx.root / "log" / "cdr-csv").mkdir(parents=True, exist_ok=True)  # cdr.conf.sample's
    return pbx


@contextlib.asynccontextmanager
async def serving(pbx: LiveAsterisk, agi: AgiServer, agi_port: int,
                  events: list[AmiMessage]) -> AsyncIterator[None]:
    """The PBX and the route AGI for the block; then both stopped and the events kept."""
    pbx.start()
    await agi.start("127.0.0.1", agi_port)
    try:
        yield
    finally:
        await agi.close()
        pbx.stop()
        dump(pbx.root.parent / "ami-events.jsonl", events)


async def test_release_include_repeat_whisper_and_hold_music(pool, tmp_path: Path) -> None:
    agi_port = free_port()
    pbx = live_pbx(tmp_path, agi_port)
    repeat_caller = "09055556666"
    first_missed = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    async with pool.acquire() as conn:
        for i, ago in enumerate((timedelta(0), timedelta(hours=2))):
            await conn.execute(
                "INSERT INTO calls (pbx_id, linkedid, direction, client, caller_number, "
                "caller_e164, started_at, ended_at, outcome) VALUES ('live', $1, 'inbound', "
                "'KSL', $2, '+819055556666', $3::timestamptz, "
                "$3::timestamptz + interval '30 seconds', 'abandoned')",
                f"earlier{i}", repeat_caller, first_missed + ago)
    cache = RoutingCache()
    cache.directory = parse_clients(CLIENTS, "live.yaml")
    agi = AgiServer(state=AgiContext(cache, SqlRepeatLookup(pool), repeat_timeout_s=2))
    agi.add_route("route", route)
    events: list[AmiMessage] = []
    async with serving(pbx, agi, agi_port, events), \
            ledger_and_control(pbx, pool, config_for(tmp_path), {"q-sup": "301"},
                               events) as control:
        # What `orikaeshi dialplan check` learns over AMI, and what it says of the
        # include written for this release and of the shipped (21+) one.
        facts, error = await probe_pbx(pbx.pbx_config, 10)
        assert error is None and facts.asterisk_version, error
        major = asterisk_major(facts.asterisk_version)
        assert major == asterisk_major(pbx.version), (facts.asterisk_version, pbx.version)
        installed = pbx.etc / "orikaeshi.conf"
        assert check_release_of_include(installed.read_text(), installed, facts,
                                        None) == []
        shipped = REPO / "dialplan" / "orikaeshi.conf"
        refused = check_release_of_include(shipped.read_text(), shipped, facts, None)
        if major is not None and major <= 20:
            assert len(refused) == 2 and "is argument 7 but Asterisk" in refused[0], \
                refused
        else:
            assert refused == [], refused

        answer = await control.send_action({
            "Action": "Originate", "Channel": "Local/0312345678@orikaeshi-inbound/n",
            "Application": "Wait", "Data": "20", "Async": "true", "Timeout": "10000",
            "CallerID": f'"Repeat" <{repeat_caller}>'})
        first = answer[0] if isinstance(answer, list) else answer
        assert first.response == "Success", answer

        def connected() -> bool:
            return any(e.get("Event") == "BridgeEnter" and
                       e.get("CallerIDNum") == repeat_caller for e in events)
        await eventually(connected, 40, 0.1, "the repeat caller bridged with 301")
        rows: list[Any] = []

        async def ended() -> bool:
            nonlocal rows
            async with pool.acquire() as conn:
                rows = await conn.fetch("SELECT * FROM calls WHERE pbx_id = 'live' AND "
                                        "linkedid NOT LIKE 'earlier%' AND ended_at IS NOT "
                                        "NULL")
            return bool(rows)
        for _ in range(300):
            if await ended():
                break
            await asyncio.sleep(0.1)

    join = next(e for e in events if e.get("Event") == "QueueCallerJoin"
                and e.get("CallerIDNum") == repeat_caller)
    caller = join["Channel"]
    assert join["Queue"] == "q-sup"
    queued = [e.get("AppData", "") for e in events if e.get("Event") == "Newexten"
              and e.get("Application") == "Queue" and e.get("Channel") == caller]
    assert queued == ["q-sup,t,,custom/whisper-ksl&orikaeshi/repeat-3,25,," +
                      (",orikaeshi-member-whisper" if (major or 99) <= 20
                       else "orikaeshi-member-whisper")], queued
    connect = next(e for e in events if e.get("Event") == "AgentConnect"
                   and e.get("Channel") == caller)
    member = connect["DestChannel"]
    # The member Gosub ran on the supervisor's channel (item 9: on 20 as on 21+).
    gosub = [(i, e.get("Application"), e.get("AppData")) for i, e in enumerate(events)
             if e.get("Event") == "Newexten" and e.get("Channel") == member
             and e.get("Context") == "orikaeshi-member-whisper"]
    assert [(app, data) for _, app, data in gosub] == \
        [("Set", "DYNAMIC_FEATURES=orikaeshi_escalate#orikaeshi_handraise"), ("Return", "")], \
        gosub

    # Hold music: on before the member answered, off only after the member was up and had
    # heard the announcement (the whisper); the Gosub runs after it, the bridge follows.
    def index(predicate: Any) -> int:
        return next(i for i, e in enumerate(events) if predicate(e))
    moh_on = index(lambda e: e.get("Event") == "MusicOnHoldStart" and e.get("Channel") == caller)
    member_up = index(lambda e: e.get("Event") == "Newstate" and e.get("Channel") == member
                      and e.get("ChannelStateDesc") == "Up")
    moh_off = index(lambda e: e.get("Event") == "MusicOnHoldStop" and e.get("Channel") == caller)
    bridged = index(lambda e: e.get("Event") == "BridgeEnter" and e.get("Channel") == caller)
    assert moh_on < member_up < moh_off < gosub[0][0] < bridged, \
        (moh_on, member_up, moh_off, gosub[0][0], bridged)

    [row] = rows
    assert (row["outcome"], row["answered_by"], row["escalated"], row["escalation_reason"]) == \
        ("answered", "301", True, "repeat_caller")


async def test_wrong_inbound_context_is_refused_and_raises_the_alert(
        db_url: str, pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    agi_port = free_port()
    pbx = live_pbx(tmp_path, agi_port)
    right = dataclasses.replace(pbx.pbx_config, inbound_contexts=("orikaeshi-inbound",),
                                outbound_contexts=("orikaeshi-outbound",),
                                cdr_csv_dir=str(pbx.root / "log" / "cdr-csv"))
    wrong = dataclasses.replace(right, inbound_contexts=("from-pstn",))  # issue 8's sample
    cache = RoutingCache()
    cache.directory = parse_clients(CLIENTS, "live.yaml")
    agi = AgiServer(state=AgiContext(cache))
    agi.add_route("route", route)
    events: list[AmiMessage] = []
    booted = asyncio.Event()

    def watch(batch: list[AmiMessage]) -> None:
        events.extend(batch)
        if any(e.get("Event") == "FullyBooted" for e in batch):
            booted.set()

    control = AmiClient("control", "127.0.0.1", pbx.ami_port, "test", "test", watch)
    async with serving(pbx, agi, agi_port, events), running(control.run()):
        async with asyncio.timeout(30):
            await booted.wait()
        await control.send_action({"Action": "QueueAdd", "Queue": "q-ksl",
                                   "MemberName": "op201",
                                   "Interface": "Local/201@test-operators/n"})
        facts, error = await probe_pbx(right, 10)
        assert error is None, error
        assert facts.members == ("Local/201@test-operators/n",)

        def checked(pbx_config: PbxConfig) -> list[str]:
            return check_pbx(pbx_config, pbx.etc, agi_port=agi_port,
                             config_name="orikaeshi.toml", facts=facts, pbx_tz="UTC")
        assert checked(right) == []
        refused = checked(wrong)
        assert len(refused) == 2, refused
        assert "inbound_contexts: context [from-pstn] is not in the dialplan" in refused[0]
        assert "none of which is [orikaeshi-inbound]" in refused[1]

        # The service run with that configuration anyway: the call reaches its queue,
        # the ledger cannot see its DID or decision, and /healthz says why.
        config = dataclasses.replace(config_for(tmp_path), database_url=db_url,
                                     ami_lock=False, pbxs=(wrong,))
        app = create_app(config, [database_ctx, ledger_ctx])
        async with TestClient(TestServer(app)) as client:
            await eventually(lambda: app[PIPELINES]["live"].client.logged_in.is_set(), 20,
                             0.05, "the service's AMI login")
            answer = await control.send_action({
                "Action": "Originate", "Channel": "Local/0312345678@orikaeshi-inbound/n",
                "Application": "Wait", "Data": "10", "Async": "true",
                "Timeout": "10000", "CallerID": '"Caller" <09011112222>'})
            first = answer[0] if isinstance(answer, list) else answer
            assert first.response == "Success", answer
            health: dict[str, Any] = {}
            code = 0
            for _ in range(300):
                response = await client.get("/healthz")
                health, code = await response.json(), response.status
                if any(a["kind"] == "unrouted_calls" for a in health["alerts"]):
                    break
                await asyncio.sleep(0.1)
    [alert] = [a for a in health["alerts"] if a["kind"] == "unrouted_calls"]
    assert alert["message"].startswith("PBX live: 1 inbound call(s) reached queue q-ksl "
                                       "without DID, routing decision, caller number "
                                       "(created in [orikaeshi-inbound])"), alert
    assert "inbound_contexts: from-pstn" in alert["message"]
    assert health["pbx"][0]["state"] == "up" and health["database"] is True
    assert code == 503 and health["ok"] is False  # up, and still not healthy
    # The route itself worked: the PBX got its decision; only the ledger was blind.
    assert agi.served >= 1


async def test_a_call_back_through_the_shipped_outbound_context(pool, tmp_path: Path) -> None:
    """Click-to-call as shipped: the operator's phone (phone_channel) is originated into
    [orikaeshi-outbound] (callback_context), whose outbound guard asks the real
    outbound_guard FastAGI route: it confirms the decision click-to-call made before the
    Originate (OUTBOUND_DECISION) instead of counting a second attempt; then the context
    Dials the callee and the ledger records an outbound call with the Dial's result, because
    that context is in outbound_contexts."""
    from service.callbacks.dialer import place_callback
    from service.clients.store import load_document
    from service.compliance.policy import callee_day
    from service.store.compliance_sql import contact_history
    from tests.outbound_live import fetch_when, start_guard_agi

    agi_port = free_port()
    pbx = live_pbx(tmp_path, agi_port)
    pbx.start()
    async with pool.acquire() as conn:
        await load_document(conn, CLIENTS, "live.yaml")
    shipped = dataclasses.replace(pbx.pbx_config, inbound_contexts=("orikaeshi-inbound",),
                                  outbound_contexts=("orikaeshi-outbound",),
                                  callback_context="orikaeshi-outbound",
                                  phone_channel="Local/{ext}@test-operators/n")
    directory = parse_clients(CLIENTS, "live.yaml")
    now = datetime(2026, 6, 10, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
    agi = await start_guard_agi(pool, directory, agi_port, lambda: now, (shipped,))
    config = config_for(tmp_path)
    events: list[AmiMessage] = []
    try:
        async with ledger_and_control(pbx, pool, config, {}, events,
                                      pbx_config=shipped) as control:
            async with pool.acquire() as conn:
                placed = await place_callback(
                    control, conn, shipped, client="KSL", number="090-5555-6666",
                    operator="201", requested_by="sup301", now=now)
            assert placed.placed, placed
            rows = await fetch_when(pool, "SELECT * FROM calls WHERE direction = 'outbound' "
                                          "AND ended_at IS NOT NULL")
    finally:
        await agi.close()
        pbx.stop()
        dump(tmp_path / "ami-events.jsonl", events)
    [row] = rows
    assert (row["callee_number"], row["placed_by"], row["dial_result"], row["client"]) == \
        ("09055556666", "201", "answered", "KSL"), dict(row)
    outbound = [(e.get("Context"), e.get("Application"), e.get("AppData")) for e in events
                if e.get("Event") == "Newexten"
                and e.get("Context") in ("orikaeshi-outbound", "orikaeshi-outbound-guard")]
    guard = [app for _, app, _ in outbound].index("Gosub")
    agi_call = next(data for context, app, data in outbound if app == "AGI")
    dial = [i for i, (_, app, _) in enumerate(outbound) if app == "Dial"]
    async with pool.acquire() as conn:
        decisions = await conn.fetch("SELECT * FROM outbound_decisions")
        history = await contact_history(conn, "KSL", "+819055556666",
                                        callee_day("+819055556666", now,
                                                   directory.clients["KSL"].outbound,
                                                   "Asia/Tokyo"))
    # One decision, made by click-to-call and confirmed by the guard: counted once.
    assert [(d["path"], d["allowed"], d["result"], d["callee_e164"]) for d in decisions] == \
        [("click_to_call", True, "dialled", "+819055556666")]
    assert history.attempts_today == 1
    # The guard ran through the real route with that decision (OUTBOUND_DECISION, set by the
    # Originate), before the Dial.
    assert agi_call == (f"agi://127.0.0.1:{agi_port}/outbound_guard,09055556666,KSL,"
                        f"{decisions[0]['id']}"), outbound
    assert dial and guard < dial[0], outbound
    assert outbound[dial[0]][2] == "Local/09055556666@test-operators/n,45"


WHISPER_PROBE = """
; [orikaeshi-repeat-whisper] for the call number in ${EXTEN}
[test-whisper]
exten => _X!,1,Set(WHISPER=custom/whisper-ksl)
 same => n,Set(__REPEAT_COUNT=${EXTEN})
 same => n,Gosub(orikaeshi-repeat-whisper,s,1)
 same => n,NoOp(said ${WHISPER})
 same => n,Hangup()
"""


async def test_the_repeat_whisper_says_each_number_with_core_sounds(tmp_path: Path) -> None:
    """Asterisk's own expression engine builds the announcement: 1..20 and round tens as one
    file, 23 as twenty and three, and past 99 only "repeat caller"."""
    pbx = live_pbx(tmp_path, free_port(), WHISPER_PROBE)
    events: list[AmiMessage] = []
    booted = asyncio.Event()

    def watch(batch: list[AmiMessage]) -> None:
        events.extend(batch)
        if any(e.get("Event") == "FullyBooted" for e in batch):
            booted.set()

    pbx.start()
    control = AmiClient("control", "127.0.0.1", pbx.ami_port, "test", "test", watch)
    counts = ("3", "20", "23", "40", "99", "120")
    try:
        async with running(control.run()):
            async with asyncio.timeout(30):
                await booted.wait()
            for count in counts:
                await control.send_action({"Action": "Originate",
                                           "Channel": f"Local/{count}@test-whisper/n",
                                           "Application": "Wait", "Data": "1",
                                           "Async": "true"})

            def said() -> dict[str, str]:
                return {e["Exten"]: e["AppData"].removeprefix("said ") for e in events
                        if e.get("Event") == "Newexten" and e.get("Context") == "test-whisper"
                        and e.get("Application") == "NoOp"}
            await eventually(lambda: len(said()) == len(counts), 20, 0.05, "every number")
    finally:
        pbx.stop()
        dump(tmp_path / "ami-events.jsonl", events)
    # One Japanese prompt per count up to 20 (リピーターのお客様、3回目のお電話です。), then
    # "many" (docs/callflows.md).
    start = "custom/whisper-ksl&orikaeshi/repeat-"
    assert said() == {
        "3": f"{start}3", "20": f"{start}20", "23": f"{start}many", "40": f"{start}many",
        "99": f"{start}many", "120": f"{start}many",
    }
