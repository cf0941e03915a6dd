"""The ledger's state machine and outcome rule on event sequences the recordings do not
cover, built in the shapes a real Asterisk emits (see the recordings for the real thing)."""

from __future__ import annotations

from typing import Any

import pytest

from service.ledger.ingest import LedgerIngest, event_time
from service.ledger.machine import LedgerMachine
from service.ledger.model import Call

CALLER = "Local/0312345678@from-pstn-00000000;2"


class Story:
    """Feed one inbound call's events with readable helpers; times in seconds."""

    def __init__(self, machine: LedgerMachine | None = None, linkedid: str = "100.0") -> None:
        self.m = machine or LedgerMachine("t")
        self.linkedid = linkedid
        self.caller = linkedid[:-1] + "1"
        self.calls: dict[str, Call] = {}
        self.joined = 0.0

    def feed(self, t: float, **headers: str) -> Story:
        headers.setdefault("Linkedid", self.linkedid)
        self.m.feed(headers, t)
        for call in self.m.take_dirty():
            self.calls[call.linkedid] = call
        return self

    def arrive(self, t: float = 0.0, number: str = "09011112222", did: str = "0312345678",
               context: str = "from-pstn") -> Story:
        self.feed(t, Event="Newchannel", Channel=CALLER, Uniqueid=self.caller, Context=context,
                  Exten=did, CallerIDNum=number, CallerIDName="Tanaka")
        return self.var(t, "ROUTE_CLIENT", "KSL")

    def var(self, t: float, name: str, value: str) -> Story:
        return self.feed(t, Event="VarSet", Channel=CALLER, Uniqueid=self.caller,
                         Variable=name, Value=value)

    def join(self, t: float, queue: str = "q-ksl") -> Story:
        self.joined = t
        return self.feed(t, Event="QueueCallerJoin", Uniqueid=self.caller, Queue=queue,
                         Position="1")

    def leave(self, t: float, queue: str = "q-ksl") -> Story:
        return self.feed(t, Event="QueueCallerLeave", Uniqueid=self.caller, Queue=queue)

    def abandon(self, t: float, queue: str = "q-ksl") -> Story:
        # HoldTime is the caller's wait in whole seconds, as Asterisk counts it.
        return self.feed(t, Event="QueueCallerAbandon", Uniqueid=self.caller, Queue=queue,
                         HoldTime=str(int(t - self.joined)))

    def hangup(self, t: float) -> Story:
        return self.feed(t, Event="Hangup", Uniqueid=self.caller, Cause="16")

    @property
    def call(self) -> Call:
        return self.calls[self.linkedid]


def test_exit_key_emits_leave_without_abandon() -> None:
    # The caller pressed a key: Queue() returns, the dialplan goes on (a menu), later hang-up.
    s = Story().arrive().join(1).leave(12)
    s.feed(12, Event="Newexten", Uniqueid="100.1", Application="Playback", Context="from-pstn")
    s.hangup(20)
    assert s.call.outcome == "exit_key"
    assert s.call.wait_s == pytest.approx(11)


def test_leave_when_empty_is_no_agents_not_an_abandon() -> None:
    s = Story().arrive().join(1).abandon(9).leave(9).var(9, "QUEUESTATUS", "LEAVEEMPTY")
    s.hangup(15)
    assert s.call.outcome == "no_agents"


def test_timeout_then_voicemail_is_timeout_with_voicemail() -> None:
    s = Story().arrive().join(1).abandon(31).leave(31).var(31, "QUEUESTATUS", "TIMEOUT")
    s.feed(40, Event="MessageWaiting", Uniqueid="100.1", Mailbox="1001@lab", Waiting="1")
    s.hangup(41)
    assert (s.call.outcome, s.call.voicemail_left, s.call.voicemail_box) == \
        ("timeout", True, "1001@lab")


