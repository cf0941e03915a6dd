"""No lie left in the ledger: a CONNECT whose caller was gone is a missed call; after an AMI
gap Asterisk's evidence decides (else ``unknown``); the dialplan fallback's flag survives an
outage; reconcile counts each call once.  Real sockets, real PostgreSQL, real recordings.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agi import variables as v
from service.callbacks.worker import CallbackWorker
from service.clients.schema import parse_clients
from service.dialplan.render import render_fallback
from service.ledger.machine import LedgerMachine, SnapshotChannel, SnapshotQueueEntry
from service.ledger.records import call_records
from service.reconcile.asterisk_logs import read_cdr, read_queue_log
from service.reconcile.command import reconcile_command
from service.reconcile.compare import compare
from service.replay.recording import RecordedConnection, RecordedMessage, load_recording
from service.replay.run import inbound_report, replay_into
from service.replay.server import ReplayServer
from service.store.callbacks_sql import obligations
from service.store.ledger_sql import write_records
from tests.conftest import TRACES, trace_dir
from tests.replaying import config_for, replay
from tests.waiting import eventually, running

UTC_TZ = ZoneInfo("UTC")


# -- a caller who hangs up during the member's whisper ------------------------------------------

def _h(message: RecordedMessage) -> dict[str, str]:
    return {k: value or "" for k, value in message.headers}


def _with(message: RecordedMessage, t: float, **changes: str) -> RecordedMessage:
    headers = [(k, changes.get(k, value)) for k, value in message.headers]
    return RecordedMessage(headers, t)


def _renamed(message: RecordedMessage, t: float, names: dict[str, str]) -> RecordedMessage:
    headers = []
    for key, value in message.headers:
        for old, new in names.items():
            value = None if value is None else value.replace(old, new)
        headers.append((key, value))
    return RecordedMessage(headers, t)


def whisper_hangup_recording() -> RecordedConnection:
    """DERIVED from repeat_caller_escalated/ami.jsonl (a real Asterisk's events, moved and
    re-labelled; nothing invented):

    * the first call (abandoned in q-ksl) unchanged;
    * the second, escalated call unchanged until supervisor 301 picks up (t = 28.548);
    * the caller then hangs up at t = 34.044, 7.5 s after joining q-sup, while the whisper
      plays to 301: the caller-side hang-up messages are the first call's own
      (``Cdr`` of ``;1``, ``HangupRequest`` of ``;2`` with ``Cause: 0``, ``Hangup`` of ``;1``),
      re-labelled with the second call's channels;
    * as a live Asterisk does with Queue()'s gosub whisper (tests/fixtures/whisper_hangup_*),
      the recorded ``MusicOnHoldStop`` and ``QueueCallerLeave`` come at the pick-up;
    * the whisper ends 16 s after the pick-up, as in the live trial of issue 8: the recorded
      ``AgentConnect`` (``HoldTime: 18``), ``BridgeCreate``, ``BridgeEnter`` x2 moved to
      t = 44.55; then the recorded
      ``AgentComplete`` with ``Reason: caller``, ``TalkTime: 0`` (what app_queue logs as
      ``COMPLETECALLER|18|0|1``) and the recorded tail of hang-ups, moved by +10 s.
    """
    [real] = load_recording(trace_dir("repeat_caller_escalated") / "ami.jsonl")
    caller1, caller2 = "Local/0312345678@from-pstn-00000002;1", \
        "Local/0312345678@from-pstn-00000002;2"
    out: list[RecordedMessage] = [m for m in real.messages if (m.t or 0) < 29.0]
    first_hangup = [m for m in real.messages if 14.5 < (m.t or 0) < 14.52 and (
        (_h(m).get("Event") in ("Cdr", "Hangup") and _h(m).get("Channel", "").endswith(
            "from-pstn-00000000;1"))
        or (_h(m).get("Event") == "HangupRequest" and _h(m).get("Channel", "").endswith(
            "from-pstn-00000000;2")))]
    assert [_h(m)["Event"] for m in first_hangup] == ["Cdr", "HangupRequest", "Hangup"]
    names = {"from-pstn-00000000;": "from-pstn-00000002;", "1795347067.0": "1795347086.4",
             "1795347067.1": "1795347086.5"}
    out += [_renamed(m, 34.044, names) for m in first_hangup]
    for m in real.messages:
        t = m.t or 0
        if 29.4 < t < 29.5:
            h = _h(m)
            if h.get("Event") in ("MusicOnHoldStop", "QueueCallerLeave") or \
                    h.get("Variable") == "QUEUEPOSITION":
                # With a gosub whisper the caller leaves the queue when the member picks up
                # (seen live: tests/fixtures/whisper_hangup_ast*).
                out.append(RecordedMessage(m.headers, 28.549))
            elif h.get("Event") == "AgentConnect":
                out.append(_with(m, t + 15.06, HoldTime="18"))
            else:
                out.append(RecordedMessage(m.headers, t + 15.06))
    for m in real.messages:
        t, h = m.t or 0, _h(m)
        if t < 34.5:
            continue
        if h.get("Event") == "AgentComplete":
            out.append(_with(m, 44.551, HoldTime="18", TalkTime="0", Reason="caller"))
        elif h.get("Channel") == caller1 and h.get("Event") in ("Cdr", "Hangup",
                                                                  "HangupRequest"):
            continue  # the caller's own half went at 34.044
        else:
            out.append(RecordedMessage(m.headers, t + 10.0))
    assert any(_h(m).get("Channel") == caller2 and _h(m).get("Event") == "Hangup" for m in out)
    return RecordedConnection(real.banner, sorted(out, key=lambda m: m.t or 0.0))


def whisper_hangup_queue_log() -> str:
    """DERIVED from repeat_caller_escalated/queue_log: the second call's CONNECT after the
    16-s whisper, then COMPLETECALLER with talk 0, as Asterisk logs a caller gone before the
    bridge."""
    lines = []
    for line in (trace_dir("repeat_caller_escalated") / "queue_log").read_text().splitlines():
        if "|CONNECT|" in line and "q-sup" in line:
            line = "1795347110|1795347086.5|q-sup|sup301|CONNECT|18|1795347092.6|2"
        elif "|COMPLETEAGENT|" in line:
            line = "1795347110|1795347086.5|q-sup|sup301|COMPLETECALLER|18|0|1"
        lines.append(line)
    return "\n".join(lines) + "\n"


async def test_caller_gone_during_the_whisper_is_a_missed_call_with_its_obligation(
        pool, tmp_path: Path) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    server = ReplayServer([whisper_hangup_recording()], rebase_to=start.timestamp())
    await replay_into(pool, config_for(tmp_path), server, pbx_id="pbx1")
    async with pool.acquire() as conn:
        first, second = await inbound_report(conn, "pbx1")
        ring = await conn.fetchrow("SELECT result, agent FROM ring_attempts "
                                   "WHERE member_uniqueid = '1795347092.6'")
    assert first["outcome"] == "abandoned"
    # Escalated, picked up by 301, but the caller was gone before the bridge: 7.5 s of
    # waiting, then hung up.  Not answered, no talk.
    assert second["escalated"] is True and second["queues"] == ["q-sup"]
    assert (second["outcome"], second["answered_by"], second["answered_at"],
            second["talk_s"]) == ("abandoned", None, None, None)
    assert second["wait_s"] == pytest.approx(7.5, abs=0.01)
    assert (ring["result"], ring["agent"]) == ("answered", "301")  # 301 did pick up

    # The call joins the caller's call-back obligation like any missed call.
    await CallbackWorker(pool).run_once()
    async with pool.acquire() as conn:
        [owed] = await obligations(conn)
    assert (owed["client"], owed["caller_e164"], owed["calls"], owed["state"]) == \
        ("KSL", "+819024682468", 2, "open")


def test_reconcile_reads_connect_then_completecaller_talk_0_as_an_abandon() -> None:
    folder = trace_dir("repeat_caller_escalated")
    cdr = read_cdr((folder / "cdr.csv").read_text(), UTC_TZ)
    findings = compare([], cdr, read_queue_log(whisper_hangup_queue_log()),
                       inbound_contexts=frozenset({"from-pstn"}), short_abandon_s=5.0)
    outcomes = {a.linkedid: (a.outcome, a.answered_by) for a in findings.additions}
    assert outcomes == {"1795347067.0": ("abandoned", None),
                        "1795347086.4": ("abandoned", None)}
    # The real queue_log of the same calls (answered after a 1-s whisper) stays answered.
    real = compare([], cdr, read_queue_log((folder / "queue_log").read_text()),
                   inbound_contexts=frozenset({"from-pstn"}), short_abandon_s=5.0)
    assert {a.linkedid: a.outcome for a in real.additions}["1795347086.4"] == "answered"


async def test_ledger_and_reconcile_agree_on_the_whisper_hangup(pool, db_url: str,
                                                                tmp_path: Path,
                                                                capsys) -> None:
    server = ReplayServer([whisper_hangup_recording()])
    await replay_into(pool, config_for(tmp_path), server, pbx_id="pbx1")
    (tmp_path / "queue_log").write_text(whisper_hangup_queue_log())
    config = dataclasses.replace(config_for(tmp_path), database_url=db_url)
    args = argparse.Namespace(pbx=None, cdr=trace_dir("repeat_caller_escalated") / "cdr.csv",
                              queue_log=tmp_path / "queue_log", since=None, until=None,
                              dry_run=True, json=True)
    status = await reconcile_command(config, args)
    out = json.loads(capsys.readouterr().out)
    assert (status, out["differences"], out["additions"]) == (0, [], [])


def _caller_story(machine: LedgerMachine, *, bridge: bool, gone_at: float | None,
                  talk: str) -> None:
    """The second call of repeat_caller_escalated in the order Asterisk sent it (channel
    names and ids as recorded), with the caller's hang-up placed at ``gone_at``."""
    lid, c1, c2, m1 = "1795347086.4", "1795347086.4", "1795347086.5", "1795347092.6"
    name = "Local/0312345678@from-pstn-00000002;"

    def feed(t: float, **h: str) -> None:
        h.setdefault("Linkedid", lid)
        machine.feed(h, t)

    feed(20.516, Event="Newchannel", Channel=name + "1", Uniqueid=c1, Context="from-pstn",
         Exten="0312345678", CallerIDNum="09024682468")
    feed(20.518, Event="Newchannel", Channel=name + "2", Uniqueid=c2, Context="from-pstn",
         Exten="0312345678", CallerIDNum="09024682468")
    feed(26.544, Event="QueueCallerJoin", Channel=name + "2", Uniqueid=c2, Queue="q-sup",
         Position="1")
    feed(26.544, Event="Newchannel", Channel="Local/301@operators-00000003;1", Uniqueid=m1,
         Context="operators", Exten="301")
    feed(26.544, Event="AgentCalled", Uniqueid=c2, Queue="q-sup", DestUniqueid=m1,
         Interface="Local/301@operators/n")
    if gone_at is not None and gone_at < 29.489:
        feed(gone_at, Event="HangupRequest", Channel=name + "2", Uniqueid=c2, Cause="0")
        feed(gone_at, Event="Hangup", Channel=name + "1", Uniqueid=c1, Cause="0")
    feed(29.489, Event="QueueCallerLeave", Uniqueid=c2, Queue="q-sup")
    feed(29.49, Event="AgentConnect", Uniqueid=c2, Queue="q-sup", DestUniqueid=m1,
         Interface="Local/301@operators/n", HoldTime="3", RingTime="2")
    if gone_at is not None and gone_at >= 29.489:
        feed(gone_at, Event="HangupRequest", Channel=name + "2", Uniqueid=c2, Cause="0")
        feed(gone_at, Event="Hangup", Channel=name + "1", Uniqueid=c1, Cause="0")
    if bridge:
        feed(29.49, Event="BridgeEnter", Channel="Local/301@operators-00000003;1",
             Uniqueid=m1, BridgeUniqueid="1827d13f")
        feed(29.49, Event="BridgeEnter", Channel=name + "2", Uniqueid=c2,
             BridgeUniqueid="1827d13f")
    feed(34.555, Event="AgentComplete", Uniqueid=c2, Queue="q-sup",
         Interface="Local/301@operators/n", HoldTime="3", TalkTime=talk, Reason="caller")
    feed(34.556, Event="Hangup", Channel="Local/301@operators-00000003;1", Uniqueid=m1)
    feed(34.556, Event="Hangup", Channel=name + "2", Uniqueid=c2, Cause="16")
    if gone_at is None:
        feed(34.556, Event="Hangup", Channel=name + "1", Uniqueid=c1, Cause="16")


