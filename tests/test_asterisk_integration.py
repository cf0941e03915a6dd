"""A real Asterisk running dialplan/ with the real route AGI and the real ledger.

Run when ``ASTERISK_BIN`` (or ``asterisk`` on PATH) gives a binary; skipped otherwise.  Calls
are Local channels into [orikaeshi-inbound]; operators are simulated members that answer.
Checked: each call reaches its client's queue with the client's whisper, the ledger records
it, and with the service's AGI stopped every call is still queued by the static fallback.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agi.context import AgiContext
from agi.route import route
from agi.server import AgiServer
from service.ami.adapter import AmiClient
from service.ami.parser import AmiMessage
from service.clients.schema import parse_clients
from service.dialplan.check import check_directory, check_variables
from service.dialplan.render import render_fallback
from service.routing.cache import RoutingCache
from tests.live_asterisk import (
    LIVE_VOICEMAIL,
    REPO,
    LiveAsterisk,
    asterisk_binary,
    free_port,
    ledger_and_control,
    live_clients,
    orikaeshi_extensions,
)
from tests.replaying import config_for
from tests.waiting import running

pytestmark = [pytest.mark.asterisk,
              pytest.mark.skipif(asterisk_binary() is None, reason="no Asterisk binary")]

CLIENTS = live_clients("KSL", "MDC")


async def test_calls_reach_their_queue_with_whisper_and_fallback_when_service_is_down(
        pool, tmp_path: Path) -> None:
    directory = parse_clients(CLIENTS, "live.yaml")
    agi_port = free_port()
    queues = (REPO / "dialplan" / "queues.conf.sample").read_text()
    fallback = render_fallback(directory)
    pbx = LiveAsterisk(tmp_path / "asterisk", orikaeshi_extensions(agi_port), queues=queues,
                       voicemail=LIVE_VOICEMAIL,
                       extra_files={"orikaeshi-fallback.conf": fallback})
    # What `orikaeshi dialplan check` verifies, on the files this PBX runs.
    assert check_variables((REPO / "dialplan" / "orikaeshi.conf").read_text()) == []
    assert check_directory(directory, queues_conf=queues, fallback_conf=fallback,
                           sounds=None) == []
    pbx.start()
    events: list[AmiMessage] = []
    cache = RoutingCache()
    cache.directory = directory
    agi = AgiServer(state=AgiContext(cache))
    agi.add_route("route", route)
    await agi.start("127.0.0.1", agi_port)
    config = config_for(tmp_path)
    try:
        async with ledger_and_control(pbx, pool, config,
                                      {"q-ksl": "201", "q-mdc": "211"}, events) as control:

            async def call(did: str, number: str) -> None:
                answer = await control.send_action({
                    "Action": "Originate", "Channel": f"Local/{did}@orikaeshi-inbound/n",
                    "Application": "Wait", "Data": "8",
                    "CallerID": f'"Caller {number}" <{number}>', "Async": "true",
                    "Timeout": "10000"})
                first = answer[0] if isinstance(answer, list) else answer
                assert first.response == "Success", answer

            async def joined(number: str) -> AmiMessage:
                for _ in range(200):
                    for event in events:
                        if event.get("Event") == "QueueCallerJoin" and \
                                event.get("CallerIDNum") == number:
                            return event
                    await asyncio.sleep(0.1)
                raise AssertionError(f"{number} never joined a queue")

            def queue_app(number: str) -> str:
                for event in events:
                    if (event.get("Event") == "Newexten" and event.get("Application") == "Queue"
                            and event.get("CallerIDNum") == number):
                        return event.get("AppData", "")
                return ""

            # With the service up: the route AGI decides.
            await call("0312345678", "09011112222")
            await call("0663330001", "08022223333")
            ksl, mdc = await joined("09011112222"), await joined("08022223333")
            assert (ksl["Queue"], ksl["AccountCode"]) == ("q-ksl", "KSL")
            assert (mdc["Queue"], mdc["AccountCode"]) == ("q-mdc", "MDC")
            assert ",custom/whisper-ksl,20," in queue_app("09011112222")
            assert ",custom/whisper-mdc,20," in queue_app("08022223333")
            assert agi.served >= 2

            # The service's FastAGI is down: every call still reaches its queue.
            await agi.close()
            await call("0312345678", "09055556666")
            await call("0399999999", "09077778888")
            down_ksl, down_unknown = await joined("09055556666"), await joined("09077778888")
            assert down_ksl["Queue"] == "q-ksl" and down_ksl["AccountCode"] == "KSL"
            assert down_unknown["Queue"] == "q-ksl"

            # And the ledger saw all four, to the end.
            for _ in range(300):
                async with pool.acquire() as conn:
                    rows = {r["caller_number"]: r for r in await conn.fetch(
                        "SELECT caller_number, client, outcome, fallback_routed, route_flags, "
                        "answered_by FROM calls WHERE ended_at IS NOT NULL")}
                if len(rows) == 4:
                    break
                await asyncio.sleep(0.1)
    finally:
        await agi.close()
        pbx.stop()
        # Kept beside the PBX's logs for whoever reads a failure.
        with (tmp_path / "ami-events.jsonl").open("w") as dump:
            for event in events:
                dump.write(json.dumps(dict(event), ensure_ascii=False) + "\n")
    assert set(rows) == {"09011112222", "08022223333", "09055556666", "09077778888"}, rows
    assert rows["09011112222"]["client"] == "KSL" and not rows["09011112222"]["fallback_routed"]
    assert rows["08022223333"]["client"] == "MDC"
    assert rows["09055556666"]["fallback_routed"] and rows["09055556666"]["client"] == "KSL"
    assert rows["09077778888"]["fallback_routed"]
    assert rows["09077778888"]["route_flags"] == "unknown_did"
    answered = [r for r in rows.values() if r["outcome"] == "answered"]
    assert answered, rows
    assert {r["answered_by"] for r in answered} <= {"201", "211"}


async def test_supervisor_feature_code_whispers_and_is_audited(pool, tmp_path: Path) -> None:
    """*222<ext> from a supervisor's phone spies on that operator's call (ChanSpy with the
    whisper option), and the service records the use like a dashboard click."""
    from agi.spy import spy

    directory = parse_clients(CLIENTS, "live.yaml")
    agi_port = free_port()
    queues = (REPO / "dialplan" / "queues.conf.sample").read_text()
    extensions_conf = orikaeshi_extensions(agi_port).replace(
        " same => n,Wait(3)\n", " same => n,Wait(12)\n").replace(
        "[globals]\n", "[globals]\nORIKAESHI_SPY_PREFIX = Local/\n") + f"""
