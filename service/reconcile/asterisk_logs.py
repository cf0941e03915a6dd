r'''Pure readers of Asterisk's own call records.

``Master.csv`` (cdr_csv with ``loguniqueid`` and ``loguserfield``), one row per channel::

    "KSL","09011112222","0312345678","from-pstn","""Tanaka"" <09011112222>",
    "Local/0312345678@from-pstn-00000000;2","Local/201@operators-00000001;1","Queue",
    "q-ksl,t,,custom/whisper-ksl,30","2026-11-22 11:27:07","2026-11-22 11:27:07",
    "2026-11-22 11:27:24",17,17,"ANSWERED","DOCUMENTATION","1795346827.1",""

``queue_log``, one line per queue fact, callid = the caller's queued channel Uniqueid::

    1795346833|1795346827.1|q-ksl|NONE|ENTERQUEUE||09011112222|1
    1795346837|1795346827.1|q-ksl|op201|CONNECT|4|1795346833.2|3
    1795346844|1795346827.1|q-ksl|op201|COMPLETEAGENT|4|7|1
'''

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

CDR_COLUMNS = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel",
               "lastapp", "lastdata", "start", "answer", "end", "duration", "billsec",
               "disposition", "amaflags", "uniqueid", "userfield")


@dataclass(frozen=True)
class CdrRow:
    accountcode: str
    src: str
    dst: str
    dcontext: str
    channel: str
    dstchannel: str
    lastapp: str
    start: datetime | None
    answer: datetime | None
    end: datetime | None
    billsec: int
    disposition: str
    uniqueid: str
    line: int
    userfield: str = ""


class LogFormatError(ValueError):
    """A line that is not what Asterisk writes; reported with its line number."""


def _when(text: str, tz: ZoneInfo) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz)


def read_cdr(text: str, tz: ZoneInfo) -> list[CdrRow]:
    """Rows of a Master.csv written with ``loguniqueid = yes`` (18 columns)."""
    rows = []
    for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields:
            continue
        if len(fields) < 17:
            raise LogFormatError(f"CDR line {number}: {len(fields)} columns, expected 18 "
                                 "(is loguniqueid = yes set in cdr.conf?)")
        f = dict(zip(CDR_COLUMNS, fields, strict=False))
        try:
            rows.append(CdrRow(
                accountcode=f["accountcode"], src=f["src"], dst=f["dst"],
                dcontext=f["dcontext"], channel=f["channel"], dstchannel=f["dstchannel"],
                lastapp=f["lastapp"], start=_when(f["start"], tz),
                answer=_when(f["answer"], tz), end=_when(f["end"], tz),
                billsec=int(f["billsec"] or 0), disposition=f["disposition"],
                uniqueid=f["uniqueid"], line=number, userfield=f.get("userfield", "")))
        except ValueError as exc:
            raise LogFormatError(f"CDR line {number}: {exc}") from exc
    return rows


@dataclass
class QueueCall:
    """What queue_log says about one caller (one callid)."""

    callid: str
    entered: list[tuple[float, str]] = field(default_factory=list)  # (time, queue)
    connects: list[tuple[str, str, float]] = field(default_factory=list)  # (queue, agent, hold)
    ends: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (queue, verb, data)
    # Indices in ``connects`` whose caller was already gone: CONNECT then COMPLETECALLER
    # with talk 0 (the caller hung up during the member's whisper).
    gone: set[int] = field(default_factory=set)
    open_connect: int | None = None  # index of the CONNECT whose COMPLETE* is not read yet

    @property
    def wait_s(self) -> float:
        total = sum(hold for _, _, hold in self.connects)
        for _, verb, data in self.ends:
            if verb in ("ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY") and len(data) > 2:
                total += float(data[2] or 0)
            elif verb == "EXITWITHKEY" and len(data) > 3:
                total += float(data[3] or 0)
        return total


_CONNECTED_ENDS = ("COMPLETEAGENT", "COMPLETECALLER", "BLINDTRANSFER", "ATTENDEDTRANSFER")
_END_VERBS = ("ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY", "COMPLETEAGENT",
              "COMPLETECALLER", "BLINDTRANSFER", "ATTENDEDTRANSFER")


def read_queue_log(text: str) -> dict[str, QueueCall]:
    calls: dict[str, QueueCall] = defaultdict(lambda: QueueCall(""))
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        f = line.split("|")
        if len(f) < 5:
            raise LogFormatError(f"queue_log line {number}: {line[:60]!r}")
        try:
            when = float(f[0])
        except ValueError as exc:
            raise LogFormatError(f"queue_log line {number}: bad time {f[0]!r}") from exc
        callid, queue, agent, verb, data = f[1], f[2], f[3], f[4], f[5:]
        if callid in ("NONE", "MANAGER", "REALTIME", ""):
            continue
        call = calls[callid]
        call.callid = callid
        if verb == "ENTERQUEUE":
            call.entered.append((when, queue))
        elif verb == "CONNECT":
            call.connects.append((queue, agent, float(data[0] or 0) if data else 0.0))
            call.open_connect = len(call.connects) - 1
        elif verb in _END_VERBS:
            if call.open_connect is not None and verb in _CONNECTED_ENDS:
                if verb == "COMPLETECALLER" and len(data) > 1 and data[1].strip() == "0":
                    call.gone.add(call.open_connect)
                call.open_connect = None
            call.ends.append((queue, verb, data))
    return dict(calls)


def queue_outcome(call: QueueCall, short_abandon_s: float) -> tuple[str, str | None]:
    """(outcome, answering member name) as queue_log tells it.

    A CONNECT counts as an answer only when the caller was still there: ``CONNECT`` followed
    by ``COMPLETECALLER|<hold>|0|<pos>`` is a caller who hung up during the member's whisper,
    an abandon by the hold CONNECT reports (the ledger decides the same from AMI).
    """
    answered = [c for i, c in enumerate(call.connects) if i not in call.gone]
    if answered:
        return "answered", answered[-1][1]
    if call.connects:
        hold = call.connects[-1][2]
        return ("short_abandon" if hold < short_abandon_s else "abandoned"), None
    if not call.ends:
        return "unknown", None
    _, verb, data = call.ends[-1]
    if verb == "ABANDON":
        wait = float(data[2] or 0) if len(data) > 2 else 0.0
        return ("short_abandon" if wait < short_abandon_s else "abandoned"), None
    return {"EXITWITHTIMEOUT": "timeout", "EXITEMPTY": "no_agents",
            "EXITWITHKEY": "exit_key"}.get(verb, "unknown"), None