@pytest.mark.parametrize(("bridge", "gone_at", "talk", "outcome"), [
    (True, None, "5", "answered"),           # as recorded: bridged while both up
    (True, 28.9, "0", "short_abandon"),      # gone during the whisper, before CONNECT
    (True, 29.4895, "0", "short_abandon"),   # gone between CONNECT and the bridge
    (False, 29.4895, "0", "short_abandon"),  # ... with no bridge events in the stream
    (False, None, "5", "answered"),          # no bridge events, caller stayed: answered
    (False, 29.4895, "5", "answered"),       # no bridge events, 5 s of talk: answered
])
def test_answered_only_when_bridged_while_both_up(bridge: bool, gone_at: float | None,
                                                  talk: str, outcome: str) -> None:
    machine = LedgerMachine("t")
    _caller_story(machine, bridge=bridge, gone_at=gone_at, talk=talk)
    [call] = [c for c in machine.take_dirty() if c.linkedid == "1795347086.4"]
    assert call.ended_at is not None
    assert call.outcome == outcome
    assert (call.answered_by is None) == (outcome != "answered")


# -- evidence after an AMI gap ------------------------------------------------------------------

def _cut_points(folder: str | Path, after_event: str, through_event: str,
                through_channel: str = "from-pstn") -> tuple[int, int]:
    """(events served before the cut, messages lost in the gap) so that the connection drops
    right after the first ``after_event`` and the gap ends with the caller's
    ``through_event`` (the replay server's own disconnect knobs)."""
    path = folder if isinstance(folder, Path) else trace_dir(folder) / "ami.jsonl"
    [connection] = load_recording(path)
    served = 0
    cut_at = None
    for index, message in enumerate(connection.messages):
        if message.is_event:
            served += 1
        if cut_at is None and message.get("Event") == after_event:
            cut_at = (served, index + 1)
        elif cut_at is not None and message.get("Event") == through_event and \
                through_channel in (message.get("Channel") or ""):
            return cut_at[0], index + 1 - cut_at[1]
    raise AssertionError("no such events")