@pytest.mark.parametrize(("held", "outcome"), [(4.9, "short_abandon"), (5.0, "abandoned")])
def test_short_abandon_threshold(held: float, outcome: str) -> None:
    s = Story().arrive().join(1).abandon(1 + held).leave(1 + held).hangup(1 + held)
    assert s.call.outcome == outcome


def test_overflow_timeout_then_answered_in_second_queue_is_answered() -> None:
    s = Story().arrive().join(1, "q-ksl-legal").abandon(21, "q-ksl-legal")
    s.leave(21, "q-ksl-legal").var(21, "QUEUESTATUS", "TIMEOUT").join(21, "q-ksl")
    s.feed(25, Event="AgentConnect", Uniqueid="100.1", Queue="q-ksl",
           Interface="PJSIP/202", DestUniqueid="200.1", HoldTime="4")
    s.feed(40, Event="AgentComplete", Uniqueid="100.1", Queue="q-ksl", Interface="PJSIP/202",
           Reason="caller", TalkTime="15")
    s.hangup(40)
    call = s.call
    assert (call.outcome, call.answered_by) == ("answered", "202")
    assert [st.result for st in call.stints] == ["timeout", "answered"]
    assert call.wait_s == pytest.approx(24) and call.talk_s == pytest.approx(15)


def test_full_and_joinempty_leave_no_queue_event_but_their_status() -> None:
    full = Story().arrive().var(1, "ROUTE_QUEUE", "q-mdc").var(1, "QUEUESTATUS", "FULL")
    full.hangup(9)
    empty = Story(linkedid="300.0").arrive().var(1, "QUEUESTATUS", "JOINEMPTY").hangup(9)
    assert full.call.outcome == "queue_full" and empty.call.outcome == "no_agents"


def test_after_hours_and_greeting_hangup() -> None:
    closed = Story().arrive().var(1, "ROUTE_ACTION", "closed").hangup(12)
    greeting = Story(linkedid="300.0").arrive().var(1, "ROUTE_ACTION", "queue").hangup(3)
    assert closed.call.outcome == "after_hours"
    assert greeting.call.outcome == "ivr_hangup"
    assert greeting.call.wait_s is None


def test_forward_to_outside_number() -> None:
    s = Story().arrive().var(1, "ROUTE_ACTION", "forward").var(1, "FORWARD_TO", "09099998888")
    s.feed(2, Event="DialBegin", Uniqueid="100.1", DestUniqueid="400.1")
    s.feed(8, Event="DialEnd", Uniqueid="100.1", DestUniqueid="400.1", DialStatus="ANSWER")
    s.hangup(30)
    assert (s.call.outcome, s.call.forwarded_to, s.call.forward_answered) == \
        ("forwarded", "09099998888", True)


def test_withheld_caller_and_fallback_route() -> None:
    s = Story().arrive(number="anonymous").var(1, "ROUTE_SOURCE", "fallback").hangup(3)
    assert s.call.caller_number == "anonymous" and s.call.fallback_routed


def test_escalation_reason_is_recorded() -> None:
    s = Story().arrive().var(1, "ESCALATED", "1").var(1, "ESCALATION_REASON", "repeat_caller")
    s.hangup(2)
    assert (s.call.escalated, s.call.escalation_reason) == (True, "repeat_caller")


def test_events_of_other_calls_and_unknown_channels_are_ignored() -> None:
    s = Story().arrive()
    s.feed(1, Event="Hangup", Uniqueid="999.9", Linkedid="999.0")
    s.feed(1, Event="AgentComplete", Queue="q-x", Interface="PJSIP/1")
    assert s.m.calls and s.call.ended_at is None


def test_event_time_prefers_the_timestamp_header() -> None:
    assert event_time({"Timestamp": "1795346827.250000"}, 5.0) == 1795346827.25
    assert event_time({"Timestamp": "garbage"}, 5.0) == 5.0
    assert event_time({}, 5.0) == 5.0


