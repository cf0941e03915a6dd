"""Compare ledger calls with Asterisk's CDR and queue_log.  Pure: rows in, findings out.

Asterisk's records cannot tell every outcome (FULL and JOINEMPTY leave no queue_log line; a
closed-hours call and a greeting hang-up look alike in the CDR), so for a call that never
entered a queue the check is only "it never entered a queue"; for a queued call queue_log
decides.  A ledger call that is ``unknown`` (its end happened during an AMI gap) is settled
when the records decide its outcome.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agi import variables as v
from service.reconcile.asterisk_logs import CdrRow, QueueCall, queue_outcome

NOT_QUEUED = frozenset({"ivr_hangup", "after_hours", "queue_full", "no_agents", "forwarded"})


@dataclass(frozen=True)
class Difference:
    kind: str  # missing_in_ledger | missing_in_cdr | outcome | answered_by | unsettled
    linkedid: str | None
    detail: str
    started_at: datetime | None = None


@dataclass(frozen=True)
class Settlement:
    linkedid: str
    outcome: str
    answered_by: str | None
    wait_s: float | None
    ended_at: datetime | None
    note: str


@dataclass(frozen=True)
class Addition:
    """A call Asterisk recorded that the ledger never saw (it began and ended during an AMI
    outage); added from the records so that every call has its row."""

    linkedid: str
    caller_uniqueid: str | None
    uniqueids: list[str]
    client: str | None
    did: str
    caller_number: str
    started_at: datetime | None
    ended_at: datetime | None
    outcome: str
    answered_by: str | None
    wait_s: float | None
    note: str
    fallback_routed: bool = False


@dataclass
class Findings:
    differences: list[Difference] = field(default_factory=list)
    settlements: list[Settlement] = field(default_factory=list)
    additions: list[Addition] = field(default_factory=list)
    # Ledger calls whose CDR carries the dialplan fallback's trace but that are not flagged
    # (the ledger picked them up from the channel list after an outage).
    fallback_flags: list[str] = field(default_factory=list)
    calls_checked: int = 0


def _digits(text: str | None) -> str:
    return re.sub(r"\D", "", text or "")


def _same_agent(ledger: str | None, member_name: str | None) -> bool:
    """queue_log names members (``op201``); the ledger uses the interface's id (``201``)."""
    if ledger is None or member_name is None:
        return ledger is None and member_name is None
    return ledger == member_name or (bool(_digits(ledger)) and
                                     _digits(ledger) == _digits(member_name))


def compare(calls: list[dict[str, Any]], cdr: list[CdrRow], queue: dict[str, QueueCall], *,
            inbound_contexts: frozenset[str], short_abandon_s: float) -> Findings:
    findings = Findings(calls_checked=len(calls))
    owner: dict[str, dict[str, Any]] = {}
    for call in calls:
        for uniqueid in call["uniqueids"] or []:
            owner[uniqueid] = call
    rows_of: dict[str, list[CdrRow]] = {}
    missing: list[CdrRow] = []
    for row in cdr:
        known = owner.get(row.uniqueid)
        if known is not None:
            rows_of.setdefault(known["linkedid"], []).append(row)
        else:
            missing.append(row)
    for group in group_channel_rows(missing):
        # A call that arrived in an inbound context; its queued half's row may name the
        # context it ended in (``xfer-sup`` after a transfer), so the group decides.
        if any(r.dcontext in inbound_contexts for r in group):
            findings.additions.append(_addition(group, queue, short_abandon_s))
    for call in calls:
        rows = rows_of.get(call["linkedid"], [])
        _check_call(call, rows, queue, short_abandon_s, findings)
        if _fallback_trace(rows) and not call.get("fallback_routed", True):
            findings.fallback_flags.append(call["linkedid"])
    return findings


def _fallback_trace(rows: list[CdrRow]) -> bool:
    """The dialplan's fallback left ``CDR(userfield)=orikaeshi-fallback`` on the caller."""
    return any(r.userfield == v.FALLBACK_USERFIELD for r in rows)


def _channel_base(channel: str) -> str:
    """``Local/0312345678@from-pstn-00000006;2`` -> ``Local/0312345678@from-pstn-00000006``:
    both halves of a Local channel are one caller."""
    head, sep, tail = channel.rpartition(";")
    return head if sep and tail.isdigit() else channel


def group_channel_rows(rows: list[CdrRow]) -> list[list[CdrRow]]:
    """CDR rows of calls the ledger does not know, one group per call.

    One call has several rows: one per channel (both halves of a Local channel), and a
    channel may have more than one: burst_concurrent's caller 0905700006 has two for its
    queued ``;2`` half (Master.csv lines 75 and 76, uniqueid ``1795347312.13``, the second
    begun at 11:35:28 when the queue rang 222), besides the ``;1`` row ``1795347312.12``.
    Rows go together when they share a uniqueid, or are halves of the same Local channel
    alive at overlapping times (channel names are reused, later, after a restart).
    """
    groups: list[list[CdrRow]] = []
    by_uniqueid: dict[str, list[CdrRow]] = {}
    by_base: dict[str, list[list[CdrRow]]] = {}
    for row in sorted(rows, key=lambda r: (str(r.start), _uniqueid_order(r.uniqueid))):
        group = by_uniqueid.get(row.uniqueid)
        if group is None:
            base = _channel_base(row.channel)
            for candidate in by_base.get(base, []):
                if _overlaps(candidate, row):
                    group = candidate
                    break
        if group is None:
            group = []
            groups.append(group)
            by_base.setdefault(_channel_base(row.channel), []).append(group)
        group.append(row)
        by_uniqueid[row.uniqueid] = group
    return groups