async def test_answer_in_an_ami_gap_is_settled_by_asterisks_evidence(pool, tmp_path) -> None:
    folder = trace_dir("answered_agent_hangup")
    served, lost = _cut_points("answered_agent_hangup", "QueueCallerJoin", "BridgeEnter")
    report, result = await replay(pool, tmp_path, folder / "ami.jsonl",
                                  disconnect_after=served, gap=lost)
    assert result.pipeline.client.stats.connects == 2
    [call] = report
    # AgentConnect and the bridge were never seen; after the reconnect the channel list
    # showed the caller bridged with 201, then AgentComplete said HoldTime 4, TalkTime 7.
    assert (call["outcome"], call["answered_by"], call["end_seen"]) == ("answered", "201",
                                                                        True)
    assert (call["wait_s"], call["talk_s"]) == (4.0, 7.0)


def _snapshot(uniqueid: str, name: str, context: str, bridge: str | None) -> SnapshotChannel:
    return SnapshotChannel(uniqueid=uniqueid, linkedid="1795346827.0", name=name,
                           context=context, exten="0312345678", caller_number="09011112222",
                           caller_name=None, accountcode="KSL", application="Queue",
                           bridge_id=bridge, duration_s=10)


def _waiting_then_gap(evidence: list[dict[str, str]]) -> Any:
    """answered_agent_hangup's call seen joining q-ksl, then an AMI gap; after it the channel
    list shows the caller alive but (unlike the recording) no bridge: only ``evidence``
    (events shaped as recorded after the answer) can tell what happened."""
    m = LedgerMachine("t")
    caller = "Local/0312345678@from-pstn-00000000;"
    m.feed({"Event": "Newchannel", "Channel": caller + "1", "Uniqueid": "1795346827.0",
            "Linkedid": "1795346827.0", "Context": "from-pstn", "Exten": "0312345678",
            "CallerIDNum": "09011112222"}, 100.0)
    m.feed({"Event": "Newchannel", "Channel": caller + "2", "Uniqueid": "1795346827.1",
            "Linkedid": "1795346827.0", "Context": "from-pstn", "Exten": "0312345678"}, 100.0)
    m.feed({"Event": "QueueCallerJoin", "Uniqueid": "1795346827.1",
            "Linkedid": "1795346827.0", "Queue": "q-ksl", "Position": "1"}, 106.0)
    m.apply_snapshot([_snapshot("1795346827.0", caller + "1", "from-pstn", None),
                      _snapshot("1795346827.1", caller + "2", "from-pstn", None)], [], 112.0)
    for event in evidence:
        m.feed({"Linkedid": "1795346827.0", **event}, 117.0)
    m.feed({"Event": "Hangup", "Uniqueid": "1795346827.1", "Linkedid": "1795346827.0"}, 117.1)
    m.feed({"Event": "Hangup", "Uniqueid": "1795346827.0", "Linkedid": "1795346827.0"}, 117.1)
    return m.ended["1795346827.0"]


