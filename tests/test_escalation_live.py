"""手上げ on a real Asterisk running dialplan/orikaeshi.conf and dialplan/escalation.conf with
the real route and escalate AGIs, the real ledger and a real database.

* Operator 201 presses the feature code *9 then 2: the caller leaves 201 for the
  supervisors' queue with the reason's whisper; the service records who escalated which
  call; the ledger marks the call escalated with the reason.
* The dashboard escalates operator 202's caller: AMI BlindTransfer of 202's channel, same
  result.
* A caller who presses *9 1 escalates nothing: the feature belongs to the operator only.
* A repeat caller (two missed calls in the ledger, never called back) is sent to the
  supervisors by the route, and the supervisor's phone hears the client's whisper then
  "repeat caller, call number three" as the queue's announcement (the caller still on hold
  music); the member Gosub gives the operator the feature code.

Run when ``ASTERISK_BIN`` (or ``asterisk`` on PATH) gives a binary; skipped otherwise.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from agi.context import AgiContext
from agi.escalate import escalate as escalate_route
from agi.route import route
from agi.server import AgiServer
from service.ami.parser import AmiMessage
from service.callbacks.escalation import FeatureCodeEscalation, escalate, record_feature_code
from service.callbacks.repeat_sql import SqlRepeatLookup
from service.clients.schema import parse_clients
from service.dialplan.check import check_variables
from service.dialplan.render import render_fallback
from service.routing.cache import RoutingCache
from tests.live_asterisk import (
    LIVE_VOICEMAIL,
    REPO,
    LiveAsterisk,
    asterisk_binary,
    extensions_head,
    free_port,
    ledger_and_control,
    live_clients,
    silent_prompt,
)
from tests.replaying import config_for

pytestmark = [pytest.mark.asterisk,
              pytest.mark.skipif(asterisk_binary() is None, reason="no Asterisk binary")]

CLIENTS = live_clients("KSL", "MDC", "WSH", queue_timeout="25s")

FEATURES = """[general]
[featuremap]
[applicationmap]
orikaeshi_escalate => *9,self,Gosub(orikaeshi-escalate-menu,s,1)
"""


def extensions(agi_port: int) -> str:
    includes = ("orikaeshi.conf", str(REPO / "dialplan" / "escalation.conf"),
                str(REPO / "dialplan" / "safetynet.conf"), "orikaeshi-fallback.conf")
    return extensions_head(agi_port, outside="test-operators", includes=includes,
                           globals_extra="ORIKAESHI_SUPERVISORS = q-sup") + """\
; Simulated phones.  201 answers and escalates by feature code: *9, then 2 (complaint
; naming an operator) at the menu.  202 and 203 answer and stay; 301 (supervisor) answers,
; hears the whisper, talks briefly and hangs up.
[test-operators]
exten => 201,1,Answer()
 same => n,Wait(2)
 same => n,SendDTMF(*9)
 same => n,Wait(1)
 same => n,SendDTMF(2)
 same => n,Wait(30)
 same => n,Hangup()
exten => _20[23],1,Answer()
 same => n,Wait(10)
 same => n,Hangup()
exten => 301,1,Answer()
 same => n,Wait(5)
 same => n,Hangup()

; A caller who tries the operator's feature code once talking.
[test-caller]
exten => s,1,Wait(5)
 same => n,SendDTMF(*91)
 same => n,Wait(10)
 same => n,Hangup()
