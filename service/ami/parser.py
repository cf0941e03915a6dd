"""Pure AMI wire parser: bytes in, messages out.  No sockets, no business rules.

A session starts with a single banner line, then messages of ``Key: Value`` lines, each message
ended by an empty line::

    Asterisk Call Manager/13.0.0\\r\\n
    Response: Success\\r\\n
    ActionID: svc-1\\r\\n
    Message: Authentication accepted\\r\\n
    \\r\\n
    Event: NewCallerid\\r\\n
    Channel: Local/0312345678@from-pstn-00000000;1\\r\\n
    CallerIDNum: 09010101010\\r\\n
    CallerIDName: 田中太郎\\r\\n
    \\r\\n

Framing is done on bytes and each complete message is decoded on its own.  The terminator is
ASCII, so a UTF-8 character is never split between two messages, however the TCP stream was cut
into reads (panoramisk decodes every read with ``errors='ignore'`` and loses such characters).
"""

from __future__ import annotations

from dataclasses import dataclass

TERMINATOR = b"\r\n\r\n"
BANNER_PREFIX = "Asterisk Call Manager/"


class AmiMessage(dict[str, str]):
    """One AMI event or response: the first value of each header, in wire order.

    Headers that repeat (``Variable``, ``ChanVariable``) keep every value in ``repeated``.
    """

    __slots__ = ("malformed", "repeated")

    def __init__(self) -> None:
        super().__init__()
        self.repeated: dict[str, list[str]] | None = None
        self.malformed = 0

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def is_response(self) -> bool:
        return "Response" in self

    def all(self, key: str) -> list[str]:
        """Every value of a header that may repeat, in wire order."""
        if self.repeated and key in self.repeated:
            return self.repeated[key]
        value = self.get(key)
        return [] if value is None else [value]


@dataclass(frozen=True)
class Banner:
    """The first line of a session, e.g. ``Asterisk Call Manager/13.0.0``."""

    version: str


@dataclass(frozen=True)
class BadMessage:
    """Bytes that could not be made into a message; logged and skipped by the adapter."""

    reason: str
    sample: bytes


def parse_message(text: str, kinds: tuple[str, ...] = ("Event", "Response")) -> AmiMessage | None:
    """Parse one message body (without its terminator).

    >>> m = parse_message("Event: VarSet\\r\\nVariable: QUEUESTATUS\\r\\nValue: TIMEOUT")
    >>> m.event, m["Variable"], m["Value"]
    ('VarSet', 'QUEUESTATUS', 'TIMEOUT')

    Returns None when no header names its kind (``Event`` or ``Response``; ``Action`` for
    the server side).
    """
    message = AmiMessage()
    for line in text.split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            # "Key:" with an empty value is sent without the space by some modules.
            if line.endswith(":") and " " not in line:
                key, value = line[:-1], ""
            elif line.strip():
                message.malformed += 1
                continue
            else:
                continue
        if key in message:
            if message.repeated is None:
                message.repeated = {}
            message.repeated.setdefault(key, [message[key]]).append(value)
        else:
            message[key] = value
    for kind in kinds:
        if kind in message:
            return message
    return None


class AmiParser:
    """Incremental framer for one AMI connection.

    ``feed`` takes whatever a socket read returned and gives back the complete items in it.
    Memory is bounded: a message larger than ``max_message_bytes`` is dropped (reported as a
    :class:`BadMessage`) and the parser resynchronises on the next terminator.
    """

    def __init__(self, max_message_bytes: int = 256 * 1024, *, expect_banner: bool = True,
                 kinds: tuple[str, ...] = ("Event", "Response")) -> None:
        self.max_message_bytes = max_message_bytes
        self.kinds = kinds
        self._buffer = bytearray()
        self._banner_seen = not expect_banner
        self._discarding = False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[AmiMessage | Banner | BadMessage]:
        buf = self._buffer
        buf += data
        out: list[AmiMessage | Banner | BadMessage] = []
        if not self._banner_seen:
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > 1024:
                    out.append(BadMessage("no banner line", bytes(buf[:80])))
                    self._banner_seen = True
                return out
            line = bytes(buf[:end]).decode("utf-8", "replace")
            self._banner_seen = True
            if line.startswith(BANNER_PREFIX):
                del buf[: end + 2]
                out.append(Banner(line[len(BANNER_PREFIX):].strip()))
            else:
                out.append(BadMessage("no banner line", line.encode()[:80]))
        if TERMINATOR not in buf:
            self._check_size(out)
            return out
        chunks = bytes(buf).split(TERMINATOR)
        rest = chunks.pop()
        buf.clear()
        buf += rest
        for chunk in chunks:
            if self._discarding:
                # The tail of an oversized message: drop it, the next one starts clean.
                self._discarding = False
                continue
            if len(chunk) > self.max_message_bytes:
                out.append(BadMessage("message too large", chunk[:80]))
                continue
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError:
                text = chunk.decode("utf-8", "replace")
                out.append(BadMessage("invalid UTF-8 (decoded with replacement)", chunk[:80]))
            # Tolerate bare "\n" line ends and stray leading blank lines.
            if "\r\n" not in text and "\n" in text:
                text = text.replace("\n", "\r\n")
            text = text.strip("\r\n")
            if not text:
                continue
            message = parse_message(text, self.kinds)
            if message is None:
                out.append(BadMessage(f"no {' or '.join(self.kinds)} header", chunk[:80]))
            else:
                out.append(message)
        self._check_size(out)
        return out

    def _check_size(self, out: list[AmiMessage | Banner | BadMessage]) -> None:
        if len(self._buffer) > self.max_message_bytes:
            out.append(BadMessage("message too large", bytes(self._buffer[:80])))
            self._buffer.clear()
            self._discarding = True