def _overlaps(group: list[CdrRow], row: CdrRow) -> bool:
    end = max((r.end for r in group if r.end), default=None)
    start = min((r.start for r in group if r.start), default=None)
    if row.start is None or start is None or end is None:
        return False
    return start <= row.start <= end


def _addition(rows: list[CdrRow], queue: dict[str, QueueCall],
              short_abandon_s: float) -> Addition:
    first = min(rows, key=lambda r: _uniqueid_order(r.uniqueid))
    uniqueids = sorted({r.uniqueid for r in rows}, key=_uniqueid_order)
    queued = [u for u in uniqueids if u in queue]
    outcome, member, wait = "unknown", None, None
    if queued:
        outcome, member = queue_outcome(queue[queued[0]], short_abandon_s)
        wait = queue[queued[0]].wait_s
    return Addition(
        linkedid=uniqueids[0], caller_uniqueid=queued[0] if queued else None,
        uniqueids=uniqueids, client=next((r.accountcode for r in rows if r.accountcode), None),
        did=first.dst, caller_number=first.src,
        started_at=min((r.start for r in rows if r.start), default=None),
        ended_at=max((r.end for r in rows if r.end), default=None), outcome=outcome,
        answered_by=_agent_id(member), wait_s=wait,
        note=f"not seen on AMI; from CDR line {first.line}"
             + (" and queue_log" if queued else ""),
        fallback_routed=_fallback_trace(rows))


def _uniqueid_order(uniqueid: str) -> tuple[int, int]:
    """``1795347310.12`` sorts by epoch then sequence: the first channel is the linkedid."""
    head, _, tail = uniqueid.partition(".")
    return (int(head) if head.isdigit() else 0, int(tail) if tail.isdigit() else 0)


def _check_call(call: dict[str, Any], rows: list[CdrRow], queue: dict[str, QueueCall],
                short_abandon_s: float, findings: Findings) -> None:
    linkedid = call["linkedid"]
    started = call["started_at"]
    if not rows:
        findings.differences.append(Difference(
            "missing_in_cdr", linkedid, "in the ledger, no CDR row has any of its channels",
            started))
        return
    # The queued channel is normally caller_uniqueid; a call whose queueing happened while
    # AMI was away does not know it, so look at every channel it had.
    candidates = [call["caller_uniqueid"], *(call["uniqueids"] or [])]
    qcall = next((queue[u] for u in candidates if u and u in queue), None)
    ledger_outcome = call["outcome"]
    if qcall is None:
        if ledger_outcome == "unknown":
            findings.differences.append(Difference(
                "unsettled", linkedid, "outcome unknown and the call never entered a queue: "
                "Asterisk's records cannot tell why it ended", started))
        elif ledger_outcome not in NOT_QUEUED:
            findings.differences.append(Difference(
                "outcome", linkedid, f"ledger says {ledger_outcome}, queue_log has no entry "
                "for the call", started))
        return
    derived, member = queue_outcome(qcall, short_abandon_s)
    if ledger_outcome == "unknown":
        if derived == "unknown":
            findings.differences.append(Difference(
                "unsettled", linkedid, "queue_log does not say how the call ended", started))
            return
        end = max((r.end for r in rows if r.end), default=None)
        findings.settlements.append(Settlement(
            linkedid, derived, _agent_id(member), qcall.wait_s, end,
            f"settled from queue_log ({qcall.ends[-1][1] if qcall.ends else 'CONNECT'}) "
            "and CDR"))
        return
    if qcall.gone and {ledger_outcome, derived} <= {"short_abandon", "abandoned"}:
        # A caller gone during the whisper: queue_log's only figure is the CONNECT's hold,
        # which runs to the whisper's end; the ledger measured the wait to the hang-up.
        return
    if not _outcomes_agree(ledger_outcome, derived, call.get("wait_s"), short_abandon_s):
        findings.differences.append(Difference(
            "outcome", linkedid, f"ledger says {ledger_outcome}, queue_log says {derived}",
            started))
    elif derived == "answered" and not _same_agent(call["answered_by"], member):
        findings.differences.append(Difference(
            "answered_by", linkedid,
            f"ledger says {call['answered_by']}, queue_log says {member}", started))


def _outcomes_agree(ledger: str, derived: str, wait_s: float | None,
                    short_abandon_s: float) -> bool:
    if ledger == derived:
        return True
    # queue_log counts whole seconds: at the threshold the two may fall either side.
    return ({ledger, derived} == {"short_abandon", "abandoned"} and wait_s is not None
            and abs(wait_s - short_abandon_s) < 1.0)


def _agent_id(member_name: str | None) -> str | None:
    """``op201`` -> ``201``: the ledger's id for an answering member."""
    if member_name is None:
        return None
    digits = _digits(member_name)
    return digits or member_name