"""


async def test_operator_escalation_by_feature_code_and_by_dashboard(pool, tmp_path: Path
                                                                     ) -> None:
    directory = parse_clients(CLIENTS, "live.yaml")
    agi_port = free_port()
    queues = (REPO / "dialplan" / "queues.conf.sample").read_text()
    escalation_conf = (REPO / "dialplan" / "escalation.conf").read_text()
    assert check_variables(escalation_conf, must_read=()) == []
    pbx = LiveAsterisk(tmp_path / "asterisk", extensions(agi_port), queues=queues,
                       voicemail=LIVE_VOICEMAIL,
                       extra_files={"orikaeshi-fallback.conf": render_fallback(directory),
                                    "features.conf": FEATURES})
    for prompt in ("escalation-menu", "escalation-complaint",
                   "escalation-complaint_naming_operator", "escalation-payment_dispute",
                   "escalation-other", "repeat-3"):
        silent_prompt(pbx.sounds / "orikaeshi" / f"{prompt}.wav")
    pbx.start()
    config = config_for(tmp_path)
    live = pbx.pbx_config

    async def record(request: FeatureCodeEscalation) -> None:
        await record_feature_code(pool, (live,), request)

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
    cache.directory = directory
    agi = AgiServer(state=AgiContext(cache, SqlRepeatLookup(pool), repeat_timeout_s=2,
                                     record_escalation=record))
    agi.add_route("route", route)
    agi.add_route("escalate", escalate_route)
    await agi.start("127.0.0.1", agi_port)
    events: list[AmiMessage] = []

    def find(predicate: object) -> AmiMessage | None:
        return next((e for e in events if predicate(e)), None)  # type: ignore[operator]

    async def wait_for(predicate: object, what: str, timeout: float = 25.0) -> AmiMessage:
        for _ in range(int(timeout * 10)):
            found = find(predicate)
            if found is not None:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"never saw {what}")

    try:
        async with ledger_and_control(pbx, pool, config,
                                      {"q-ksl": "201", "q-mdc": "202", "q-wsh": "203",
                                       "q-sup": "301"}, events) as control:
            async def call(did: str, number: str, *, caller_presses: bool = False) -> None:
                action = {"Action": "Originate", "Channel": f"Local/{did}@orikaeshi-inbound/n",
                          "CallerID": f'"Caller {number}" <{number}>', "Async": "true",
                          "Timeout": "10000"}
                if caller_presses:
                    action.update({"Context": "test-caller", "Exten": "s", "Priority": "1"})
                else:
                    action.update({"Application": "Wait", "Data": "30"})
                answer = await control.send_action(action)
                first = answer[0] if isinstance(answer, list) else answer
                assert first.response == "Success", answer

            def joined(number: str, queue: str) -> object:
                return lambda e: (e.get("Event") == "QueueCallerJoin" and
                                  e.get("CallerIDNum") == number and e.get("Queue") == queue)

            await call("0312345678", "09011112222")
            await call("0663330001", "08022223333")
            await call("0501234567", "07033334444", caller_presses=True)
            await call("0312345678", repeat_caller)

            # The dashboard: once 202 is talking to its caller, escalate for them.
            connect = await wait_for(lambda e: e.get("Event") == "AgentConnect" and
                                     e.get("Queue") == "q-mdc", "202 answering")
            async with pool.acquire() as conn:
                moved = await escalate(
                    control, conn, pbx_id="live",
                    call=(connect["Linkedid"], connect["DestChannel"], "MDC"),
                    reason="payment_dispute", requested_by="sup301")
            assert moved.moved, moved

            await wait_for(joined("09011112222", "q-sup"), "201's caller in q-sup")
            by_dashboard = await wait_for(joined("08022223333", "q-sup"),
                                          "202's caller in q-sup")
            # The caller of the third call pressed *9 1 well after being answered.
            await wait_for(lambda e: e.get("Event") == "DTMFEnd" and e.get("Digit") == "1" and
                           e.get("CallerIDNum") == "07033334444", "the caller's digits")

            repeat_answered = await wait_for(
                lambda e: e.get("Event") == "AgentConnect" and e.get("Queue") == "q-sup" and
                e.get("CallerIDNum") == repeat_caller, "the repeat caller answered", 40)

            # Every call to its end in the ledger.
            rows: dict[str, asyncpg.Record] = {}
            for _ in range(400):
                async with pool.acquire() as conn:
                    rows = {r["caller_number"]: r for r in await conn.fetch(
                        "SELECT * FROM calls WHERE ended_at IS NOT NULL AND pbx_id = 'live' "
                        "AND linkedid NOT LIKE 'earlier%'")}
                if len(rows) == 4:
                    break
                await asyncio.sleep(0.1)
            async with pool.acquire() as conn:
                recorded = await conn.fetch("SELECT * FROM escalations ORDER BY id")
    finally:
        await agi.close()
        pbx.stop()
        with (tmp_path / "ami-events.jsonl").open("w") as dump:
            for event in events:
                dump.write(json.dumps(dict(event), ensure_ascii=False) + "\n")
    whisper_of = {e.get("CallerIDNum"): e.get("AppData", "") for e in events
                  if e.get("Event") == "Newexten" and e.get("Application") == "Queue"
                  and e.get("Context") == "orikaeshi-escalate"}
    assert ",orikaeshi/escalation-complaint_naming_operator," in whisper_of["09011112222"]
    assert ",orikaeshi/escalation-payment_dispute," in whisper_of["08022223333"]
    assert "07033334444" not in whisper_of
    assert set(rows) == {"09011112222", "08022223333", "07033334444", repeat_caller}, rows
    feature_call, dashboard_call, caller_call = (rows["09011112222"], rows["08022223333"],
                                                 rows["07033334444"])
    assert (feature_call["escalated"], feature_call["escalation_reason"]) == \
        (True, "complaint_naming_operator")
    assert (dashboard_call["escalated"], dashboard_call["escalation_reason"]) == \
        (True, "payment_dispute")
    assert feature_call["answered_by"] == "301"
    assert dashboard_call["answered_by"] == "301"
    assert caller_call["escalated"] is False
    assert by_dashboard["Linkedid"] == dashboard_call["linkedid"]
    # Who escalated which call, and how.
    feature_row, = [r for r in recorded if r["via"] == "feature_code"]
    api_row, = [r for r in recorded if r["via"] == "api"]
    assert (feature_row["requested_by"], feature_row["reason"], feature_row["client"],
            feature_row["linkedid"], feature_row["pbx_id"]) == \
        ("201", "complaint_naming_operator", "KSL", feature_call["linkedid"],
         "live")
    assert (api_row["requested_by"], api_row["reason"], api_row["client"], api_row["result"]) \
        == ("sup301", "payment_dispute", "MDC", "moved")

    # The repeat caller: the route escalated it, the ledger says so, and the whisper ran on
    # the supervisor's channel before the caller was connected.
    repeat = rows[repeat_caller]
    assert (repeat["escalated"], repeat["escalation_reason"], repeat["route_queue"],
            repeat["answered_by"]) == (True, "repeat_caller", "q-sup", "301")
    member = repeat_answered["DestChannel"]
    said = [(e.get("Application"), e.get("AppData")) for e in events
            if e.get("Event") == "Newexten" and e.get("Channel") == member
            and e.get("Context") == "orikaeshi-member-whisper"]
    # The member Gosub ran (on Asterisk 20 too: the include is written for the release) and
    # only gave the operator the feature code; the short repeat whisper is the queue's
    # announcement, played while the caller still hears hold music.
    assert said == [("Set", "DYNAMIC_FEATURES=orikaeshi_escalate#orikaeshi_handraise"),
                    ("Return", "")], said
    queued = [e.get("AppData", "") for e in events
              if e.get("Event") == "Newexten" and e.get("Application") == "Queue"
              and e.get("CallerIDNum") == repeat_caller and e.get("Context") ==
              "orikaeshi-inbound"]
    assert queued and queued[-1].startswith(
        "q-sup,t,,custom/whisper-ksl&orikaeshi/repeat-3,"
    ), queued
    assert str(int(first_missed.timestamp())) not in queued[-1]  # no date said any more