def test_after_a_gap_agent_complete_alone_is_evidence_of_the_answer() -> None:
    call = _waiting_then_gap([{
        "Event": "AgentComplete", "Uniqueid": "1795346827.1", "Queue": "q-ksl",
        "Interface": "Local/201@operators/n", "MemberName": "op201", "HoldTime": "4",
        "TalkTime": "7", "Reason": "agent"}])
    assert (call.outcome, call.answered_by, call.wait_s, call.talk_s) == \
        ("answered", "201", 4.0, 7.0)


def test_after_a_gap_the_callers_cdr_alone_is_evidence_of_the_answer() -> None:
    call = _waiting_then_gap([{
        "Event": "Cdr", "Channel": "Local/0312345678@from-pstn-00000000;2",
        "DestinationChannel": "Local/201@operators-00000001;1", "LastApplication": "Queue",
        "Duration": "17", "BillableSeconds": "17", "Disposition": "ANSWERED",
        "UniqueID": "1795346827.1", "UserField": ""}])
    assert (call.outcome, call.answered_by) == ("answered", "201")


def test_after_a_gap_without_evidence_the_outcome_is_unknown_not_a_guess() -> None:
    call = _waiting_then_gap([])
    assert call.outcome == "unknown" and call.answered_by is None


def test_after_a_gap_a_caller_still_waiting_who_hangs_up_abandoned() -> None:
    m = LedgerMachine("t")
    m.feed({"Event": "Newchannel", "Channel": "Local/x@from-pstn-0;2", "Uniqueid": "9.1",
            "Linkedid": "9.1", "Context": "from-pstn", "Exten": "0312345678"}, 100.0)
    m.feed({"Event": "QueueCallerJoin", "Uniqueid": "9.1", "Linkedid": "9.1",
            "Queue": "q-ksl", "Position": "1"}, 101.0)
    snap = dataclasses.replace(_snapshot("9.1", "Local/x@from-pstn-0;2", "from-pstn", None),
                               linkedid="9.1")
    m.apply_snapshot([snap], [SnapshotQueueEntry("q-ksl", "9.1", 1, 9.0)], 110.0)
    m.feed({"Event": "Hangup", "Uniqueid": "9.1", "Linkedid": "9.1"}, 130.0)
    assert m.ended["9.1"].outcome == "abandoned"


