"""手上げ with hold on a real Asterisk (dialplan/handraise.conf, service/callflows/handraise.py).

Two calls to KSL.  On each, operator 201 presses *8: the caller goes to music on hold, the
operator to the consult room, supervisor 301's phone rings (AMI Originate) and joins the room
after hearing the alert.  The first is taken over by the supervisor (the caller joins the
supervisor, the operator is released), the second handed back (the caller joins the operator,
the supervisor is released).  A third call, to MDC's operator 202, is put on hold the way
the page's button does it (the bridged caller from the PBX, then the hold) and handed back.
Hold and help times are in the handraise rows and in the ledger
(calls.hold_s / help_s), every step is in the audit, and the wallboard alert was raised.

Listen mode: nobody answers the alert; the supervisor presses listen and their phone joins
the room muted (ConfbridgeList says Muted: Yes), whispers (No), listens again (Yes), then
takes over (the caller joins, the supervisor is unmuted, the operator released).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service.callflows.handraise import (
    HandraiseError,
    HoldRequest,
    decide,
    handraises,
    hold_by_api,
    room_of,
    supervise,
)
from service.clients.schema import parse_clients
from service.web.callflow_context import bridged_caller
from tests.callflows_live import LivePbx, live_pbx
from tests.live_asterisk import asterisk_binary, live_clients

pytestmark = [pytest.mark.asterisk,
              pytest.mark.skipif(asterisk_binary() is None, reason="no Asterisk binary")]

# 201 answers a caller, then presses *8 (手上げ); rung back into the consult room by the
# service (caller ID 201), it answers and stays.
OPERATOR_201 = """
[test-operators]
exten => 201,1,Answer()
 same => n,GotoIf($["${CALLERID(num)}" = "201"]?consult)
 same => n,Wait(2)
 same => n,SendDTMF(*8)
 same => n,Wait(60)
 same => n,Hangup()
 same => n(consult),Wait(60)
 same => n,Hangup()
"""
PHONES = OPERATOR_201 + """\
; 202 answers and stays: its caller is put on hold from the page (POST /api/handraise).
exten => 202,1,Answer()
 same => n,Wait(60)
 same => n,Hangup()
; 301, a supervisor: answers the alert and stays.
exten => 301,1,Answer()
 same => n,Wait(60)
 same => n,Hangup()
