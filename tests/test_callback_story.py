"""The story orikaeshi exists for, over real sockets and a real database.

A caller phones Kasumi Law Office three times: two calls are missed, the third is answered
and the operator takes a message asking for a call back.  Nobody calls back.  The fourth
call is escalated to the supervisors with "call number four, no call back since <the first
call>" in the whisper.  Then a call back is made and answered; the fifth call routes normally.

The AMI side is built from real recordings, re-keyed (tests/synth.py); the FastAGI side is
the real server and route answering Asterisk's side of the protocol.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from agi.context import AgiContext
from agi.route import route
from agi.server import AgiServer
from service.callbacks.repeat_sql import SqlRepeatLookup
from service.callbacks.worker import CallbackWorker
from service.clients.schema import parse_clients
from service.clients.store import load_document
from service.clock import Clock
from service.messages.service import NewMessage, take_message
from service.replay.recording import load_recording
from service.replay.run import inbound_report, replay_into
from service.replay.server import ReplayServer
from service.routing.cache import RoutingCache
from service.store.callbacks_sql import obligations
from tests.agi_peer import agi_session, route_headers
from tests.conftest import trace_dir
from tests.replaying import config_for, recorded_before
from tests.synth import Rekey, merge, rekey
from tests.test_agi_recorded import variables

SAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "clients.sample.yaml"
# This client escalates at the fourth call (three earlier calls with no call back), and is
# open whenever the test runs.
STORY_RULE = SAMPLE.read_text().replace(
    "    earlier_calls: 2             # back reach this many inside the window",
    "    earlier_calls: 3").replace(
    "      mon-fri: 09:00-18:00\n    closed_days: [12-29..01-03, 08-13..08-15]\n"
    "    open_days: [\"12-28 09:00-12:00\"]\n",
    "      daily: 00:00-24:00\n    national_holidays: none\n")
CALLER, NAME = "09013579246", "山田一郎"


def segment(name: str, old_number: str, old_name: str, index: int, t_shift: float) -> list:
    [connection] = load_recording(trace_dir(name) / "ami.jsonl")
    return rekey(connection, Rekey(shift_s=1000 * (index + 1), t_shift=t_shift,
                                   numbers={old_number: CALLER}, names={old_name: NAME}))


async def test_repeat_caller_never_called_back_is_escalated_then_not(
        pool, tmp_path, service_clock: Clock) -> None:
    async with pool.acquire() as conn:
        await load_document(conn, STORY_RULE, "story.yaml")
    # Five inbound calls and one call back, minutes apart, from real recordings.
    parts = [segment("abandon_long", "09044445555", "Yamamoto", 0, 0),
             segment("abandon_long", "09044445555", "Yamamoto", 1, 100),
             segment("answered_agent_hangup", "09011112222", "Tanaka", 2, 200),
             segment("answered_agent_hangup", "09011112222", "Tanaka", 3, 300),
             segment("outbound_callback_answered", "09046464646", "Hayashi", 4, 400),
             segment("answered_agent_hangup", "09011112222", "Tanaka", 5, 500)]
    # The call-back recording begins with an abandoned inbound call of its own: keep only the
    # outbound part (the operator's handset and the callee), from t = 17 s on.
    callback = [m for m in parts[4] if (m.t or 0) >= 400 + 17.0]
    story = merge("Asterisk Call Manager/13.0.0", parts[0], parts[1], parts[2], parts[3],
                  callback, parts[5])
    start = datetime.fromtimestamp(int(recorded_before(service_clock, hours=2)),
                                   service_clock().tzinfo)
    server = ReplayServer([story], rebase_to=start.timestamp())
    await replay_into(pool, config_for(tmp_path), server, pbx_id="pbx1")
    async with pool.acquire() as conn:
        calls = await inbound_report(conn, "pbx1")
        uniqueids = {r["linkedid"]: r["caller_uniqueid"] for r in await conn.fetch(
            "SELECT linkedid, caller_uniqueid FROM calls WHERE direction = 'inbound'")}
        [callback_call] = await conn.fetch("SELECT * FROM calls WHERE direction = 'outbound'")
    assert [c["outcome"] for c in calls] == ["abandoned", "abandoned", "answered", "answered",
                                             "answered"]
    assert {c["caller"] for c in calls} == {"+819013579246"}
    assert callback_call["dial_result"] == "answered"
    assert callback_call["callee_e164"] == "+819013579246"

    # The operator who answered the third call took a message asking for a call back.
    async with pool.acquire() as conn:
        await take_message(conn, NewMessage(
            client="KSL", disposition="callback_requested", body="契約の件で折り返しを",
            caller_number=CALLER, caller_name=NAME, pbx_id="pbx1",
            linkedid=calls[2]["linkedid"], taken_by="201"))

    # The route, asked as each call arrived (its clock set to the call's start).
    cache = RoutingCache()
    cache.directory = parse_clients(STORY_RULE, "story.yaml")
    clock = [start]
    server_agi = AgiServer(state=AgiContext(cache, SqlRepeatLookup(pool), repeat_timeout_s=2,
                                            clock=lambda: clock[0]))
    server_agi.add_route("route", route)
    port = await server_agi.start("127.0.0.1", 0)
    decisions = []
    try:
        for call in calls:
            clock[0] = datetime.fromisoformat(call["started_at"]) + timedelta(seconds=0.5)
            commands = await agi_session(port, route_headers(
                "0312345678", CALLER, name=NAME, uniqueid=uniqueids[call["linkedid"]]))
            decisions.append(variables(commands))
    finally:
        await server_agi.close()
    first, second, third, fourth, fifth = decisions
    for normal in (first, second, third, fifth):
        assert normal["ROUTE_QUEUE"] == "q-ksl" and "ESCALATED" not in normal
    assert fourth["ROUTE_QUEUE"] == "q-sup" and fourth["QUEUE_PRIO"] == "10"
    assert (fourth["ESCALATED"], fourth["ESCALATION_REASON"]) == ("1", "repeat_caller")
    assert fourth["__REPEAT_COUNT"] == "4"  # "call number four"
    first_call = datetime.fromisoformat(calls[0]["started_at"])
    assert fourth["__REPEAT_SINCE"] == str(int(first_call.timestamp()))
    assert fourth["__ROUTE_TZ"] == "Asia/Tokyo"
    assert callback_call["answered_at"] < datetime.fromisoformat(calls[4]["started_at"])

    # The obligation: opened by the missed calls, asked again by the message, fulfilled
    # (verified) by the answered call back, by the operator who placed it.
    await CallbackWorker(pool, clock=service_clock).run_once()
    async with pool.acquire() as conn:
        [owed] = await obligations(conn)
    assert (owed["client"], owed["caller_e164"], owed["calls"]) == ("KSL", "+819013579246", 3)
    assert (owed["state"], owed["fulfilment"], owed["fulfilled_by"]) == \
        ("fulfilled", "verified", "201")
    assert owed["fulfilled_linkedid"] == callback_call["linkedid"]