# -- fallback_routed survives an outage ---------------------------------------------------------

def test_the_rendered_fallback_leaves_a_trace_in_the_cdr() -> None:
    sample = Path(__file__).resolve().parents[1] / "deploy" / "clients.sample.yaml"
    directory = parse_clients(sample.read_text(), "clients.sample.yaml")
    text = render_fallback(directory)
    routes = text.count(",1,Set(")
    assert routes > 0
    assert text.count(f"Set({v.ROUTE_SOURCE}={v.FALLBACK})") == routes
    assert text.count("Set(CDR(userfield)=orikaeshi-fallback)") == routes


async def test_fallback_call_picked_up_from_the_channel_list_keeps_its_flag(
        pool, tmp_path) -> None:
    """agi_server_down: the service is away from before the call until after the dialplan's
    fallback set ROUTE_SOURCE and queued the caller; back, it learns the call from
    CoreShowChannels (no variables there) and asks ``Getvar ROUTE_SOURCE``.

    The replay server holds the recording after the reconnect until that question came, as
    a PBX whose call is still going would still have the channel to answer about."""
    folder = trace_dir("agi_server_down")
    served, lost = _cut_points("agi_server_down", "FullyBooted", "QueueCallerJoin")
    gate = asyncio.Event()
    gate.set()
    server = ReplayServer(load_recording(folder / "ami.jsonl"), disconnect_after=served,
                          gap=lost, hold_after_cut=True, gate=gate)

    def asked() -> list[dict[str, str]]:
        return [a for a in server.actions if a.get("Action", "").lower() == "getvar"]

    async def release_after_getvar() -> None:
        await server.cut.wait()
        gate.clear()
        server.resume()
        await eventually(lambda: len(asked()) >= 2, timeout=30, what="Getvar")
        gate.set()

    async with running(release_after_getvar()):
        result = await replay_into(pool, config_for(tmp_path), server, pbx_id="pbx1")
    async with pool.acquire() as conn:
        [call] = await inbound_report(conn, "pbx1")
    assert result.pipeline.client.stats.connects == 2
    assert call["fallback_routed"] is True
    assert {a["Variable"] for a in asked()} == {v.ROUTE_SOURCE}
    assert any(a["Channel"].endswith(";2") for a in asked())