#include {REPO / "dialplan" / "supervisor.conf"}

[test-supervisor-phone]
include => orikaeshi-supervisor
"""
    pbx = LiveAsterisk(tmp_path / "asterisk", extensions_conf, queues=queues,
                       extra_files={"orikaeshi-fallback.conf": render_fallback(directory)})
    pbx.start()
    audited: list[tuple[str, str, str]] = []

    async def record_spy(supervisor: str, operator: str, mode: str) -> None:
        audited.append((supervisor, operator, mode))

    cache = RoutingCache()
    cache.directory = directory
    agi = AgiServer(state=AgiContext(cache, record_spy=record_spy))
    agi.add_route("route", route)
    agi.add_route("spy", spy)
    await agi.start("127.0.0.1", agi_port)
    events: list[AmiMessage] = []
    booted = asyncio.Event()

    def watch(batch: list[AmiMessage]) -> None:
        events.extend(batch)
        if any(event.get("Event") == "FullyBooted" for event in batch):
            booted.set()

    control = AmiClient("control", "127.0.0.1", pbx.ami_port, "test", "test", watch)
    try:
        async with running(control.run()):
            await asyncio.wait_for(booted.wait(), 30)
            await control.send_action({"Action": "QueueAdd", "Queue": "q-ksl",
                                       "Interface": "Local/201@test-operators/n"})
            await control.send_action({
                "Action": "Originate", "Channel": "Local/0312345678@orikaeshi-inbound/n",
                "Application": "Wait", "Data": "15", "CallerID": '"Caller" <09011112222>',
                "Async": "true"})
            for _ in range(100):
                if any(e.get("Event") == "AgentConnect" for e in events):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the operator never answered")
            await control.send_action({
                "Action": "Originate", "Channel": "Local/*222201@test-supervisor-phone/n",
                "Application": "Wait", "Data": "5", "CallerID": '"sup" <301>',
                "Async": "true"})
            for _ in range(100):
                spying = [e for e in events if e.get("Event") == "ChanSpyStart"]
                if spying:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("ChanSpy never started")
    finally:
        await agi.close()
        pbx.stop()
    assert spying[0]["SpyeeChannel"].startswith("Local/201@test-operators")
    spy_app = [e for e in events if e.get("Event") == "Newexten"
               and e.get("Application") == "ChanSpy"]
    assert spy_app and spy_app[0]["AppData"].endswith(",qwdE")
    assert audited and audited[0][1:] == ("201", "whisper")
