"""Reading AMI recordings: ``ami.raw`` (exact bytes) and ``ami.jsonl`` (one message a line).

The jsonl form (``{"t": 12.3, "conn": 1, "headers": [["Event", "Hangup"], ...]}``, a banner as
``{"t": 0.001, "conn": 1, "banner": "Asterisk Call Manager/13.0.0"}``) keeps arrival times; the
raw form does not.  Both may hold several connections, each starting with its own banner.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from service.ami.parser import BANNER_PREFIX, TERMINATOR

Headers = list[tuple[str, str | None]]


@dataclass
class RecordedMessage:
    headers: Headers
    t: float | None = None

    def get(self, key: str) -> str | None:
        for k, value in self.headers:
            if k == key:
                return value
        return None

    @property
    def is_event(self) -> bool:
        return self.get("Event") is not None


@dataclass
class RecordedConnection:
    banner: str
    messages: list[RecordedMessage] = field(default_factory=list)


class RecordingError(ValueError):
    """The file is not an AMI recording this tool can read."""


def load_recording(path: Path) -> list[RecordedConnection]:
    data = path.read_bytes()
    if data.lstrip().startswith(b"{"):
        return _load_jsonl(data, path)
    return _load_raw(data, path)


def _load_jsonl(data: bytes, path: Path) -> list[RecordedConnection]:
    connections: dict[object, RecordedConnection] = {}
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            conn = record.get("conn", 1)
            if "banner" in record:
                connections[conn] = RecordedConnection(str(record["banner"]))
                continue
            headers = [(str(k), None if v is None else str(v)) for k, v in record["headers"]]
            t = float(record["t"]) if record.get("t") is not None else None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RecordingError(f"{path}:{number}: not an ami.jsonl record ({exc})") from exc
        target = connections.setdefault(conn, RecordedConnection(BANNER_PREFIX + "13.0.0"))
        target.messages.append(RecordedMessage(headers, t))
    if not connections:
        raise RecordingError(f"{path}: no AMI messages")
    return list(connections.values())


def _load_raw(data: bytes, path: Path) -> list[RecordedConnection]:
    connections: list[RecordedConnection] = []
    prefix = BANNER_PREFIX.encode()
    rest = data
    while rest:
        if not rest.startswith(prefix):
            raise RecordingError(f"{path}: expected an AMI banner at byte {len(data) - len(rest)}")
        line_end = rest.find(b"\r\n")
        if line_end < 0:
            break
        current = RecordedConnection(rest[:line_end].decode("utf-8", "replace"))
        connections.append(current)
        rest = rest[line_end + 2:]
        while rest and not rest.startswith(prefix):
            end = rest.find(TERMINATOR)
            if end < 0:
                rest = b""  # an incomplete tail: the recording stopped mid-message
                break
            chunk, rest = rest[:end], rest[end + len(TERMINATOR):]
            headers: Headers = []
            for raw_line in chunk.decode("utf-8", "replace").split("\r\n"):
                key, sep, value = raw_line.partition(": ")
                headers.append((key, value) if sep else (raw_line, None))
            current.messages.append(RecordedMessage(headers))
    if not connections:
        raise RecordingError(f"{path}: no AMI banner")
    return connections


def base_epoch(connections: list[RecordedConnection]) -> float | None:
    """Epoch of ``t = 0``, from the first ``EventTV`` (security events carry one).

    ``EventTV: 2026-11-22T11:27:06.631+0000`` at ``t = 0.001`` gives 1795346826.630.
    """
    for connection in connections:
        for message in connection.messages:
            tv = message.get("EventTV")
            if tv and message.t is not None:
                try:
                    moment = datetime.strptime(tv, "%Y-%m-%dT%H:%M:%S.%f%z")
                except ValueError:
                    continue
                return moment.timestamp() - message.t
    return None


def has_times(connections: list[RecordedConnection]) -> bool:
    """Whether events of the recording can be given the PBX's own times: arrival times with
    an ``EventTV`` to anchor them (``ami.jsonl``), or ``Timestamp`` headers of their own
    (a PBX with ``timestampevents = yes``).  An ``ami.raw`` of a PBX without them has none."""
    if base_epoch(connections) is not None:
        return True
    return any(m.get("Timestamp") is not None for c in connections for m in c.messages
               if m.is_event)
