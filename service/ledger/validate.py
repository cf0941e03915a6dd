"""The ledger's edge: every AMI event is checked before the ledger sees it.

A PBX (or anything that can reach the AMI port, or a recording) can send values the ledger
cannot store: ``Timestamp: nan`` or ``1e12`` (no ``datetime`` holds them), a 9,000-character
``Linkedid`` (a key PostgreSQL indexes, and a NOTIFY payload over its 8000-byte limit), a
20-digit ``Position`` (no ``integer`` column holds it).  One such event must never stop the
ledger, so it is repaired or refused here, counted, and logged (rate-limited):

* a ``Timestamp`` that is not a finite epoch between 2000 and 2100 is removed: the event is
  kept and timed by when it was read (a ``Hangup`` must not be lost for a bad clock);
* an identifier (``Uniqueid``, ``Linkedid``, channel names, ...) longer than Asterisk ever
  makes one refuses the event: cut short it could name another call;
* a count or duration Asterisk sends as a small whole number (``Position``, ``HoldTime``, ...)
  that is not one is removed (the ledger then decides without it, as when it is missing);
* any other value longer than :data:`MAX_TEXT` characters is cut to that length (caller ID
  names are caller-controlled; what is kept is still what Asterisk sent).

The rules are pure functions (:func:`check_event`), tested without sockets.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from dataclasses import dataclass, field

# Asterisk's AST_MAX_UNIQUEID is 150; channel names are far shorter than 256 in practice.
MAX_ID = 150
MAX_CHANNEL = 256
MAX_TEXT = 512
# Whole numbers Asterisk sends for counts and durations fit PostgreSQL's integer (9 digits).
MAX_DIGITS = 9
# A Timestamp outside [2000-01-01, 2100-01-01) UTC is not a clock reading.
MIN_EPOCH = 946_684_800.0
MAX_EPOCH = 4_102_444_800.0

ID_HEADERS = ("Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid", "TransfereeLinkedid",
              "TransfereeUniqueid", "TransfererLinkedid", "TransfererUniqueid",
              "TargetLinkedid", "TargetUniqueid", "SecondTransfererLinkedid",
              "SecondTransfererUniqueid", "BridgeUniqueid")
CHANNEL_HEADERS = ("Channel", "DestChannel", "TransfereeChannel", "TransfererChannel",
                   "TargetChannel")
NUMERIC_HEADERS = ("Position", "RingTime", "HoldTime", "TalkTime", "Duration",
                   "BillableSeconds", "Wait", "Count", "OriginalPosition", "Cause")


def plausible_epoch(text: str | None) -> float | None:
    """The epoch seconds in ``text`` if it is a finite time between 2000 and 2100, else None.

    >>> plausible_epoch("1795346827.123456")
    1795346827.123456
    >>> plausible_epoch("nan"), plausible_epoch("1e12"), plausible_epoch("-1"), plausible_epoch("x")
    (None, None, None, None)
    """
    if not text or len(text) > 32:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or not MIN_EPOCH <= value < MAX_EPOCH:
        return None
    return value


@dataclass
class Verdict:
    """What :func:`check_event` found: ``keep`` is False when the event is refused."""

    keep: bool = True
    problems: list[str] = field(default_factory=list)


def check_event(event: MutableMapping[str, str]) -> Verdict:
    """Check (and repair in place) one AMI event or list item; see the module doc.

    >>> e = {"Event": "Hangup", "Timestamp": "nan", "Uniqueid": "1.2", "Linkedid": "1.2"}
    >>> v = check_event(e); v.keep, v.problems, "Timestamp" in e
    (True, ['Timestamp not a plausible time'], False)
    >>> check_event({"Event": "Newchannel", "Linkedid": "9" * 9000}).keep
    False
    """
    verdict = Verdict()
    stamp = event.get("Timestamp")
    if stamp is not None and plausible_epoch(stamp) is None:
        del event["Timestamp"]
        verdict.problems.append("Timestamp not a plausible time")
    for key in ID_HEADERS:
        value = event.get(key)
        if value is not None and len(value) > MAX_ID:
            verdict.keep = False
            verdict.problems.append(f"{key} longer than {MAX_ID} characters")
    for key in CHANNEL_HEADERS:
        value = event.get(key)
        if value is not None and len(value) > MAX_CHANNEL:
            verdict.keep = False
            verdict.problems.append(f"{key} longer than {MAX_CHANNEL} characters")
    if not verdict.keep:
        return verdict
    for key in NUMERIC_HEADERS:
        value = event.get(key)
        if value and (len(value) > MAX_DIGITS or not value.isascii()):
            del event[key]
            verdict.problems.append(f"{key} not a small whole number")
    for key, value in list(event.items()):
        if len(value) > MAX_TEXT:
            event[key] = value[:MAX_TEXT]
            verdict.problems.append(f"{key} cut to {MAX_TEXT} characters")
    return verdict