def test_cdr_userfield_flags_the_call_in_the_ledger() -> None:
    """The ``Cdr`` event of agi_server_down's caller, with the fallback's userfield (the
    recording's reference dialplan did not set it; the project's does)."""
    [real] = load_recording(trace_dir("agi_server_down") / "ami.jsonl")
    m = LedgerMachine("t")
    for message in real.messages:
        h = {k: value or "" for k, value in message.headers}
        if h.get("Event") == "VarSet" and h.get("Variable") == v.ROUTE_SOURCE:
            continue  # as if it had been missed
        if h.get("Event") == "Cdr" and h.get("LastApplication") == "Queue":
            h["UserField"] = v.FALLBACK_USERFIELD
        m.feed(h, message.t or 0.0)
    [call] = m.ended.values()
    assert call.fallback_routed is True and call.outcome == "answered"


async def test_reconcile_flags_a_fallback_call_it_adds(pool, db_url: str, tmp_path: Path,
                                                       capsys) -> None:
    folder = trace_dir("agi_server_down")
    lines = (folder / "cdr.csv").read_text().splitlines()
    # The project's fallback sets CDR(userfield) on the caller's queued channel.
    cdr = "\n".join(line[:-2] + '"orikaeshi-fallback"' if '"Queue"' in line and
                    line.endswith('""') else line for line in lines) + "\n"
    (tmp_path / "Master.csv").write_text(cdr)
    config = dataclasses.replace(config_for(tmp_path), database_url=db_url)
    args = argparse.Namespace(pbx=None, cdr=tmp_path / "Master.csv",
                              queue_log=folder / "queue_log", since=None, until=None,
                              dry_run=False, json=True)
    await reconcile_command(config, args)
    out = json.loads(capsys.readouterr().out)
    assert [a["fallback_routed"] for a in out["additions"]] == [True]
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT outcome, fallback_routed FROM calls")
    assert (row["outcome"], row["fallback_routed"]) == ("answered", True)