"""


async def _one(live: LivePbx, caller: str, action: str, *, by_page: bool = False
               ) -> dict[str, object]:
    await live.call("0663330001" if by_page else "0312345678", caller, wait_s=60)
    if by_page:
        # What POST /api/handraise does: the operator's bridged caller, then the hold.
        connect = await live.wait_for(lambda e: e.get("Event") == "AgentConnect"
                                      and e.get("CallerIDNum") == caller, "202 answering")
        peer = await bridged_caller(live.control, "202", connect["DestChannel"])
        assert live.flows is not None
        async with live.pool.acquire() as conn:
            await hold_by_api(live.control, conn, HoldRequest(
                pbx_id="live", linkedid=connect["Linkedid"], client="MDC", operator="202",
                caller_channel=peer, via="api", requested_by="op202"), live.flows.clock())
    held = await live.rows("SELECT * FROM handraises WHERE helped_at IS NOT NULL "
                           "AND operator_channel IS NOT NULL AND ended_at IS NULL", want=1,
                           timeout=40)
    row = held[0]
    # The caller hears music on hold, the operator and the supervisor are in the room.
    await live.wait_for(lambda e: e.get("Event") == "MusicOnHoldStart"
                        and e.get("Channel") == row["caller_channel"], "the caller on hold")
    room = f"orikaeshi-hr{row['id']}"
    await live.wait_for(lambda e: e.get("Event") == "ConfbridgeJoin"
                        and e.get("Conference") == room
                        and e.get("Channel") == row["supervisor_channel"],
                        "the supervisor in the room")
    await live.wait_for(lambda e: e.get("Event") == "ConfbridgeJoin"
                        and e.get("Conference") == room
                        and e.get("Channel") == row["operator_channel"],
                        "the operator in the room")
    await asyncio.sleep(1)  # a second of consult, so that the help time is not zero
    assert live.flows is not None
    async with live.pool.acquire() as conn:
        decided = await decide(live.control, conn, row["id"], action, "sup301",
                               live.flows.clock())
    await live.wait_for(lambda e: e.get("Event") == "ConfbridgeJoin"
                        and e.get("Conference") == room
                        and e.get("Channel") == row["caller_channel"], "the caller in the room")
    leaving = row["operator_channel"] if action == "take_over" else row["supervisor_channel"]
    await live.wait_for(lambda e: e.get("Event") == "Hangup" and e.get("Channel") == leaving,
                        f"{leaving} released")
    return {"row": row, "decided": decided}


async def test_hold_then_take_over_and_hold_then_hand_back(pool, tmp_path: Path) -> None:
    directory = parse_clients(live_clients("KSL", "MDC", queue_timeout="25s"), "live.yaml")
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO users (username, password_hash, role, extension) "
                           "VALUES ('sup301', 'x', 'supervisor', '301')")
    async with live_pbx(pool, tmp_path, directory, PHONES,
                        {"q-ksl": "201", "q-mdc": "202"}) as live:
        first = await _one(live, "09011112222", "take_over")
        # 201 was released by the take over; the second call rings 201 again.
        second = await _one(live, "09033334444", "hand_back")
        # The page's button for 202's caller, handed back too.
        third = await _one(live, "09055550000", "hand_back", by_page=True)
        rows = await live.rows("SELECT * FROM handraises ORDER BY id", want=3)
        audit = await live.rows("SELECT handraise_id, actor, action FROM handraise_audit "
                                "ORDER BY id", want=15)
        alerts = await live.rows("SELECT * FROM callflow_alerts WHERE kind = 'handraise' "
                                 "ORDER BY id", want=3)
        calls = await live.rows(
            "SELECT caller_number, hold_s, help_s, answered_by FROM calls "
            "WHERE hold_s IS NOT NULL ORDER BY started_at", want=3)
    taken, back, by_page = rows
    assert (by_page["via"], by_page["operator"], by_page["client"], by_page["resolution"]) \
        == ("api", "202", "MDC", "handed_back")
    assert by_page["hold_s"] > by_page["help_s"] > 0.5 and third["decided"]["id"] == \
        by_page["id"]
    assert (taken["resolution"], taken["operator"], taken["helped_by"], taken["via"],
            taken["client"]) == ("taken_over", "201", "301", "feature_code", "KSL")
    assert (back["resolution"], back["helped_by"]) == ("handed_back", "301")
    for row, result in ((taken, first), (back, second)):
        assert row["hold_s"] > row["help_s"] > 0.5, dict(row)
        assert row["hold_s"] == pytest.approx(
            (row["ended_at"] - row["held_at"]).total_seconds())
        assert result["decided"] == {"id": row["id"], "resolution": row["resolution"],
                                     "hold_s": row["hold_s"], "help_s": row["help_s"]}
    # hold, alert (ring), two joins (operator and supervisor, either first), the decision.
    for row, decision in ((taken, "take_over"), (back, "hand_back"), (by_page, "hand_back")):
        steps = [a["action"] for a in audit if a["handraise_id"] == row["id"]]
        assert steps == ["hold", "alert", "join", "join", decision], steps
    assert [a["actor"] for a in audit if a["action"] in ("take_over", "hand_back")] == \
        ["sup301"] * 3
    # The wallboard alerts, cleared by the decision.
    assert [(a["client"], a["cleared_by"]) for a in alerts] == \
        [("KSL", "sup301")] * 2 + [("MDC", "sup301")]
    # The ledger: hold and help seconds on each call.
    assert [(c["caller_number"], c["hold_s"], c["help_s"]) for c in calls] == [
        ("09011112222", taken["hold_s"], taken["help_s"]),
        ("09033334444", back["hold_s"], back["help_s"]),
        ("09055550000", by_page["hold_s"], by_page["help_s"])]


LISTEN_PHONES = OPERATOR_201 + """\
; 301, a supervisor away from the phone when the alert rings; the call the service makes
; when the supervisor presses listen on the page ("手上げ聴取 201") is answered.
exten => 301,1,GotoIf($[${REGEX("聴取" ${CALLERID(name)})}]?listen)
 same => n,Ringing()
 same => n,Wait(45)
 same => n,Hangup()
 same => n(listen),Answer()
 same => n,Wait(60)
 same => n,Hangup()
