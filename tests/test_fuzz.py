"""Property tests: malformed, truncated, oversized and CR/LF-laden input never crashes or
hangs the parser, the adapter or the ledger; well-formed input parses the same however the
stream is cut."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.ami.adapter import AmiClient
from service.ami.parser import AmiMessage, AmiParser, BadMessage
from service.ledger.machine import LedgerMachine
from service.ledger.model import OUTCOMES
from tests.conftest import trace_dir

header_key = st.text(st.characters(min_codepoint=0x41, max_codepoint=0x7A), min_size=1,
                     max_size=12).filter(lambda k: ":" not in k)
header_value = st.text(st.characters(blacklist_characters="\r\n",
                                     blacklist_categories=("Cs",)), max_size=40)
message = st.lists(st.tuples(header_key, header_value), min_size=0, max_size=6)


def encode(event: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"Event: {event}", *[f"{k}: {v}" for k, v in headers]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def cut(data: bytes, points: list[int]) -> list[bytes]:
    points = sorted({p % (len(data) + 1) for p in points})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


@settings(max_examples=300, deadline=None)
@given(st.lists(message, min_size=1, max_size=8), st.lists(st.integers(0, 10_000), max_size=30))
def test_any_cutting_gives_the_same_messages(messages, points) -> None:
    stream = b"Asterisk Call Manager/13.0.0\r\n" + b"".join(
        encode(f"E{i}", headers) for i, headers in enumerate(messages))
    parser = AmiParser()
    out = [m for piece in cut(stream, points) for m in parser.feed(piece)]
    parsed = [m for m in out if isinstance(m, AmiMessage)]
    assert [m["Event"] for m in parsed] == [f"E{i}" for i in range(len(messages))]
    for m, headers in zip(parsed, messages, strict=True):
        for key, value in headers:
            if key != "Event":
                assert value in m.all(key)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=4000), st.lists(st.integers(0, 4000), max_size=20))
def test_garbage_never_raises_and_memory_stays_bounded(data, points) -> None:
    parser = AmiParser(max_message_bytes=1024)
    for piece in cut(b"Asterisk Call Manager/13.0.0\r\n" + data, points):
        for item in parser.feed(piece):
            assert isinstance(item, AmiMessage | BadMessage) or hasattr(item, "version")
        assert parser.buffered <= 1024 + len(piece)


junk_piece = st.one_of(
    st.binary(max_size=300),
    st.just(b"\r\n\r\n"),
    st.just(b"Event: X\r\nCallerIDName: \xe7\x94\xb0\xe4\xb8\r\n\r\n"),  # truncated UTF-8
    st.just(b"Event: Big\r\nData: " + b"y" * 70_000 + b"\r\n\r\n"),
    st.just(b"no colon here\r\nEvent Hangup\r\n\r\n"),
    st.just(b"Event: Hangup\r\nCallerIDName: x\rAction: Originate\r\n\r\n"),
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(junk_piece, max_size=8))
def test_adapter_survives_junk_over_a_real_socket(pieces) -> None:
    asyncio.run(_adapter_with_junk(b"".join(pieces)))


async def _adapter_with_junk(junk: bytes) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/13.0.0\r\n")
        login = await reader.readuntil(b"\r\n\r\n")
        action_id = next(line.split(": ", 1)[1] for line in login.decode().split("\r\n")
                         if line.startswith("ActionID"))
        writer.write(f"Response: Success\r\nActionID: {action_id}\r\n\r\n".encode())
        # Junk, then a terminator to close whatever the junk left open, then a good event.
        writer.write(junk + b"\r\n\r\nEvent: Good\r\nN: 1\r\n\r\n")
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            await reader.read()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    received: list[AmiMessage] = []
    client = AmiClient("f", "127.0.0.1", port, "u", "p", received.extend, ping_interval=60,
                       max_message_bytes=65536)
    task = asyncio.create_task(client.run())
    try:
        for _ in range(300):
            if any(m.get("Event") == "Good" for m in received):
                break
            await asyncio.sleep(0.01)
        assert any(m.get("Event") == "Good" for m in received), "stream handled after junk"
        assert client.stats.connects == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()
        await server.wait_closed()


@functools.cache
def _recording_events(name: str) -> list[dict[str, str]]:
    events = []
    for line in (trace_dir(name) / "ami.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "headers" in record:
            event: dict[str, str] = {}
            for key, value in record["headers"]:
                event.setdefault(key, value or "")
            events.append(event)
    return events


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.floats(0.0, 0.3), st.floats(0.0, 0.3))
def test_ledger_survives_lost_and_repeated_events(seed: int, drop: float,
                                                  repeat: float) -> None:
    """Whatever is lost or doubled, every ended inbound call has exactly one valid outcome
    and the machine holds no call without a live channel."""
    rnd = random.Random(seed)
    machine = LedgerMachine("f")
    seen = {}
    for i, event in enumerate(_recording_events("burst_concurrent")):
        if rnd.random() < drop:
            continue
        times = 2 if rnd.random() < repeat else 1
        for _ in range(times):
            machine.feed(event, 1_000.0 + i * 0.01)
        for call in machine.take_dirty():
            seen[call.linkedid] = call
    for call in seen.values():
        if call.direction == "inbound" and call.ended_at is not None:
            assert call.outcome in OUTCOMES
    for call in machine.calls.values():
        assert call.live, "a call without live channels must have been closed"