def test_one_bad_event_does_not_cost_the_rest_of_the_batch() -> None:
    class Writer:
        def __init__(self) -> None:
            self.calls: list[Any] = []

        def submit(self, calls: list[Any]) -> None:
            self.calls.extend(calls)

    class BuggyMachine(LedgerMachine):
        """Stands for a bug triggered by one odd event."""

        def feed(self, event: Any, ts: float, timed: bool = True) -> None:
            if event.get("Event") == "Boom":
                raise KeyError("a bug")
            super().feed(event, ts, timed)

    machine = BuggyMachine("t")
    writer = Writer()
    ingest = LedgerIngest(machine, writer, clock=lambda: 10.0)  # type: ignore[arg-type]
    first = {"Event": "Newchannel", "Uniqueid": "100.0", "Linkedid": "100.0",
             "Context": "from-pstn", "Exten": "0312345678", "CallerIDNum": "0311112222"}
    ingest.on_events([first, {"Event": "Boom"}, {**first, "Uniqueid": "100.1"}])
    assert ingest.bad_events == 1
    assert machine.calls["100.0"].uniqueids == ["100.0", "100.1"]
    assert writer.calls, "the batch's calls still went to the writer"


def _handset_dial(machine: LedgerMachine, linkedid: str, guard_allows: bool) -> list[Call]:
    """Operator 201's handset dials 0312340000 from [orikaeshi-phones]; the shipped
    [orikaeshi-outbound] runs the guard, then Dials only when it allowed the call."""
    phone = f"PJSIP/201-0000000{linkedid[0]}"
    seen: list[Call] = []

    def feed(t: float, **headers: str) -> None:
        headers.update(Linkedid=linkedid, Uniqueid=linkedid, Channel=phone,
                       AccountCode="KSL")
        machine.feed(headers, t)
        seen.extend(machine.take_dirty())

    feed(0.0, Event="Newchannel", Context="orikaeshi-phones", Exten="0312340000")
    for app in ("Goto", "NoOp", "Gosub"):
        context = "orikaeshi-phones" if app == "Goto" else "orikaeshi-outbound"
        feed(0.1, Event="Newexten", Context=context, Exten="0312340000", Application=app,
             AppData="orikaeshi-outbound-guard,s,1(0312340000)" if app == "Gosub" else "")
    feed(0.2, Event="Newexten", Context="orikaeshi-outbound-guard", Exten="s",
         Application="AGI", AppData="agi://127.0.0.1:4573/outbound_guard,0312340000,KSL,")
    feed(0.3, Event="VarSet", Variable="OUTBOUND_ALLOWED", Value="1" if guard_allows else "0")
    if guard_allows:
        feed(0.4, Event="Newexten", Context="orikaeshi-outbound", Exten="0312340000",
             Application="Dial", AppData="PJSIP/0312340000@trunk,45")
    else:
        feed(0.4, Event="Newexten", Context="orikaeshi-outbound-guard", Exten="s",
             Application="Playback", AppData="orikaeshi/outbound-refused-hours")
    feed(5.0, Event="Hangup", Cause="21" if not guard_allows else "16")
    return seen


def test_a_dial_the_outbound_guard_refused_is_not_an_outbound_call() -> None:
    """Nothing was dialled: no unanswered outbound call (which would count as an attempt on
    the callee's obligation and in the client's outbound usage); the refusal's evidence is
    the guard's row in outbound_decisions."""
    machine = LedgerMachine("t", outbound_contexts=("orikaeshi-outbound",))
    assert [c for c in _handset_dial(machine, "1.1", guard_allows=False)
            if c.direction == "outbound"] == []
    dialled = [c for c in _handset_dial(machine, "2.1", guard_allows=True)
               if c.direction == "outbound"]
    assert dialled, "the allowed dial is an outbound call"
    call = dialled[-1]
    assert (call.callee_number, call.placed_by, call.client) == ("0312340000", "201", "KSL")
    assert call.ended_at == 5.0
