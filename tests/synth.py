"""Build new AMI recordings from real ones: same events, new identities.

Re-keying shifts every Uniqueid/Linkedid (``<epoch>.<seq>``) so calls never collide, swaps
the caller's number and name, and moves the clock.  The event sequences stay exactly those a
real Asterisk produced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.replay.recording import RecordedConnection, RecordedMessage

_UNIQUEID = re.compile(r"^(\d{10})\.(\d+)$")


@dataclass(frozen=True)
class Rekey:
    shift_s: int               # added to the epoch part of every Uniqueid
    t_shift: float             # added to every message's time
    numbers: dict[str, str]    # old number -> new number (caller, callee)
    names: dict[str, str]      # old caller name -> new


def rekey(connection: RecordedConnection, how: Rekey) -> list[RecordedMessage]:
    out = []
    for message in connection.messages:
        headers = []
        for key, value in message.headers:
            if value is not None:
                match = _UNIQUEID.match(value)
                if match:
                    value = f"{int(match.group(1)) + how.shift_s}.{match.group(2)}"
                else:
                    for old, new in how.numbers.items():
                        value = value.replace(old, new)
                    value = how.names.get(value, value)
            headers.append((key, value))
        out.append(RecordedMessage(headers, None if message.t is None else message.t +
                                   how.t_shift))
    return out


def merge(banner: str, *parts: list[RecordedMessage]) -> RecordedConnection:
    """One connection holding every part, in time order (calls may overlap)."""
    messages = sorted((m for part in parts for m in part), key=lambda m: m.t or 0.0)
    return RecordedConnection(banner, messages)
