"""What the ledger knows about a call while it lives: calls, queue stints, ring attempts.

Times are epoch seconds (floats): the event's ``Timestamp`` header when Asterisk sends one
(``timestampevents = yes``), else the moment the event was read.  Read times are not the
PBX's times (a recording replayed from ``ami.raw``, events that queued behind a slow
consumer), so a stint whose events had no ``Timestamp``, or whose middle fell in an AMI gap,
takes its wait and talk from Asterisk's own figures (``HoldTime``, ``TalkTime``) instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OUTCOMES = ("answered", "abandoned", "short_abandon", "ivr_hangup", "timeout", "no_agents",
            "queue_full", "exit_key", "after_hours", "forwarded", "unknown")
MISSED = frozenset(OUTCOMES) - {"answered", "forwarded"}

# Stint results.
WAITING = "waiting"
ANSWERED = "answered"
TRANSFERRED = "transferred"  # answered, then sent elsewhere by the member
ABANDONED = "abandoned"
TIMEOUT = "timeout"
LEAVE_EMPTY = "no_agents"
EXIT_KEY = "exit_key"
WITHDRAWN = "withdrawn"
UNKNOWN = "unknown"

# Ring attempt results.
RINGING = "ringing"
RING_ANSWERED = "answered"
RING_NO_ANSWER = "no_answer"
RING_CANCELLED = "cancelled"
RING_BUSY = "busy"
RING_FAILED = "failed"


@dataclass(slots=True)
class RingAttempt:
    """One ring of one queue member for one caller (Asterisk's AgentCalled ... DialEnd)."""

    member_uniqueid: str
    member_channel: str
    queue: str
    interface: str
    agent: str
    started_at: float
    stint_seq: int
    ended_at: float | None = None
    result: str = RINGING
    ring_ms: int | None = None


@dataclass(slots=True)
class Stint:
    """One stay of the caller in one queue (QueueCallerJoin ... leave, answer or hang-up)."""

    seq: int
    queue: str
    caller_uniqueid: str
    joined_at: float
    position: int | None = None
    left_at: float | None = None
    connected_at: float | None = None
    ended_at: float | None = None
    agent: str | None = None
    interface: str | None = None
    result: str = WAITING
    abandon_seen: bool = False  # QueueCallerAbandon: an abandon *or* a timeout/leaveempty
    status_seen: bool = False   # QUEUESTATUS arrived for the Queue() run that held this stint
    asterisk_hold_s: int | None = None
    asterisk_talk_s: int | None = None
    # False when this stint's times cannot be measured from event times: its events had no
    # Timestamp, or it was adopted from a resync; Asterisk's own figures then decide.
    measured: bool = True
    # The AMI connection was down while the caller waited: until Asterisk says otherwise
    # (QueueStatus shows the caller waiting, AgentComplete, Cdr, a bridge), what happened
    # is not known, and a hang-up is no proof of an abandon.
    gap: bool = False
    # AgentConnect seen, the caller's BridgeEnter not yet: an answer only once bridged.
    awaiting_bridge: bool = False
    # A CONNECT came, but the caller had hung up before the bridge (during the whisper).
    unbridged: bool = False
    # After a gap, the caller's Cdr said ANSWERED by this member (and when): an answer
    # unless that member's AgentComplete says TalkTime 0 before the call ends.
    cdr_member: tuple[str, float] | None = None
    cdr_answered: bool = False  # answered on the Cdr's word alone (see cdr_member)
    rings: list[RingAttempt] = field(default_factory=list)

    @property
    def wait_s(self) -> float | None:
        if not self.measured and self.asterisk_hold_s is not None:
            return float(self.asterisk_hold_s)
        end = self.connected_at or self.left_at or self.ended_at
        return None if end is None else max(0.0, end - self.joined_at)

    @property
    def talk_s(self) -> float | None:
        if self.connected_at is None:
            return None
        if not self.measured and self.asterisk_talk_s is not None:
            return float(self.asterisk_talk_s)
        if self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.connected_at)

    @property
    def decisive_wait_s(self) -> float | None:
        """The wait the short-abandon rule reads: Asterisk's own ``HoldTime`` when an event
        carried one (the figure queue_log's ABANDON/CONNECT has, so the ledger, reconcile,
        ``ami.jsonl`` and ``ami.raw`` all decide alike), else the measured wait.

        Except for a caller gone during the whisper: the CONNECT's ``HoldTime`` runs to the
        whisper's end, long after the caller left, so the measured wait (join to the
        caller's hang-up) decides when there is one."""
        if self.unbridged and self.measured:
            return self.wait_s
        return float(self.asterisk_hold_s) if self.asterisk_hold_s is not None else self.wait_s


@dataclass(slots=True)
class QueueAttempt:
    """A Queue() run that never let the caller in (FULL, JOINEMPTY, JOINUNAVAIL)."""

    queue: str | None
    status: str
    at: float


@dataclass(slots=True)
class Call:
    pbx_id: str
    linkedid: str
    direction: str  # inbound | outbound
    started_at: float
    did: str | None = None
    client: str | None = None
    caller_number: str | None = None
    caller_name: str | None = None
    caller_uniqueid: str | None = None
    uniqueids: list[str] = field(default_factory=list)
    live: set[str] = field(default_factory=set)
    route_action: str | None = None
    route_queue: str | None = None
    route_flags: str | None = None
    escalated: bool = False
    escalation_reason: str | None = None
    fallback_routed: bool = False
    agi_status: str | None = None
    voicemail_left: bool = False
    voicemail_box: str | None = None
    transfers: int = 0
    forwarded_to: str | None = None
    forward_answered: bool | None = None
    queue_attempts: list[QueueAttempt] = field(default_factory=list)
    stints: list[Stint] = field(default_factory=list)
    answered_at: float | None = None
    answered_by: str | None = None
    ended_at: float | None = None
    end_seen: bool = True
    # When the caller's side was first seen going (Hangup, HangupRequest, SoftHangupRequest
    # of a caller channel): a queue CONNECT after that is not an answer.
    caller_gone_at: float | None = None
    outcome: str | None = None
    hangup_cause: str | None = None
    # outbound calls (call backs, click-to-call)
    callee_number: str | None = None
    placed_by: str | None = None
    dial_result: str | None = None
    last_event_at: float = 0.0

    def open_stint(self, queue: str | None = None) -> Stint | None:
        """The newest stint still waiting in the queue (or any queue)."""
        for stint in reversed(self.stints):
            if stint.left_at is None and stint.connected_at is None and (
                    queue is None or stint.queue == queue):
                return stint
        return None

    def stint_for(self, queue: str) -> Stint | None:
        for stint in reversed(self.stints):
            if stint.queue == queue:
                return stint
        return None

    @property
    def wait_s(self) -> float | None:
        waits = [w for w in (s.wait_s for s in self.stints) if w is not None]
        return round(sum(waits), 3) if waits else None

    @property
    def talk_s(self) -> float | None:
        if self.direction == "outbound":
            if self.answered_at is None or self.ended_at is None:
                return None
            return round(max(0.0, self.ended_at - self.answered_at), 3)
        talks = [t for t in (s.talk_s for s in self.stints) if t is not None]
        return round(sum(talks), 3) if talks else None