# -- reconcile never creates two calls for one --------------------------------------------------

SCENARIOS = sorted(p.parent.name for p in TRACES.glob("*/scenario.json")
                   if (p.parent / "cdr.csv").exists() and (p.parent / "queue_log").exists())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_reconcile_on_an_empty_ledger_adds_each_call_once(scenario: str) -> None:
    folder = trace_dir(scenario)
    truth = json.loads((folder / "scenario.json").read_text())
    inbound = [c for c in truth["calls"] if c["direction"] == "inbound"]
    findings = compare([], read_cdr((folder / "cdr.csv").read_text(), UTC_TZ),
                       read_queue_log((folder / "queue_log").read_text()),
                       inbound_contexts=frozenset({"from-pstn"}), short_abandon_s=5.0)
    assert len(findings.additions) == len(inbound)
    assert sorted(a.caller_number for a in findings.additions) == \
        sorted(c["caller_number"] for c in inbound)
    seen = [u for a in findings.additions for u in a.uniqueids]
    assert len(seen) == len(set(seen)), "a channel in two calls"


async def test_a_connect_written_before_the_caller_was_found_gone_is_taken_back(pool) -> None:
    """The writer may flush between AgentConnect and the caller's BridgeEnter: that row
    looks answered.  The final record (caller gone before the bridge) must not be merged
    with it into an abandoned call that still has an answer time and a member."""
    machine = LedgerMachine("pbx1")
    story = [m for m in whisper_hangup_recording().messages if m.is_event]
    # As recorded, the caller's hang-up came before the connect; here it comes between the
    # connect and the bridge, the window in which a provisional answer can be written.
    hangup = [m for m in story if (m.t or 0) == 34.044]
    rest = [m for m in story if (m.t or 0) != 34.044]
    connect = next(i for i, m in enumerate(rest) if m.get("Event") == "AgentConnect")
    first, second = rest[:connect + 1], hangup + rest[connect + 1:]
    async with pool.acquire() as conn:
        for part in (first, second):
            for message in part:
                machine.feed({k: value or "" for k, value in message.headers},
                             1795347000 + (message.t or 0.0))
            await write_records(conn, [r for call in machine.take_dirty()
                                       for r in call_records(call)])
        row = await conn.fetchrow("SELECT outcome, answered_at, answered_by, talk_s "
                                  "FROM calls WHERE linkedid = '1795347086.4'")
        stint = await conn.fetchrow("SELECT result, connected_at, agent FROM stints "
                                    "WHERE linkedid = '1795347086.4'")
    assert dict(row) == {"outcome": "abandoned", "answered_at": None, "answered_by": None,
                         "talk_s": None}
    assert dict(stint) == {"result": "abandoned", "connected_at": None, "agent": None}


WHISPER_FIXTURES = sorted((Path(__file__).resolve().parent / "fixtures").glob(
    "whisper_hangup_*/ami.jsonl"))


@pytest.mark.parametrize("recording", WHISPER_FIXTURES, ids=lambda p: p.parent.name)
async def test_live_recorded_whisper_hangup_replays_to_a_missed_call(recording: Path, pool,
                                                                     tmp_path) -> None:
    """Recorded from Asterisk 20 and 23 (tests/fixtures/README.md): CONNECT after the caller
    hung up during the whisper, then COMPLETECALLER with talk 0."""
    events = [m for c in load_recording(recording) for m in c.messages if m.is_event]
    connect = next(m for m in events if m.get("Event") == "AgentConnect")
    assert connect.get("HoldTime") == "13"
    report, _ = await replay(pool, tmp_path, recording)
    [call] = report
    assert (call["outcome"], call["answered_by"], call["answered_at"], call["talk_s"]) == \
        ("abandoned", None, None, None)
    # Joined, then 6.5 s until the caller's hang-up (not the 13 s HoldTime, which runs to
    # the end of the whisper).
    assert call["wait_s"] == pytest.approx(6.5, abs=0.1)


