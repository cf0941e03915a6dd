"""The AMI adapter against real sockets: each panoramisk trap named in DESIGN.md, reproduced."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from service.ami.adapter import (
    AmiActionTimeout,
    AmiClient,
    AmiConnectionLost,
    AmiNotConnected,
    backoff_delay,
)
from service.ami.parser import AmiMessage
from service.replay.recording import load_recording
from service.replay.server import ReplayServer
from tests.conftest import trace_dir
from tests.replaying import replay
from tests.waiting import running

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class FakeAmi:
    """A scripted AMI peer: banner, Login accepted, then whatever the test's script does."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> FakeAmi:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"Asterisk Call Manager/13.0.0\r\n")
        try:
            login = await read_action(reader)
            writer.write(f"Response: Success\r\nActionID: {login['ActionID']}\r\n"
                         "Message: Authentication accepted\r\n\r\n".encode())
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def read_action(reader: asyncio.StreamReader) -> dict[str, str]:
    raw = await reader.readuntil(b"\r\n\r\n")
    return dict(line.split(": ", 1) for line in raw.decode().strip().split("\r\n"))


def event(name: str, **headers: str) -> bytes:
    lines = [f"Event: {name}", *[f"{k}: {v}" for k, v in headers.items()]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def make_client(port: int, received: list[AmiMessage], **options: float) -> AmiClient:
    return AmiClient("t", "127.0.0.1", port, "u", "p", received.extend,
                     reconnect_min=0.05, reconnect_max=0.1, **options)  # type: ignore[arg-type]


async def test_japanese_names_survive_one_byte_per_read(pool, tmp_path: Path) -> None:
    """panoramisk decodes each read with errors='ignore': a split character was lost."""
    folder = trace_dir("japanese_caller_names")
    report, result = await replay(pool, tmp_path, folder / "ami.jsonl", chunk_size=1)
    names = [r["caller_name"] for r in report]
    truth = [c["caller_name"] for c in json.loads((folder / "scenario.json").read_text())["calls"]]
    assert names == truth
    assert "株式会社テストホールディングス東日本支社営業部第二課" in names
    assert "ｽｽﾞｷ ｲﾁﾛｳ" in names
    assert result.pipeline.client.stats.bad_messages == 0


async def test_byte_reads_really_are_single_bytes() -> None:
    """The replay server's chunk_size=1 really delivers one byte per read to the protocol."""
    sizes: list[int] = []
    connections = load_recording(trace_dir("japanese_caller_names") / "ami.jsonl")
    connections[0].messages = connections[0].messages[:40]
    server = ReplayServer(connections, chunk_size=1)
    port = await server.start()
    received: list[AmiMessage] = []
    client = make_client(port, received)
    from service.ami import adapter

    original = adapter.HardenedAMIProtocol.data_received

    def spy(self: adapter.HardenedAMIProtocol, data: bytes) -> None:
        sizes.append(len(data))
        original(self, data)

    adapter.HardenedAMIProtocol.data_received = spy  # type: ignore[method-assign]
    try:
        async with running(client.run()):
            await asyncio.wait_for(server.finished.wait(), 30)
            await client.send_action({"Action": "Ping"})
            await client.drained()
    finally:
        adapter.HardenedAMIProtocol.data_received = original  # type: ignore[method-assign]
        await server.close()
    # After the banner and the login answer, the events came one byte per read.
    event_reads = sizes[2:]
    assert len(event_reads) > 10_000
    assert sum(1 for size in event_reads if size == 1) / len(event_reads) > 0.95
    names = {m.get("CallerIDName") for m in received}
    assert "田中太郎" in names


async def test_unanswered_ping_reconnects() -> None:
    """panoramisk's ping never checked the answer: a dead peer went unnoticed."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(60)  # reads nothing, answers nothing

    received: list[AmiMessage] = []
    async with FakeAmi(silent) as fake:
        client = make_client(fake.port, received, ping_interval=0.1, ping_timeout=0.2)
        async with running(client.run()):
            for _ in range(100):
                if fake.connections >= 2:
                    break
                await asyncio.sleep(0.05)
    assert fake.connections >= 2


async def test_action_while_disconnected_fails_at_once() -> None:
    """panoramisk queued actions sent while disconnected: their futures never resolved."""
    client = make_client(1, [])
    with pytest.raises(AmiNotConnected):
        await asyncio.wait_for(client.send_action({"Action": "Ping"}), 1)


async def test_every_action_has_a_timeout_and_fails_on_disconnect() -> None:
    done = asyncio.Event()

    async def ignore_then_close(reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        await read_action(reader)  # the first action: never answered
        await done.wait()

    received: list[AmiMessage] = []
    async with FakeAmi(ignore_then_close) as fake:
        client = make_client(fake.port, received, ping_interval=60)
        async with running(client.run()):
            await asyncio.wait_for(client.logged_in.wait(), 5)
            with pytest.raises(AmiActionTimeout):
                await client.send_action({"Action": "CoreSettings"}, timeout=0.2)
            pending = asyncio.create_task(client.send_action({"Action": "Status"}, timeout=5))
            await asyncio.sleep(0.05)
            done.set()  # the peer closes: the pending action fails instead of hanging
            with pytest.raises(AmiConnectionLost):
                await pending


async def test_handler_exception_does_not_drop_the_connection() -> None:
    """In panoramisk an exception in an event callback closed the connection."""

    async def two_events(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(event("Boom"))
        await writer.drain()
        await asyncio.sleep(0.2)  # a later read: the adapter isolates batches, the ledger
        writer.write(event("After", N="1"))  # isolates events inside a batch itself
        ping = await read_action(reader)
        writer.write(f"Response: Success\r\nActionID: {ping['ActionID']}\r\n"
                     "Ping: Pong\r\n\r\n".encode())
        await asyncio.sleep(60)

    seen: list[str] = []

    def handler(events: list[AmiMessage]) -> None:
        for ev in events:
            seen.append(ev["Event"])
            if ev["Event"] == "Boom":
                raise RuntimeError("handler bug")

    async with FakeAmi(two_events) as fake:
        client = AmiClient("t", "127.0.0.1", fake.port, "u", "p", handler, ping_interval=60)
        async with running(client.run()):
            await asyncio.wait_for(client.logged_in.wait(), 5)
            for _ in range(100):
                if "After" in seen:
                    break
                await asyncio.sleep(0.02)
            assert seen == ["Boom", "After"]  # events after the failing batch are handled
            await client.send_action({"Action": "Ping"}, timeout=1)  # still usable
            assert client.stats.handler_errors == 1
            assert client.logged_in.is_set() and fake.connections == 1


async def test_events_in_order_and_reading_paused_when_queue_full() -> None:
    count = 3000

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"".join(event("Seq", N=str(i)) for i in range(count)))
        await writer.drain()
        await asyncio.sleep(60)

    seen: list[int] = []

    async def slow_handler(events: list[AmiMessage]) -> None:
        seen.extend(int(ev["N"]) for ev in events)
        await asyncio.sleep(0.001)

    async with FakeAmi(flood) as fake:
        client = AmiClient("t", "127.0.0.1", fake.port, "u", "p", slow_handler,
                           ping_interval=60, queue_max=100)
        async with running(client.run()):
            for _ in range(400):
                if len(seen) == count:
                    break
                await asyncio.sleep(0.01)
    assert seen == list(range(count))
    assert client.stats.paused >= 1


async def test_malformed_and_oversized_messages_are_skipped() -> None:
    junk = (b"this line has no colon\r\n\r\n"
            + b"Event: Big\r\nData: " + b"x" * 400_000 + b"\r\n\r\n"
            + b"Event: Bad\xff\xfeName\r\nCallerIDName: \xe7\x94\xb0\r\n\r\n"
            + event("Good", CallerIDName="田中太郎"))

    async def send_junk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(junk)
        await asyncio.sleep(60)

    received: list[AmiMessage] = []
    async with FakeAmi(send_junk) as fake:
        client = make_client(fake.port, received, ping_interval=60)
        async with running(client.run()):
            for _ in range(200):
                if any(m.get("Event") == "Good" for m in received):
                    break
                await asyncio.sleep(0.01)
    assert [m["CallerIDName"] for m in received if m["Event"] == "Good"] == ["田中太郎"]
    assert not any(m.get("Event") == "Big" for m in received)
    assert client.stats.bad_messages >= 2 and fake.connections == 1


def test_reconnect_backoff_doubles_and_is_capped_for_ever() -> None:
    assert 0.4 <= backoff_delay(1, 0.5, 30) <= 0.6
    assert 1.6 <= backoff_delay(3, 0.5, 30) <= 2.4
    # After days of a PBX being away: still the cap, never an overflow.
    assert 24 <= backoff_delay(100_000, 0.5, 30) <= 36


async def test_cancelled_at_any_step_of_connecting_the_client_stops() -> None:
    """Shutdown cancels the client wherever it is: connecting, waiting for the banner,
    logging in, pinging.  (On 3.11 ``asyncio.wait_for`` dropped a cancellation that arrived
    as the awaited step completed; the reconnect loop then ran on after shutdown.)"""

    async def idle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with FakeAmi(idle) as fake:
        for turns in range(60):
            client = make_client(fake.port, [], ping_interval=0.01, ping_timeout=0.5)
            task = asyncio.create_task(client.run())
            for _ in range(turns):
                await asyncio.sleep(0)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=2)
            assert done, f"still running 2 s after a cancel at loop turn {turns}"
