"""The escalation safety net on a real Asterisk (dialplan/safetynet.conf).

A repeat caller is escalated to the supervisors' queue by the route.  First with no supervisor
logged in (q-sup JOINEMPTY), then with a supervisor whose phone rings and is never answered
(TIMEOUT after the client's supervisor_wait): both times the caller goes back to the client's
operators at the head of the queue, the operator hears the safety-net and repeat whisper, the
wallboard alert is raised, the call is answered, and no voicemail is left.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.clients.schema import parse_clients
from tests.callflows_live import live_pbx
from tests.live_asterisk import asterisk_binary, live_clients

pytestmark = [pytest.mark.asterisk,
              pytest.mark.skipif(asterisk_binary() is None, reason="no Asterisk binary")]

CLIENTS = live_clients("KSL", queue_timeout="25s").replace(
    "    queue: q-ksl\n", "    queue: q-ksl\n    supervisor_wait: 5s\n")

PHONES = """
; 201 answers and talks; 301 (supervisor) rings and never answers.
[test-operators]
exten => 201,1,Answer()
 same => n,Wait(12)
 same => n,Hangup()
exten => 301,1,Wait(60)
"""


async def test_escalated_caller_with_no_supervisor_reaches_an_operator(pool, tmp_path: Path
                                                                        ) -> None:
    directory = parse_clients(CLIENTS, "live.yaml")
    assert directory.clients["KSL"].supervisor_wait == 5
    callers = ("09055556666", "09077778888")
    first_missed = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    async with pool.acquire() as conn:
        for caller in callers:
            for i in range(2):  # two earlier missed calls: the next is the third
                await conn.execute(
                    "INSERT INTO calls (pbx_id, linkedid, direction, client, caller_number, "
                    "caller_e164, started_at, ended_at, outcome) VALUES ('live', $1, "
                    "'inbound', 'KSL', $2, $3, $4::timestamptz, $4::timestamptz + interval "
                    "'30 seconds', 'abandoned')", f"earlier-{caller}-{i}", caller,
                    "+81" + caller[1:], first_missed + timedelta(hours=i))
    async with live_pbx(pool, tmp_path, directory, PHONES, {"q-ksl": "201"}) as live:
        # 1. Nobody in q-sup at all.
        await live.call("0312345678", callers[0])
        back = await live.wait_for(
            lambda e: e.get("Event") == "QueueCallerJoin" and e.get("Queue") == "q-ksl"
            and e.get("CallerIDNum") == callers[0], "the caller back in q-ksl")
        answered = await live.wait_for(
            lambda e: e.get("Event") == "AgentConnect" and e.get("Queue") == "q-ksl"
            and e.get("CallerIDNum") == callers[0], "201 answering the caller")
        await live.rows("SELECT 1 FROM calls WHERE caller_number = $1 AND ended_at IS NOT NULL "
                        "AND linkedid NOT LIKE 'earlier%'", callers[0], want=1)
        # 2. A supervisor logged in, whose phone is never answered.
        added = await live.action({"Action": "QueueAdd", "Queue": "q-sup",
                                   "MemberName": "sup301",
                                   "Interface": "Local/301@test-operators/n"})
        assert added.response == "Success", added
        await live.call("0312345678", callers[1])
        await live.wait_for(
            lambda e: e.get("Event") == "AgentConnect" and e.get("Queue") == "q-ksl"
            and e.get("CallerIDNum") == callers[1], "201 answering the second caller", 60)
        rows = await live.rows(
            "SELECT * FROM calls WHERE caller_number = ANY ($1) AND ended_at IS NOT NULL "
            "AND linkedid NOT LIKE 'earlier%' ORDER BY started_at", list(callers), want=2)
        alerts = await live.rows("SELECT * FROM callflow_alerts ORDER BY id", want=2)
    events = live.events
    # The route escalated each caller to q-sup, waiting there 5 s at most.
    for caller, status in zip(callers, ("JOINEMPTY", "TIMEOUT"), strict=True):
        queued = [e.get("AppData", "") for e in events if e.get("Event") == "Newexten"
                  and e.get("Application") == "Queue" and e.get("CallerIDNum") == caller]
        assert queued[0].startswith("q-sup,t,,") and ",5," in queued[0], queued
        # Back home: the client's queue, the safety-net and repeat whisper to the operator.
        assert queued[1].startswith("q-ksl,t,,orikaeshi/safety-net&orikaeshi/repeat-3,25"), \
            queued
        said = {(e.get("Variable"), e.get("Value")) for e in events
                if e.get("Event") == "VarSet" and e.get("CallerIDNum") == caller}
        assert ("SAFETY_NET", status) in said, (caller, status)
        assert ("QUEUE_PRIO", "100") in said  # ahead of every caller waiting there
        # Never voicemail first, nor at all: the operator answered.
        assert not any(e.get("Application") == "VoiceMail" and e.get("CallerIDNum") == caller
                       for e in events if e.get("Event") == "Newexten")
    assert back["Position"] == "1"
    assert answered["Queue"] == "q-ksl"
    for row in rows:
        assert (row["outcome"], row["answered_by"], row["escalated"],
                row["escalation_reason"], row["voicemail_left"]) == \
            ("answered", "201", True, "repeat_caller", False), dict(row)
    assert [(a["kind"], a["client"], a["linkedid"]) for a in alerts] == \
        [("safety_net", "KSL", rows[0]["linkedid"]), ("safety_net", "KSL", rows[1]["linkedid"])]
    assert ['"supervisor_queue_status": "JOINEMPTY"' in a["detail"] for a in alerts] == \
        [True, False]
    assert '"supervisor_queue_status": "TIMEOUT"' in alerts[1]["detail"]
