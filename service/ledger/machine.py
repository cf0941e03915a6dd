"""The ledger's state machine: AMI events in, call records out.  Pure: no I/O, no clock.

Calls are keyed by (pbx, ``Linkedid``): Asterisk gives every channel of a call the Uniqueid of
its first channel as Linkedid (caller, both halves of Local channels, every member channel the
queue creates, transfers).  Events of different calls interleave freely; only per-channel order
is guaranteed, so everything is correlated by Uniqueid/Linkedid, never by stream position.

Only the events that change what the ledger records are handled (see ``_HANDLERS``); the others
(about half the stream: Newexten, DeviceStateChange, ...) are dropped after one dict lookup.

An answer is an answer only when the caller was connected.  Asterisk's order for an answered
queue call (answered_caller_hangup) is::

    Newstate        Channel: Local/211@operators-00000001;2   ChannelStateDesc: Up
    (the whisper plays to the member, ~0.9 s)
    QueueCallerLeave  Channel: Local/0663330001@from-pstn-00000000;2
    AgentConnect      Channel: Local/0663330001@from-pstn-00000000;2  HoldTime: 3  RingTime: 2
    BridgeEnter       Channel: Local/211@operators-00000001;1
    BridgeEnter       Channel: Local/0663330001@from-pstn-00000000;2

and a caller hanging up shows first on its own side (repeat_caller_escalated, first call)::

    HangupRequest   Channel: Local/0312345678@from-pstn-00000000;2   Cause: 0
    Hangup          Channel: Local/0312345678@from-pstn-00000000;1   Cause: 0

When those come before the caller's ``BridgeEnter`` (the caller hung up during the member's
whisper), app_queue still sends ``AgentConnect`` and then ``AgentComplete`` with
``Reason: caller`` and ``TalkTime: 0``; that stint is an abandon, not an answer.  Seen on a
live Asterisk 23.4.1 with Queue()'s gosub whisper (tests/fixtures/whisper_hangup_ast23)::

    QueueCallerLeave  Channel: Local/0312345678@from-pstn-00000000;2   (member picked up)
    HangupRequest     Channel: Local/0312345678@from-pstn-00000000;2   Cause: 0
    Hangup            Channel: Local/0312345678@from-pstn-00000000;1   Cause: 0
    AgentConnect      Channel: Local/0312345678@from-pstn-00000000;2   HoldTime: 13
    BridgeEnter       Channel: Local/201@test-operators-00000001;1
    BridgeEnter       Channel: Local/0312345678@from-pstn-00000000;2   (already gone)
    ...
    AgentComplete     HoldTime: 13  TalkTime: 0  Reason: caller        (no channel headers)
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agi import variables as v
from service.ledger.model import (
    ABANDONED,
    ANSWERED,
    EXIT_KEY,
    LEAVE_EMPTY,
    RING_ANSWERED,
    RING_BUSY,
    RING_CANCELLED,
    RING_FAILED,
    RING_NO_ANSWER,
    RINGING,
    TIMEOUT,
    TRANSFERRED,
    UNKNOWN,
    WAITING,
    WITHDRAWN,
    Call,
    QueueAttempt,
    RingAttempt,
    Stint,
)
from service.ledger.outcomes import decide_outcome

Event = Mapping[str, str]

_UNKNOWN_ID = ("", "<unknown>", "<Unknown>")
_AGENT_RE = re.compile(r"^[A-Za-z0-9_]+/([^@/;\-]+)")
_DIAL_RESULTS = {"ANSWER": "answered", "BUSY": "busy", "NOANSWER": "no_answer",
                 "CANCEL": "no_answer", "CONGESTION": "failed", "CHANUNAVAIL": "failed",
                 "DONTCALL": "failed", "TORTURE": "failed", "INVALIDARGS": "failed"}
_RING_RESULTS = {"ANSWER": RING_ANSWERED, "NOANSWER": RING_NO_ANSWER, "CANCEL": RING_CANCELLED,
                 "BUSY": RING_BUSY, "CONGESTION": RING_FAILED, "CHANUNAVAIL": RING_FAILED}
_STINT_STATUS = {"TIMEOUT": TIMEOUT, "LEAVEEMPTY": LEAVE_EMPTY, "LEAVEUNAVAIL": LEAVE_EMPTY,
                 "WITHDRAW": WITHDRAWN}
_JOIN_FAILURES = ("FULL", "JOINEMPTY", "JOINUNAVAIL")


def agent_id(interface_or_channel: str | None) -> str | None:
    """Operator id from a queue interface or channel name.

    >>> agent_id("Local/201@operators/n"), agent_id("PJSIP/202"), agent_id("SIP/203-0000a1")
    ('201', '202', '203')
    """
    if not interface_or_channel:
        return None
    match = _AGENT_RE.match(interface_or_channel)
    return match.group(1) if match else interface_or_channel


def _recount_answer(call: Call) -> None:
    """The call's answer from its stints: first connect, last member connected."""
    answered = [s for s in call.stints if s.connected_at is not None]
    call.answered_at = answered[0].connected_at if answered else None
    call.answered_by = answered[-1].agent if answered else None


def _clean_id(value: str | None) -> str | None:
    if value is None or value in _UNKNOWN_ID:
        return None
    return value


@dataclass(slots=True)
class Channel:
    uniqueid: str
    linkedid: str
    name: str
    caller_side: bool  # created in an inbound context: the caller's own channel(s)


@dataclass(frozen=True)
class SnapshotChannel:
    """One line of ``CoreShowChannels``: a channel alive when the snapshot was taken."""

    uniqueid: str
    linkedid: str
    name: str
    context: str
    exten: str
    caller_number: str | None
    caller_name: str | None
    accountcode: str | None
    application: str | None
    bridge_id: str | None
    duration_s: float