@pytest.mark.parametrize("recording", WHISPER_FIXTURES, ids=lambda p: p.parent.name)
@pytest.mark.parametrize("lost", ["the caller's hang-up", "the hang-up, connect and bridge"])
async def test_whisper_hangup_inside_an_ami_gap_is_no_answer(recording: Path, lost: str, pool,
                                                              tmp_path) -> None:
    """The live recordings cut by the replay server: the caller's hang-up during the whisper
    falls in the gap; after the reconnect the channel list lacks the caller's ``;1`` half.
    Then either the CONNECT comes (first case), or only the tail (second case): the caller's
    Cdr ``ANSWERED`` with 201 as destination, and AgentComplete ``TalkTime: 0``."""
    through = ("Hangup", ";1") if lost == "the caller's hang-up" else ("BridgeEnter", ";2")
    served, gap = _cut_points(recording, "QueueCallerJoin", through[0],
                              "from-pstn-00000000" + through[1])
    report, result = await replay(pool, tmp_path, recording, disconnect_after=served, gap=gap)
    assert result.pipeline.client.stats.connects == 2
    [call] = report
    assert (call["outcome"], call["answered_by"], call["answered_at"]) == \
        ("abandoned", None, None)


def _ledger_row(linkedid: str, uniqueids: list[str], outcome: str, *, wait_s: float,
                fallback_routed: bool = False) -> dict[str, Any]:
    return {"linkedid": linkedid, "caller_uniqueid": uniqueids[-1], "uniqueids": uniqueids,
            "started_at": None, "outcome": outcome, "answered_by": None, "wait_s": wait_s,
            "fallback_routed": fallback_routed}


def test_reconcile_accepts_the_ledgers_measured_wait_for_a_whisper_hangup() -> None:
    """queue_log's CONNECT hold (18 s, to the whisper's end) says abandoned; had the caller
    left after 3 s, the ledger's short_abandon is no difference."""
    folder = trace_dir("repeat_caller_escalated")
    cdr = read_cdr((folder / "cdr.csv").read_text(), UTC_TZ)
    calls = [_ledger_row("1795347067.0", ["1795347067.0", "1795347067.1"], "abandoned",
                         wait_s=7.4),
             _ledger_row("1795347086.4", ["1795347086.4", "1795347086.5"], "short_abandon",
                         wait_s=3.0)]
    findings = compare(calls, cdr, read_queue_log(whisper_hangup_queue_log()),
                       inbound_contexts=frozenset({"from-pstn"}), short_abandon_s=5.0)
    assert findings.differences == []
    # ... but an answer is a difference: queue_log says the caller was gone.
    calls[1]["outcome"] = "answered"
    findings = compare(calls, cdr, read_queue_log(whisper_hangup_queue_log()),
                       inbound_contexts=frozenset({"from-pstn"}), short_abandon_s=5.0)
    assert [(d.kind, d.linkedid) for d in findings.differences] == [("outcome",
                                                                      "1795347086.4")]


def test_reconcile_flags_a_ledger_call_whose_cdr_carries_the_fallback_trace() -> None:
    folder = trace_dir("agi_server_down")
    rows = read_cdr((folder / "cdr.csv").read_text(), UTC_TZ)
    traced = [dataclasses.replace(r, userfield=v.FALLBACK_USERFIELD) if r.lastapp == "Queue"
              else r for r in rows]
    [call] = compare([], rows, {}, inbound_contexts=frozenset({"from-pstn"}),
                     short_abandon_s=5.0).additions
    ledger = _ledger_row(call.linkedid, call.uniqueids, "answered", wait_s=3.0)
    for cdr, flagged in ((rows, []), (traced, [call.linkedid])):
        findings = compare([ledger], cdr, read_queue_log((folder / "queue_log").read_text()),
                           inbound_contexts=frozenset({"from-pstn"}), short_abandon_s=5.0)
        assert findings.fallback_flags == flagged
    already = {**ledger, "fallback_routed": True}
    assert compare([already], traced, {}, inbound_contexts=frozenset({"from-pstn"}),
                   short_abandon_s=5.0).fallback_flags == []
