"""Pure readers of Asterisk's list answers used to resynchronise after a (re)connect.

``CoreShowChannels`` answers one ``CoreShowChannel`` event per live channel::

    Event: CoreShowChannel
    ActionID: 4
    Channel: Local/0312345678@from-pstn-00000000;2
    Context: from-pstn
    Exten: 0312345678
    CallerIDNum: 09011112222
    AccountCode: KSL
    Application: Queue
    ApplicationData: q-ksl,t,,custom/whisper-ksl,30
    Duration: 00:00:12
    BridgeId:
    Uniqueid: 1795346827.1
    Linkedid: 1795346827.0

and ``QueueStatus`` one ``QueueEntry`` per waiting caller (``Queue``, ``Position``,
``Uniqueid``, ``Wait`` in seconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from service.ledger.machine import SnapshotChannel, SnapshotQueueEntry

_UNKNOWN = ("", "<unknown>")


def _duration_s(text: str) -> float:
    """``HH:MM:SS`` (or plain seconds) to seconds; 0 when unreadable.

    >>> _duration_s("00:01:05"), _duration_s("7"), _duration_s("bad")
    (65.0, 7.0, 0.0)
    """
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        return 0.0
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def _opt(value: str | None) -> str | None:
    return None if value is None or value in _UNKNOWN else value


def channels_from(messages: Iterable[Mapping[str, str]]) -> list[SnapshotChannel]:
    out = []
    for m in messages:
        if m.get("Event") != "CoreShowChannel" or not m.get("Uniqueid"):
            continue
        out.append(SnapshotChannel(
            uniqueid=m["Uniqueid"], linkedid=m.get("Linkedid") or m["Uniqueid"],
            name=m.get("Channel", ""), context=m.get("Context", ""), exten=m.get("Exten", ""),
            caller_number=_opt(m.get("CallerIDNum")), caller_name=_opt(m.get("CallerIDName")),
            accountcode=_opt(m.get("AccountCode")), application=_opt(m.get("Application")),
            bridge_id=_opt(m.get("BridgeId")), duration_s=_duration_s(m.get("Duration", "0"))))
    return out


def queue_entries_from(messages: Iterable[Mapping[str, str]]) -> list[SnapshotQueueEntry]:
    out = []
    for m in messages:
        if m.get("Event") != "QueueEntry" or not m.get("Uniqueid"):
            continue
        position = m.get("Position", "")
        out.append(SnapshotQueueEntry(
            queue=m.get("Queue", ""), uniqueid=m["Uniqueid"],
            position=int(position) if position.isdigit() else None,
            wait_s=_duration_s(m.get("Wait", "0"))))
    return out