@dataclass(frozen=True)
class SnapshotQueueEntry:
    """One caller waiting in a queue, from ``QueueStatus`` (``QueueEntry``)."""

    queue: str
    uniqueid: str
    position: int | None
    wait_s: float


class LedgerMachine:
    """Builds calls from one PBX's AMI events."""

    def __init__(self, pbx_id: str, inbound_contexts: Iterable[str] = ("from-pstn",),
                 outbound_contexts: Iterable[str] = ("outbound",),
                 short_abandon_s: float = 5.0, recent_max: int = 2048) -> None:
        self.pbx_id = pbx_id
        self.inbound_contexts = frozenset(inbound_contexts)
        self.outbound_contexts = frozenset(outbound_contexts)
        self.short_abandon_s = short_abandon_s
        self.channels: dict[str, Channel] = {}
        self.calls: dict[str, Call] = {}          # live calls the ledger records
        self.others: dict[str, Call] = {}         # live internal calls (spying, handsets)
        self.rings: dict[str, tuple[Call, RingAttempt]] = {}  # member uniqueid -> ring
        self.connected: dict[tuple[str, str], tuple[Call, Stint]] = {}  # (queue, interface)
        self.dirty: dict[str, Call] = {}
        self.ended: OrderedDict[str, Call] = OrderedDict()  # recently ended, for late events
        self.recent_max = recent_max
        self.last_snapshot: list[SnapshotChannel] = []
        self.handled = 0
        self.ended_channels: dict[str, str] = {}  # uniqueid -> linkedid of recently ended
        # agent -> (time, HoldTime) of an AgentComplete without channel headers that said
        # "Reason: caller, TalkTime: 0": a caller gone before the bridge, call not named.
        self.unbridged_completes: OrderedDict[str, tuple[float, int | None]] = OrderedDict()
        self._timed = True

    # -- entry points ------------------------------------------------------------------------

    def feed(self, event: Event, ts: float, timed: bool = True) -> None:
        """Apply one event.  ``ts`` is the event's time (epoch seconds); ``timed`` says it is
        Asterisk's (a ``Timestamp`` header), not merely when the event was read."""
        handler = _HANDLERS.get(event.get("Event", ""))
        if handler is not None:
            self.handled += 1
            self._timed = timed
            handler(self, event, ts)

    def take_dirty(self) -> list[Call]:
        """Calls changed since the last call, and forget that they changed."""
        calls = list(self.dirty.values())
        self.dirty.clear()
        return calls

    def restore(self, call: Call) -> None:
        """Take over a call that another consumer (or an earlier run) left open."""
        store = self.calls if call.direction in ("inbound", "outbound") else self.others
        store[call.linkedid] = call
        call.live = set(call.uniqueids)
        for stint in call.stints:
            for ring in stint.rings:
                if ring.result == RINGING:
                    self.rings[ring.member_uniqueid] = (call, ring)
            if stint.connected_at is not None and stint.ended_at is None and stint.interface:
                self.connected[(stint.queue, stint.interface)] = (call, stint)

    def apply_channels(self, channels: list[SnapshotChannel],
                       now: float) -> list[tuple[str, str]]:
        """Resynchronise with the channels Asterisk says are alive (``CoreShowChannels``).

        Calls whose channels are all gone ended while we could not see them: they are closed
        as ``unknown`` (kept, never dropped) until reconciliation settles them.  Channels we
        never saw are adopted, so the calls they belong to are recorded from now on.

        Returns ``(linkedid, channel name)`` of each caller channel of the inbound calls
        adopted: they came without their variables, which the caller may ask the PBX for
        (``apply_variable``).
        """
        self._close_vanished({c.uniqueid for c in channels}, now)
        # Whoever was still waiting may have been answered, or may have left, while we could
        # not see: until Asterisk says which, that is not known.
        for call in self.calls.values():
            for stint in call.stints:
                if stint.left_at is None and stint.connected_at is None:
                    stint.gap = True
        known = set(self.calls)
        self._adopt_channels(channels, now)
        self.last_snapshot = channels
        return [(c.linkedid, c.name) for c in channels
                if c.linkedid not in known and c.context in self.inbound_contexts
                and c.linkedid in self.calls and self.calls[c.linkedid].direction == "inbound"]

    def apply_variable(self, linkedid: str, name: str, value: str, now: float) -> None:
        """A channel variable of a call read from the PBX (AMI ``Getvar``), applied as its
        ``VarSet`` would have been."""
        call = self.calls.get(linkedid)
        setter = _VARSETTERS.get(name)
        if call is None or setter is None:
            return
        setter(self, call, {"Variable": name, "Value": value, "Linkedid": linkedid}, value, now)
        self._touch(call, now)

    def apply_queue_entries(self, entries: list[SnapshotQueueEntry], now: float) -> None:
        """Resynchronise with the callers Asterisk says are waiting (``QueueStatus``); a caller
        in Queue() who is not waiting is talking to the member bridged with it."""
        self._adopt_waiting(self.last_snapshot, entries, now)
        self._adopt_bridged_answers(self.last_snapshot, entries, now)

    def apply_snapshot(self, channels: list[SnapshotChannel],
                       entries: list[SnapshotQueueEntry], now: float) -> None:
        self.apply_channels(channels, now)
        self.apply_queue_entries(entries, now)

    # -- helpers -----------------------------------------------------------------------------

    def _close_vanished(self, alive: set[str], now: float) -> None:
        for store in (self.calls, self.others):
            for call in list(store.values()):
                for uniqueid in [u for u in call.live if u not in alive]:
                    call.live.discard(uniqueid)
                    channel = self.channels.pop(uniqueid, None)
                    if channel is not None and channel.caller_side and \
                            call.direction == "inbound":
                        # A caller channel went while we could not see: the caller is gone
                        # (a CONNECT after this is no answer).
                        self._caller_gone(call, now)
                if not call.live:
                    call.end_seen = False
                    self._finish(call, call.last_event_at or now)

    def _adopt_channels(self, channels: list[SnapshotChannel], now: float) -> None:
        for snap in sorted(channels, key=lambda c: (c.linkedid != c.uniqueid, c.uniqueid)):
            if snap.uniqueid in self.channels:
                continue
            call = self._call_for_snapshot(snap, now)
            self.channels[snap.uniqueid] = Channel(
                snap.uniqueid, snap.linkedid, snap.name, snap.context in self.inbound_contexts)
            call.live.add(snap.uniqueid)
            if snap.uniqueid not in call.uniqueids:
                call.uniqueids.append(snap.uniqueid)
            if snap.context in self.inbound_contexts:
                call.caller_number = call.caller_number or snap.caller_number
                call.caller_name = call.caller_name or snap.caller_name
                call.client = call.client or snap.accountcode
            self._touch(call, now)

    def _adopt_waiting(self, channels: list[SnapshotChannel],
                       entries: list[SnapshotQueueEntry], now: float) -> None:
        by_uniqueid = {c.uniqueid: c for c in channels}
        for entry in entries:
            snap = by_uniqueid.get(entry.uniqueid)
            call = self._live_call(snap.linkedid) if snap else None
            if call is None:
                continue
            open_stint = call.open_stint(entry.queue)
            if open_stint is not None:
                open_stint.gap = False  # Asterisk says the caller is still waiting
                continue
            call.caller_uniqueid = call.caller_uniqueid or entry.uniqueid
            call.stints.append(Stint(seq=len(call.stints) + 1, queue=entry.queue,
                                     caller_uniqueid=entry.uniqueid,
                                     joined_at=now - entry.wait_s, position=entry.position))
            self._touch(call, now)

    def _live_call(self, linkedid: str | None) -> Call | None:
        if linkedid is None:
            return None
        return self.calls.get(linkedid) or self.others.get(linkedid)

    def _call_of(self, event: Event) -> Call | None:
        return self.calls.get(event.get("Linkedid", ""))

    def _touch(self, call: Call, ts: float) -> None:
        call.last_event_at = ts
        if call.direction in ("inbound", "outbound"):
            self.dirty[call.linkedid] = call

    def _call_for_snapshot(self, snap: SnapshotChannel, now: float) -> Call:
        call = self._live_call(snap.linkedid)
        if call is not None:
            return call
        inbound = snap.context in self.inbound_contexts
        call = Call(self.pbx_id, snap.linkedid, "inbound" if inbound else "internal",
                    started_at=now - snap.duration_s,
                    did=snap.exten if inbound else None)
        (self.calls if inbound else self.others)[snap.linkedid] = call
        return call

    def _adopt_bridged_answers(self, channels: list[SnapshotChannel],
                               entries: list[SnapshotQueueEntry], now: float) -> None:
        """A caller in Queue() that is not waiting in any queue is talking to a member."""
        waiting = {e.uniqueid for e in entries}
        bridges: dict[str, list[SnapshotChannel]] = {}
        for snap in channels:
            if snap.bridge_id:
                bridges.setdefault(snap.bridge_id, []).append(snap)
        for snap in channels:
            call = self.calls.get(snap.linkedid)
            if (call is None or call.direction != "inbound" or snap.application != "Queue"
                    or snap.uniqueid in waiting or not snap.bridge_id
                    or call.answered_at is not None):
                continue
            if call.caller_gone_at is not None:
                # Another caller channel vanished: the caller hung up, and app_queue's bridge
                # of a caller already gone is torn down at once.  No answer; Asterisk's
                # AgentComplete and Cdr that follow say what it was.
                continue
            peers = [p for p in bridges.get(snap.bridge_id, []) if p.uniqueid != snap.uniqueid]
            if not peers:
                continue
            stint = call.stints[-1] if call.stints else None
            if stint is None:
                stint = Stint(seq=1, queue=call.route_queue or "", caller_uniqueid=snap.uniqueid,
                              joined_at=now)
                call.stints.append(stint)
            call.caller_uniqueid = call.caller_uniqueid or snap.uniqueid
            stint.connected_at = stint.connected_at or now
            stint.left_at = stint.left_at or now
            stint.agent = agent_id(peers[0].name)
            stint.result = ANSWERED
            # Both channels are alive and bridged: an answer.  Its hold and talk were not
            # seen: AgentComplete's HoldTime/TalkTime will give them.
            stint.gap = False
            stint.measured = False
            call.answered_at = call.answered_at or now
            call.answered_by = stint.agent
            self._touch(call, now)

    def _finish(self, call: Call, ts: float) -> None:
        """All channels of the call hung up (or vanished during an AMI gap)."""
        for stint in call.stints:
            # No BridgeEnter was seen, and no sign of the caller going either (channels
            # that vanished in a gap): the connect stands.
            stint.awaiting_bridge = False
            if stint.cdr_member is not None:
                # The caller's Cdr said ANSWERED after a gap and no AgentComplete said
                # otherwise: answered by that member.
                self._answer_from_cdr(call, stint, *stint.cdr_member)
            if stint.connected_at is not None:
                if stint.ended_at is None:
                    stint.ended_at = ts
                # Kept in ``connected``: AgentComplete (with Asterisk's TalkTime) may come
                # after the last Hangup, without any channel header (supervisor_whisper_
                # chanspy); the member's next connect replaces the entry.
                continue
            # A hang-up after an AMI gap proves nothing about what happened in the gap.
            seen = call.end_seen and not stint.gap
            if stint.left_at is None:
                stint.left_at = ts
                stint.result = ABANDONED if seen else UNKNOWN
            elif stint.result == WAITING:
                if stint.abandon_seen:
                    stint.result = ABANDONED
                else:
                    stint.result = EXIT_KEY if seen else UNKNOWN
            for ring in stint.rings:
                if ring.result == RINGING:
                    ring.result = RING_CANCELLED
                    ring.ended_at = ts
                self.rings.pop(ring.member_uniqueid, None)
        call.ended_at = ts
        if call.direction == "inbound":
            if call.escalated and not call.escalation_reason:
                call.escalation_reason = "transfer" if call.transfers else "unspecified"
            call.outcome = decide_outcome(call, self.short_abandon_s)
        elif call.direction == "outbound" and call.dial_result is None:
            call.dial_result = "no_answer" if call.end_seen else None
        store = self.calls if call.linkedid in self.calls else self.others
        store.pop(call.linkedid, None)
        if call.direction in ("inbound", "outbound"):
            self._touch(call, ts)
            self.ended[call.linkedid] = call
            # cdr_manager's Cdr events may follow the last Hangup: keep the channels findable.
            for uniqueid in call.uniqueids:
                self.ended_channels[uniqueid] = call.linkedid
            while len(self.ended) > self.recent_max:
                _, old = self.ended.popitem(last=False)
                for uniqueid in old.uniqueids:
                    self.ended_channels.pop(uniqueid, None)

    # -- channel lifecycle -------------------------------------------------------------------

    def _on_newchannel(self, ev: Event, ts: float) -> None:
        uniqueid, linkedid = ev.get("Uniqueid"), ev.get("Linkedid")
        if not uniqueid or not linkedid or uniqueid in self.channels:
            return
        context = ev.get("Context", "")
        caller_side = context in self.inbound_contexts
        self.channels[uniqueid] = Channel(uniqueid, linkedid, ev.get("Channel", ""), caller_side)
        call = self._live_call(linkedid)
        if call is None:
            if linkedid in self.ended:
                return  # a straggler of a call already closed (e.g. a late local half)
            inbound = caller_side
            call = Call(self.pbx_id, linkedid, "inbound" if inbound else "internal",
                        started_at=ts, did=ev.get("Exten") if inbound else None)
            (self.calls if inbound else self.others)[linkedid] = call
        call.live.add(uniqueid)
        call.uniqueids.append(uniqueid)
        if caller_side and call.direction == "inbound":
            self._caller_id(call, ev)
            if ev.get("AccountCode"):
                call.client = call.client or ev["AccountCode"]
        self._touch(call, ts)

    def _caller_id(self, call: Call, ev: Event) -> None:
        number = _clean_id(ev.get("CallerIDNum"))
        name = _clean_id(ev.get("CallerIDName"))
        if number is not None:
            call.caller_number = number
        if name is not None:
            call.caller_name = name

    def _on_newcallerid(self, ev: Event, ts: float) -> None:
        channel = self.channels.get(ev.get("Uniqueid", ""))
        if channel is None or not channel.caller_side:
            return
        call = self.calls.get(channel.linkedid)
        if call is not None and call.direction == "inbound":
            self._caller_id(call, ev)
            self._touch(call, ts)

    def _on_newaccountcode(self, ev: Event, ts: float) -> None:
        channel = self.channels.get(ev.get("Uniqueid", ""))
        if channel is None:
            return
        call = self._live_call(channel.linkedid)
        code = ev.get("AccountCode") or None
        if call is None or code is None:
            return
        if channel.caller_side or call.direction != "inbound":
            call.client = call.client or code
            self._touch(call, ts)

    def _on_newexten(self, ev: Event, ts: float) -> None:
        context = ev.get("Context")
        application = ev.get("Application")
        if context not in self.outbound_contexts and application != "Queue":
            return
        linkedid = ev.get("Linkedid", "")
        call = self._live_call(linkedid)
        if call is None:
            return
        if application == "Queue":
            call.route_queue = (ev.get("AppData") or "").split(",", 1)[0] or call.route_queue
            return
        if call.direction == "internal" and linkedid in self.others:
            if application != "Dial" and "Dial(" not in (ev.get("AppData") or ""):
                # Not dialling yet: the outbound guard may still refuse.  A refused dial
                # placed no call (its evidence is in outbound_decisions), so it must not
                # become an unanswered outbound call, nor an attempt on an obligation.
                return
            # A handset (or one originated by click-to-call) now dials out: an outbound call.
            del self.others[linkedid]
            self.calls[linkedid] = call
            call.direction = "outbound"
            call.callee_number = ev.get("Exten")
            first = self.channels.get(linkedid)
            call.placed_by = agent_id(first.name if first else ev.get("Channel"))
            call.client = call.client or ev.get("AccountCode") or None
            self._touch(call, ts)

    def _on_hangup(self, ev: Event, ts: float) -> None:
        uniqueid = ev.get("Uniqueid", "")
        channel = self.channels.pop(uniqueid, None)
        ring_entry = self.rings.get(uniqueid)
        if ring_entry is not None:
            ring_call, ring = ring_entry
            if ring.result == RINGING:
                ring.result = RING_CANCELLED
                ring.ended_at = ts
                self._touch(ring_call, ts)
            del self.rings[uniqueid]
        if channel is None:
            return
        call = self._live_call(channel.linkedid)
        if call is None:
            return
        call.live.discard(uniqueid)
        if channel.caller_side and uniqueid == call.caller_uniqueid:
            call.hangup_cause = ev.get("Cause")
        if channel.caller_side and call.direction == "inbound":
            self._caller_gone(call, ts)
        if not call.live:
            self._finish(call, ts)
        else:
            self._touch(call, ts)

    # -- variables the dialplan and Asterisk set ---------------------------------------------

    def _on_varset(self, ev: Event, ts: float) -> None:
        name = ev.get("Variable")
        setter = _VARSETTERS.get(name or "")
        if setter is None:
            return
        call = self._call_of(ev)
        if call is None:
            return
        setter(self, call, ev, ev.get("Value", ""), ts)
        self._touch(call, ts)

    def _set_client(self, call: Call, ev: Event, value: str, ts: float) -> None:
        if value:
            call.client = value

    def _set_action(self, call: Call, ev: Event, value: str, ts: float) -> None:
        call.route_action = value or call.route_action

    def _set_queue(self, call: Call, ev: Event, value: str, ts: float) -> None:
        call.route_queue = value or call.route_queue

    def _set_escalated(self, call: Call, ev: Event, value: str, ts: float) -> None:
        if value.strip() == "1":
            call.escalated = True

    def _set_escalation_reason(self, call: Call, ev: Event, value: str, ts: float) -> None:
        if value:
            call.escalation_reason = value

    def _set_flags(self, call: Call, ev: Event, value: str, ts: float) -> None:
        call.route_flags = value or call.route_flags

    def _set_route_source(self, call: Call, ev: Event, value: str, ts: float) -> None:
        if value == v.FALLBACK:
            call.fallback_routed = True

    def _set_agi_status(self, call: Call, ev: Event, value: str, ts: float) -> None:
        call.agi_status = value

    def _set_did(self, call: Call, ev: Event, value: str, ts: float) -> None:
        channel = self.channels.get(ev.get("Uniqueid", ""))
        if value and channel is not None and channel.caller_side:
            call.did = value

    def _set_vm_box(self, call: Call, ev: Event, value: str, ts: float) -> None:
        call.voicemail_box = value or call.voicemail_box

    def _set_forward_to(self, call: Call, ev: Event, value: str, ts: float) -> None:
        if value and call.route_action == "forward":
            call.forwarded_to = value

    def _set_queuestatus(self, call: Call, ev: Event, value: str, ts: float) -> None:
        """Queue() returned: its status tells a timeout from an abandon, and a refused join."""
        channel = self.channels.get(ev.get("Uniqueid", ""))
        if channel is None or not channel.caller_side:
            return
        stint = None
        for candidate in reversed(call.stints):
            if candidate.caller_uniqueid == channel.uniqueid and not candidate.status_seen:
                stint = candidate
                break
        if stint is not None and stint.left_at is not None and stint.connected_at is None:
            stint.status_seen = True
            result = _STINT_STATUS.get(value)
            if result is not None:
                stint.result = result
            return
        if value in _JOIN_FAILURES:
            call.queue_attempts.append(QueueAttempt(call.route_queue, value, ts))

    # -- queue -------------------------------------------------------------------------------

    def _on_queue_caller_join(self, ev: Event, ts: float) -> None:
        linkedid = ev.get("Linkedid", "")
        call = self.calls.get(linkedid)
        if call is None:
            other = self.others.pop(linkedid, None)
            if other is None:
                return
            # An internal call queued like a customer (e.g. a re-routed transfer): record it.
            call = other
            call.direction = "inbound"
            self.calls[linkedid] = call
        uniqueid = ev.get("Uniqueid", "")
        call.caller_uniqueid = call.caller_uniqueid or uniqueid
        channel = self.channels.get(uniqueid)
        if channel is not None:
            channel.caller_side = True
        if not call.client and ev.get("AccountCode"):
            call.client = ev["AccountCode"]
        position = ev.get("Position")
        call.stints.append(Stint(seq=len(call.stints) + 1, queue=ev.get("Queue", ""),
                                 caller_uniqueid=uniqueid, joined_at=ts,
                                 position=int(position) if position and position.isdigit()
                                 else None, measured=self._timed))
        self._touch(call, ts)

    def _on_agent_called(self, ev: Event, ts: float) -> None:
        call = self._call_of(ev)
        member_uniqueid = ev.get("DestUniqueid")
        if call is None or not member_uniqueid:
            return
        queue = ev.get("Queue", "")
        stint = call.open_stint(queue)
        if stint is None:
            return
        interface = ev.get("Interface", "")
        ring = RingAttempt(member_uniqueid=member_uniqueid,
                           member_channel=ev.get("DestChannel", ""), queue=queue,
                           interface=interface,
                           agent=agent_id(interface) or ev.get("MemberName", ""),
                           started_at=ts, stint_seq=stint.seq)
        stint.rings.append(ring)
        self.rings[member_uniqueid] = (call, ring)
        self._touch(call, ts)

    def _on_agent_ring_no_answer(self, ev: Event, ts: float) -> None:
        entry = self.rings.get(ev.get("DestUniqueid", ""))
        if entry is None:
            return
        call, ring = entry
        ring.result = RING_NO_ANSWER
        ring.ended_at = ts
        ring_ms = ev.get("RingTime", "")
        ring.ring_ms = int(ring_ms) if ring_ms.isdigit() else None
        self._touch(call, ts)

    def _on_dial_begin(self, ev: Event, ts: float) -> None:
        call = self._call_of(ev)
        if call is None:
            return
        channel = self.channels.get(ev.get("Uniqueid", ""))
        if (call.direction == "inbound" and call.route_action == "forward" and channel
                and channel.caller_side and ev.get("DestUniqueid") not in self.rings):
            call.forwarded_to = call.forwarded_to or ev.get("DialString") or "?"
            self._touch(call, ts)

    def _on_dial_end(self, ev: Event, ts: float) -> None:
        status = ev.get("DialStatus", "")
        entry = self.rings.get(ev.get("DestUniqueid", ""))
        if entry is not None:
            ring_call, ring = entry
            if ring.result == RINGING or status == "ANSWER":
                ring.result = _RING_RESULTS.get(status, RING_FAILED)
                ring.ended_at = ts
            self._touch(ring_call, ts)
            return
        call = self._call_of(ev)
        if call is None:
            return
        channel = self.channels.get(ev.get("Uniqueid", ""))
        if call.direction == "outbound":
            if channel is not None and not channel.caller_side and status:
                call.dial_result = _DIAL_RESULTS.get(status, "failed")
                if status == "ANSWER":
                    call.answered_at = call.answered_at or ts
                self._touch(call, ts)
        elif call.direction == "inbound" and call.forwarded_to and channel and \
                channel.caller_side:
            call.forward_answered = status == "ANSWER"
            self._touch(call, ts)

    def _on_agent_connect(self, ev: Event, ts: float) -> None:
        call = self._call_of(ev)
        if call is None:
            return
        queue = ev.get("Queue", "")
        stint = call.open_stint(queue) or call.stint_for(queue)
        if stint is None:
            return
        interface = ev.get("Interface", "")
        hold = ev.get("HoldTime", "")
        stint.asterisk_hold_s = int(hold) if hold.isdigit() else None
        if stint.gap:
            stint.measured = False  # the wait went on while we could not see
        stint.gap = False
        entry = self.rings.get(ev.get("DestUniqueid", ""))
        if entry is not None:
            # The member did pick up, whatever became of the caller.
            entry[1].result = RING_ANSWERED
            entry[1].ended_at = entry[1].ended_at or ts
        if call.caller_gone_at is not None:
            # The caller hung up before this CONNECT (during the whisper): a missed call.
            self._caller_left_before_bridge(call, stint, call.caller_gone_at, ts)
            self._touch(call, ts)
            return
        stint.connected_at = ts
        stint.left_at = stint.left_at or ts
        stint.interface = interface
        stint.agent = agent_id(interface) or ev.get("MemberName")
        stint.result = ANSWERED
        stint.awaiting_bridge = True
        call.answered_at = call.answered_at or ts
        call.answered_by = stint.agent
        self.connected[(queue, interface)] = (call, stint)
        self._touch(call, ts)

    def _on_bridge_enter(self, ev: Event, ts: float) -> None:
        """The caller's channel entering the bridge confirms the answer, if the caller is
        still there; a caller already gone at the bridge was never connected."""
        channel = self.channels.get(ev.get("Uniqueid", ""))
        if channel is None or not channel.caller_side:
            return
        call = self.calls.get(channel.linkedid)
        if call is None:
            return
        for stint in call.stints:
            if stint.awaiting_bridge and stint.caller_uniqueid == channel.uniqueid:
                if call.caller_gone_at is not None:
                    self._caller_left_before_bridge(call, stint, call.caller_gone_at, ts)
                else:
                    stint.awaiting_bridge = False
                self._touch(call, ts)

    def _on_hangup_request(self, ev: Event, ts: float) -> None:
        channel = self.channels.get(ev.get("Uniqueid", ""))
        if channel is None or not channel.caller_side:
            return
        call = self.calls.get(channel.linkedid)
        if call is not None and call.direction == "inbound":
            self._caller_gone(call, ts)

    def _caller_gone(self, call: Call, ts: float) -> None:
        """The caller's side is going.  A later CONNECT is no answer; a connect whose bridge
        was not seen yet is settled by the caller's BridgeEnter or by AgentComplete (a
        stream without bridge events, e.g. an ``eventfilter``, must not lose answers)."""
        if call.caller_gone_at is None:
            call.caller_gone_at = ts

    def _caller_left_before_bridge(self, call: Call, stint: Stint, gone_at: float,
                                   ts: float) -> None:
        """Undo (or never make) the answer of a stint whose caller left before the bridge:
        the caller waited until ``gone_at`` and hung up, an abandon."""
        if stint.interface:
            self.connected.pop((stint.queue, stint.interface), None)
        stint.awaiting_bridge = False
        stint.unbridged = True
        stint.connected_at = None
        stint.agent = None
        stint.interface = None
        stint.abandon_seen = True
        stint.result = ABANDONED
        # With a gosub whisper Asterisk sends QueueCallerLeave when the member picks up,
        # before the whisper; the caller waited on until it hung up.
        stint.left_at = gone_at
        _recount_answer(call)

    def _on_agent_complete(self, ev: Event, ts: float) -> None:
        key = (ev.get("Queue", ""), ev.get("Interface", ""))
        entry = self.connected.pop(key, None)
        talk, hold = ev.get("TalkTime", ""), ev.get("HoldTime", "")
        if entry is None:
            self._agent_complete_evidence(ev, ts)
            return
        call, stint = entry
        if call.ended_at is not None:
            # Late: the talk was closed at the hang-up; Asterisk's figures still count.
            stint.asterisk_talk_s = int(talk) if talk.isdigit() else stint.asterisk_talk_s
            stint.asterisk_hold_s = int(hold) if hold.isdigit() else stint.asterisk_hold_s
            self._touch(call, ts)
            return
        if stint.awaiting_bridge and call.caller_gone_at is not None and talk in ("", "0"):
            # Gone before its bridge was seen and no talk: app_queue's account of a caller
            # who hung up during the whisper.
            self._caller_left_before_bridge(call, stint, call.caller_gone_at, ts)
            self._touch(call, ts)
            return
        stint.awaiting_bridge = False
        stint.ended_at = stint.ended_at or ts
        stint.asterisk_talk_s = int(talk) if talk.isdigit() else stint.asterisk_talk_s
        stint.asterisk_hold_s = int(hold) if hold.isdigit() else stint.asterisk_hold_s
        if ev.get("Reason") == "transfer":
            stint.result = TRANSFERRED
        self._touch(call, ts)

    def _agent_complete_evidence(self, ev: Event, ts: float) -> None:
        """An ``AgentComplete`` whose connect was not seen (it fell in an AMI gap, or the
        call already ended): Asterisk's own account of the stint (answered_caller_hangup)::

            Event: AgentComplete
            Channel: Local/0663330001@from-pstn-00000000;2
            Uniqueid: 1795346850.1
            Linkedid: 1795346850.0
            Queue: q-mdc
            Interface: Local/211@operators/n
            MemberName: op211
            HoldTime: 3
            TalkTime: 10
            Reason: caller

        (When the caller's channel is already gone it comes without any channel header,
        ``Queue``, ``Interface``, ``MemberName``, ``HoldTime``, ``TalkTime``, ``Reason``
        only, as in supervisor_whisper_chanspy: found through ``connected`` instead.)

        ``Reason: caller`` with ``TalkTime: 0`` is what app_queue sends when the caller was
        gone before the bridge: evidence of an abandon, not of an answer.
        """
        linkedid = ev.get("Linkedid", "")
        call = self.calls.get(linkedid) or self.ended.get(linkedid)
        queue = ev.get("Queue", "")
        talk, hold = ev.get("TalkTime", ""), ev.get("HoldTime", "")
        talk_s = int(talk) if talk.isdigit() else None
        hold_s = int(hold) if hold.isdigit() else None
        if call is None and ev.get("Reason") == "caller" and not talk_s:
            # No channel named: the caller's Cdr, before or after, names the member.
            agent = agent_id(ev.get("Interface")) or ev.get("MemberName") or ""
            recent = list(self.calls.values()) + list(reversed(self.ended.values()))[:64]
            for other in recent:
                for pending in other.stints:
                    claimed = pending.cdr_member is not None and pending.cdr_member[0] == agent
                    answered = pending.cdr_answered and pending.agent == agent and \
                        pending.connected_at is not None and ts - pending.connected_at < 60
                    if other.direction == "inbound" and (claimed or answered):
                        self._unbridged_evidence(other, pending, ts, hold_s)
                        self._reconsider(other, ts)
                        return
            self.unbridged_completes[agent] = (ts, hold_s)
            while len(self.unbridged_completes) > 256:
                self.unbridged_completes.popitem(last=False)
        if call is None or call.direction != "inbound":
            return
        stint = call.stint_for(queue)
        if stint is None:
            # Joined, answered and completed while we could not see: Asterisk's figures.
            stint = Stint(seq=len(call.stints) + 1, queue=queue,
                          caller_uniqueid=ev.get("Uniqueid", ""),
                          joined_at=ts - (hold_s or 0) - (talk_s or 0), measured=False,
                          gap=True)
            call.stints.append(stint)
        interface = ev.get("Interface", "")
        if stint.connected_at is not None:
            # Answered and seen (or adopted from the bridge in the channel list): the talk
            # ended now; figures from Asterisk.
            if not stint.measured:
                # Adopted from the channel list (a channel name): the queue names the member.
                stint.agent = agent_id(interface) or stint.agent
                stint.interface = interface or stint.interface
                _recount_answer(call)
            stint.ended_at = stint.ended_at or ts
            stint.asterisk_talk_s = talk_s if talk_s is not None else stint.asterisk_talk_s
            stint.asterisk_hold_s = hold_s if hold_s is not None else stint.asterisk_hold_s
            if ev.get("Reason") == "transfer":
                stint.result = TRANSFERRED
        elif stint.gap and stint.result in (WAITING, UNKNOWN):
            stint.gap = False
            stint.measured = False
            stint.asterisk_hold_s = hold_s
            stint.asterisk_talk_s = talk_s
            stint.left_at = stint.left_at or ts
            if ev.get("Reason") == "caller" and not talk_s:
                stint.abandon_seen = True
                stint.result = ABANDONED
            else:
                stint.connected_at = ts
                stint.ended_at = ts
                stint.interface = interface
                stint.agent = agent_id(interface) or ev.get("MemberName")
                stint.result = TRANSFERRED if ev.get("Reason") == "transfer" else ANSWERED
                call.answered_at = call.answered_at or ts
                call.answered_by = stint.agent
        else:
            return
        self._reconsider(call, ts)

    def _on_cdr(self, ev: Event, ts: float) -> None:
        """cdr_manager's ``Cdr`` event for a caller channel (answered_caller_hangup)::

            Event: Cdr
            Channel: Local/0663330001@from-pstn-00000000;2
            DestinationChannel: Local/211@operators-00000001;1
            LastApplication: Queue
            Duration: 15
            BillableSeconds: 15
            Disposition: ANSWERED
            UniqueID: 1795346850.1
            UserField:

        Its ``UserField`` carries the dialplan fallback's trace (``orikaeshi-fallback``);
        after an AMI gap, ``ANSWERED`` with a member as ``DestinationChannel`` is evidence
        that the waiting caller was answered by that member (the caller's own
        ``BillableSeconds`` count greeting and wait too, so they give no talk time).
        """
        uniqueid = ev.get("UniqueID") or ev.get("Uniqueid") or ""
        channel = self.channels.get(uniqueid)
        linkedid = channel.linkedid if channel is not None else \
            self.ended_channels.get(uniqueid)
        call = self.calls.get(linkedid or "") or self.ended.get(linkedid or "")
        if call is None or call.direction != "inbound":
            return
        changed = False
        if ev.get("UserField") == v.FALLBACK_USERFIELD and not call.fallback_routed:
            call.fallback_routed = True
            changed = True
        # The caller's queued channel: what Queue() dialled, a member, is its destination.
        destination = ev.get("DestinationChannel") or ""
        if (ev.get("Disposition") == "ANSWERED" and ev.get("LastApplication") == "Queue"
                and destination):
            agent = agent_id(destination) or destination
            for stint in reversed(call.stints):
                if stint.caller_uniqueid != uniqueid:
                    continue
                if stint.gap and stint.connected_at is None and stint.result in (WAITING,
                                                                                 UNKNOWN):
                    # ANSWERED says the member picked up, not that the caller was still
                    # there: a caller gone during the whisper gets the same Cdr (seen live,
                    # tests/fixtures/whisper_hangup_ast23), and that member's AgentComplete
                    # with TalkTime 0 (before or after it) tells them apart.
                    gone = self.unbridged_completes.pop(agent, None)
                    if gone is not None and abs(ts - gone[0]) < 60:
                        self._unbridged_evidence(call, stint, gone[0], gone[1])
                        changed = True
                    elif call.ended_at is None:
                        stint.cdr_member = (agent, ts)  # settled by AgentComplete or the end
                    else:
                        self._answer_from_cdr(call, stint, agent, ts)
                        changed = True
                break
        if changed:
            self._reconsider(call, ts)

    def _unbridged_evidence(self, call: Call, stint: Stint, at: float,
                            hold_s: int | None) -> None:
        """Asterisk said (after a gap) that this stint's caller was gone before the bridge:
        an answer taken from the caller's Cdr alone is taken back."""
        stint.gap = False
        stint.measured = False
        stint.cdr_member = None
        if stint.cdr_answered:
            stint.cdr_answered = False
            stint.connected_at = None
            stint.agent = None
            _recount_answer(call)
        stint.left_at = stint.left_at or at
        stint.asterisk_hold_s = hold_s if hold_s is not None else stint.asterisk_hold_s
        stint.abandon_seen = True
        stint.unbridged = True
        stint.result = ABANDONED

    def _answer_from_cdr(self, call: Call, stint: Stint, agent: str, at: float) -> None:
        stint.gap = False
        stint.measured = False
        stint.cdr_member = None
        stint.cdr_answered = True
        stint.connected_at = stint.left_at = stint.left_at or at
        stint.ended_at = stint.ended_at or at
        stint.agent = agent
        stint.result = ANSWERED
        call.answered_at = call.answered_at or stint.connected_at
        call.answered_by = stint.agent

    def _reconsider(self, call: Call, ts: float) -> None:
        """Evidence about an ended call arrived late (after its last Hangup): decide again."""
        if call.ended_at is not None and call.direction == "inbound":
            call.outcome = decide_outcome(call, self.short_abandon_s)
        self._touch(call, ts)

    def _on_queue_caller_abandon(self, ev: Event, ts: float) -> None:
        call = self._call_of(ev)
        if call is None:
            return
        stint = call.open_stint(ev.get("Queue"))
        if stint is None:
            return
        stint.abandon_seen = True
        stint.gap = False
        stint.left_at = ts
        hold = ev.get("HoldTime", "")
        stint.asterisk_hold_s = int(hold) if hold.isdigit() else None
        self._touch(call, ts)

    def _on_queue_caller_leave(self, ev: Event, ts: float) -> None:
        call = self._call_of(ev)
        if call is None:
            return
        stint = call.open_stint(ev.get("Queue"))
        if stint is not None:
            stint.left_at = ts
            stint.gap = False
            self._touch(call, ts)

    # -- other facts -------------------------------------------------------------------------

    def _on_message_waiting(self, ev: Event, ts: float) -> None:
        call = self._call_of(ev)
        if call is None or call.direction != "inbound":
            return
        if ev.get("Waiting", "1") != "0":
            call.voicemail_left = True
            call.voicemail_box = ev.get("Mailbox") or call.voicemail_box
            self._touch(call, ts)

    def _on_transfer(self, ev: Event, ts: float) -> None:
        call = self.calls.get(ev.get("TransfereeLinkedid", ""))
        if call is None:
            return
        call.transfers += 1
        self._touch(call, ts)


