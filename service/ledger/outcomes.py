"""The outcome rule: one outcome per inbound call, from DESIGN.md's closed set.  Pure.

The event name alone never decides: Asterisk sends ``QueueCallerAbandon`` for timeouts and
leave-when-empty too, and sends nothing at all for FULL and JOINEMPTY.  What decides is the
stint's result (set from ``QUEUESTATUS`` when Queue() returned, or from the hang-up when the
caller left while waiting), the dialplan's own decision (closed, forward), and whether a member
was ever connected.

``answered`` means the caller's channel was bridged with a member while both were up.  A
queue CONNECT is not enough.  An answered escalation (repeat_caller_escalated) logs::

    1795347095|1795347086.5|q-sup|sup301|CONNECT|3|1795347092.6|2
    1795347100|1795347086.5|q-sup|sup301|COMPLETEAGENT|3|5|1

but when the caller hangs up during the member's whisper, Asterisk still logs the same
``CONNECT`` and at once ``COMPLETECALLER|<hold>|0|<pos>``: talk 0, nobody was connected.

The machine therefore never marks such a stint answered (see ``machine.py``): it is an
abandon, short or not by the wait the caller had.

The short-abandon rule reads Asterisk's own ``HoldTime`` where an event carried one
(abandon_short)::

    Event: QueueCallerAbandon
    Uniqueid: 1795346901.1
    Queue: q-wsh
    Position: 1
    OriginalPosition: 1
    HoldTime: 1

the same whole seconds as queue_log's ``1795346904|1795346901.1|q-wsh|NONE|ABANDON|1|1|1``,
so the ledger and ``reconcile`` agree, and a recording replayed without event times
(``ami.raw``) decides as its timed twin.
"""

from __future__ import annotations

from service.ledger.model import (
    ABANDONED,
    EXIT_KEY,
    LEAVE_EMPTY,
    TIMEOUT,
    UNKNOWN,
    WITHDRAWN,
    Call,
    Stint,
)

_QUEUE_ATTEMPT_OUTCOME = {"FULL": "queue_full", "JOINEMPTY": "no_agents",
                          "JOINUNAVAIL": "no_agents"}


def stint_outcome(stint: Stint, short_abandon_s: float) -> str:
    """Outcome contributed by a stint in which nobody answered."""
    if stint.result == TIMEOUT:
        return "timeout"
    if stint.result == LEAVE_EMPTY:
        return "no_agents"
    if stint.result == EXIT_KEY:
        return "exit_key"
    if stint.result in (ABANDONED, WITHDRAWN):
        wait = stint.decisive_wait_s
        return "short_abandon" if wait is not None and wait < short_abandon_s else "abandoned"
    return "unknown"


def decide_outcome(call: Call, short_abandon_s: float) -> str:
    """The single outcome of an inbound call that has ended.

    Decided by what finally happened: a call answered by anyone is ``answered`` even if it
    went through a queue that timed out first; otherwise the last place the caller reached
    says why nobody answered.
    """
    if not call.end_seen:
        return "unknown"
    if call.answered_at is not None:
        return "answered"
    if call.forwarded_to is not None:
        return "forwarded"
    last_stint = call.stints[-1] if call.stints else None
    last_attempt = call.queue_attempts[-1] if call.queue_attempts else None
    if last_attempt is not None and (last_stint is None or last_attempt.at >= last_stint.joined_at):
        return _QUEUE_ATTEMPT_OUTCOME.get(last_attempt.status, "no_agents")
    if last_stint is not None:
        outcome = stint_outcome(last_stint, short_abandon_s)
        return outcome if last_stint.result != UNKNOWN else "unknown"
    if call.route_action == "closed":
        return "after_hours"
    return "ivr_hangup"
