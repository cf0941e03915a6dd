"""Operator presence on a real Asterisk (dialplan/presence.conf, service/callflows/presence.py).

201 and 202 log in to q-ksl (linear: 201 first).  201 pauses from the phone with *421
(break): the PBX pauses it with that reason, the span is kept, and two calls are offered to
202 only.  Back from the pause, the next call is offered to 201 again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.callflows.presence import change, report
from service.clients.schema import parse_clients
from tests.callflows_live import LivePbx, live_pbx
from tests.live_asterisk import asterisk_binary, live_clients

pytestmark = [pytest.mark.asterisk,
              pytest.mark.skipif(asterisk_binary() is None, reason="no Asterisk binary")]

PHONES = """
[test-operators]
exten => _20[12],1,Answer()
 same => n,Wait(2)
 same => n,Hangup()

; 201's phone dialling a feature code.
[test-presence]
exten => _X.,1,Goto(orikaeshi-presence,${FEATURE},1)
"""


async def _answered_by(live: LivePbx, caller: str) -> str:
    await live.call("0312345678", caller, wait_s=10)
    connect = await live.wait_for(lambda e: e.get("Event") == "AgentConnect"
                                  and e.get("CallerIDNum") == caller, f"{caller} answered")
    await live.rows("SELECT 1 FROM calls WHERE caller_number = $1 AND ended_at IS NOT NULL",
                    caller, want=1)
    return str(connect.get("MemberName"))


async def test_a_paused_operator_is_not_offered_calls_and_the_reason_is_kept(
        pool, tmp_path: Path) -> None:
    directory = parse_clients(live_clients("KSL", queue_timeout="25s"), "live.yaml")
    async with live_pbx(pool, tmp_path, directory, PHONES, {}) as live:
        assert live.flows is not None
        pbx = live.flows.pbxs[0]
        async with pool.acquire() as conn:
            for operator in ("201", "202"):
                await change(live.control, conn, pbx, operator=operator, action="login",
                             reason=None, queues=["q-ksl"], via="api",
                             at=live.flows.clock())
        # 201 presses *421 on its phone: pause, reason 1 = break.
        dialled = await live.action({
            "Action": "Originate", "Channel": "Local/201@test-presence/n",
            "Variable": "FEATURE=*421", "Application": "Wait", "Data": "5",
            "Async": "true"})
        assert dialled.response == "Success"
        paused = await live.rows("SELECT * FROM presence_spans WHERE operator = '201' "
                                 "AND state = 'paused'", want=1)
        await live.wait_for(lambda e: e.get("Event") == "QueueMemberPause"
                            and e.get("MemberName") == "201", "201 paused on the PBX")
        first = await _answered_by(live, "09011110001")
        second = await _answered_by(live, "09011110002")
        offered_while_paused = [e for e in live.events if e.get("Event") == "AgentCalled"
                                and e.get("MemberName") == "201"]
        async with pool.acquire() as conn:
            await change(live.control, conn, pbx, operator="201", action="unpause",
                         reason=None, queues=None, via="api", at=live.flows.clock())
        third = await _answered_by(live, "09011110003")
        async with pool.acquire() as conn:
            spans = await conn.fetch("SELECT state, reason, via, queues, ended_at IS NULL "
                                     "AS open FROM presence_spans WHERE operator = '201' "
                                     "ORDER BY id")
            figures = await report(conn, paused[0]["started_at"], live.flows.clock())
    pause_event = next(e for e in live.events if e.get("Event") == "QueueMemberPause"
                       and e.get("MemberName") == "201" and e.get("Paused") == "1")
    assert pause_event.get("PausedReason") == "break"
    assert (first, second, third) == ("202", "202", "201")
    assert offered_while_paused == []
    assert [tuple(s) for s in spans] == [
        ("logged_in", None, "api", ["q-ksl"], False),
        ("paused", "break", "feature_code", ["q-ksl"], False),
        ("logged_in", None, "api", ["q-ksl"], True)]
    assert figures["201"]["paused:break"] > 0