_HANDLERS = {
    "Newchannel": LedgerMachine._on_newchannel,
    "NewCallerid": LedgerMachine._on_newcallerid,
    "NewAccountCode": LedgerMachine._on_newaccountcode,
    "Newexten": LedgerMachine._on_newexten,
    "Hangup": LedgerMachine._on_hangup,
    "VarSet": LedgerMachine._on_varset,
    "QueueCallerJoin": LedgerMachine._on_queue_caller_join,
    "QueueCallerAbandon": LedgerMachine._on_queue_caller_abandon,
    "QueueCallerLeave": LedgerMachine._on_queue_caller_leave,
    "AgentCalled": LedgerMachine._on_agent_called,
    "AgentRingNoAnswer": LedgerMachine._on_agent_ring_no_answer,
    "AgentConnect": LedgerMachine._on_agent_connect,
    "AgentComplete": LedgerMachine._on_agent_complete,
    "BridgeEnter": LedgerMachine._on_bridge_enter,
    "HangupRequest": LedgerMachine._on_hangup_request,
    "SoftHangupRequest": LedgerMachine._on_hangup_request,
    "Cdr": LedgerMachine._on_cdr,
    "DialBegin": LedgerMachine._on_dial_begin,
    "DialEnd": LedgerMachine._on_dial_end,
    "MessageWaiting": LedgerMachine._on_message_waiting,
    "BlindTransfer": LedgerMachine._on_transfer,
    "AttendedTransfer": LedgerMachine._on_transfer,
}

_VARSETTERS = {
    v.CLIENT: LedgerMachine._set_client,
    v.ACTION: LedgerMachine._set_action,
    v.QUEUE: LedgerMachine._set_queue,
    v.ESCALATED: LedgerMachine._set_escalated,
    v.ESCALATION_REASON: LedgerMachine._set_escalation_reason,
    v.ROUTE_FLAGS: LedgerMachine._set_flags,
    v.ROUTE_SOURCE: LedgerMachine._set_route_source,
    v.AGISTATUS: LedgerMachine._set_agi_status,
    v.DID: LedgerMachine._set_did,
    v.VM_BOX: LedgerMachine._set_vm_box,
    v.FORWARD_TO: LedgerMachine._set_forward_to,
    v.QUEUESTATUS: LedgerMachine._set_queuestatus,
}