"""


async def _muted(live: LivePbx, room: str) -> dict[str, str]:
    """Who is in the room and muted: channel -> the Muted header of ConfbridgeList."""
    listed = await live.control.send_action({"Action": "ConfbridgeList",
                                             "Conference": room}, as_list=True)
    return {e["Channel"]: e["Muted"] for e in listed if e.get("Event") == "ConfbridgeList"}


async def test_supervisor_listens_muted_then_whispers_then_takes_over(pool, tmp_path: Path
                                                                     ) -> None:
    """The supervisor presses listen (no one answered the alert): their phone is rung into
    the room muted; whisper unmutes them (the caller, on hold music, is not in the room);
    listen again mutes them over AMI; take over unmutes them before the caller joins."""
    directory = parse_clients(live_clients("KSL", queue_timeout="25s"), "live.yaml")
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO users (username, password_hash, role, extension) "
                           "VALUES ('sup301', 'x', 'supervisor', '301')")
    async with live_pbx(pool, tmp_path, directory, LISTEN_PHONES, {"q-ksl": "201"}) as live:
        assert live.flows is not None
        clock = live.flows.clock
        await live.call("0312345678", "09077778888", wait_s=60)
        row = (await live.rows("SELECT * FROM handraises WHERE operator_channel IS NOT NULL",
                               want=1))[0]
        room = room_of(row["id"])
        await live.wait_for(lambda e: e.get("Event") == "ConfbridgeJoin"
                            and e.get("Channel") == row["operator_channel"],
                            "the operator in the room")
        pbx = live.flows.pbx_for(None)
        async with live.pool.acquire() as conn:
            # Nobody took the alert: whisper has no one to unmute, take over no one.
            with pytest.raises(HandraiseError, match="no supervisor has joined"):
                await supervise(live.control, conn, pbx, row["id"], "whisper", "sup301",
                                "301", clock())
            rung = await supervise(live.control, conn, pbx, row["id"], "listen", "sup301",
                                   "301", clock())
        assert rung == {"id": row["id"], "mode": "listen", "supervisor": "301", "rung": True}
        row = (await live.rows("SELECT * FROM handraises WHERE supervisor_channel IS NOT NULL",
                               want=1))[0]
        sup, operator = row["supervisor_channel"], row["operator_channel"]
        await live.wait_for(lambda e: e.get("Event") == "ConfbridgeJoin"
                            and e.get("Channel") == sup, "the supervisor in the room")
        # Listening: in the room, muted; the operator talks; the caller is not there.
        assert await _muted(live, room) == {operator: "No", sup: "Yes"}
        assert live.find(lambda e: e.get("Event") == "MusicOnHoldStart"
                         and e.get("Channel") == row["caller_channel"]) is not None
        async with live.pool.acquire() as conn:
            whisper = await supervise(live.control, conn, pbx, row["id"], "whisper", "sup301",
                                      "301", clock())
            assert (whisper["mode"], whisper["rung"]) == ("whisper", False)
            assert await _muted(live, room) == {operator: "No", sup: "No"}
            await supervise(live.control, conn, pbx, row["id"], "listen", "sup301", "301",
                            clock())
            assert await _muted(live, room) == {operator: "No", sup: "Yes"}
            listed = await handraises(conn, open_only=True)
            assert [(h["id"], h["supervisor_mode"]) for h in listed] == [(row["id"], "listen")]
            await asyncio.sleep(1)  # a second of help, so that the help time is not zero
            decided = await decide(live.control, conn, row["id"], "take_over", "sup301",
                                   clock())
        await live.wait_for(lambda e: e.get("Event") == "ConfbridgeJoin"
                            and e.get("Conference") == room
                            and e.get("Channel") == row["caller_channel"],
                            "the caller in the room")
        await live.wait_for(lambda e: e.get("Event") == "Hangup"
                            and e.get("Channel") == operator, "the operator released")
        # The supervisor talks with the caller now.
        assert await _muted(live, room) == {row["caller_channel"]: "No", sup: "No"}
        done = (await live.rows("SELECT * FROM handraises WHERE ended_at IS NOT NULL",
                                want=1))[0]
        audit = await live.rows("SELECT actor, action, detail FROM handraise_audit "
                                "WHERE handraise_id = $1 ORDER BY id", row["id"], want=8)
        call = (await live.rows("SELECT hold_s, help_s FROM calls WHERE hold_s IS NOT NULL",
                                want=1))[0]
    assert [(a["actor"], a["action"]) for a in audit] == [
        ("201", "hold"), ("service", "alert"), ("201", "join"), ("sup301", "listen"),
        ("301", "join"), ("sup301", "whisper"), ("sup301", "listen"), ("sup301", "take_over")]
    assert audit[3]["detail"] == "ringing 301"
    assert audit[4]["detail"] == f"supervisor listening {sup}"
    # Help time runs from the listening supervisor's join.
    assert (done["resolution"], done["helped_by"]) == ("taken_over", "301")
    assert done["hold_s"] > done["help_s"] > 0.5
    assert done["help_s"] == pytest.approx((done["ended_at"] - done["helped_at"]).total_seconds())
    assert decided["help_s"] == done["help_s"]
    assert (call["hold_s"], call["help_s"]) == (done["hold_s"], done["help_s"])
