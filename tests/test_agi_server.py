"""The FastAGI server over real sockets: panoramisk's traps fixed, sessions always end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from agi.protocol import AgiReply
from agi.server import AgiHangup, AgiRequest, AgiServer
from tests.agi_peer import agi_session, route_headers
from tests.waiting import eventually


@pytest.fixture
async def server() -> AsyncIterator[AgiServer]:
    srv = AgiServer(header_timeout=0.5, command_timeout=0.5, session_timeout=5,
                    max_sessions=3, max_header_bytes=4096)
    srv.port = await srv.start("127.0.0.1", 0)  # type: ignore[attr-defined]
    yield srv
    await srv.close(grace=1)


async def raw(port: int, data: bytes, *, close: bool = True) -> tuple[asyncio.StreamReader,
                                                                         asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    if close:
        writer.write_eof()
    return reader, writer


async def settled(server: AgiServer, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while server.sessions:
        assert time.monotonic() < deadline, f"{len(server.sessions)} session(s) stuck"
        await asyncio.sleep(0.01)


async def test_eof_in_the_middle_of_the_headers_ends_the_session(server: AgiServer) -> None:
    """panoramisk's header loop spins for ever here (read() returns b'' and never yields)."""
    server.add_route("route", lambda request: None)
    cpu_before = time.process_time()
    reader, writer = await raw(server.port, b"agi_network: yes\nagi_network_script: ro")
    assert await asyncio.wait_for(reader.read(), 2) == b""  # the server closed its side
    await settled(server)
    await asyncio.sleep(0.3)
    assert time.process_time() - cpu_before < 0.25, "no CPU spin"
    writer.close()


async def test_slow_headers_time_out(server: AgiServer) -> None:
    reader, writer = await raw(server.port, b"agi_network: yes\n", close=False)
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), 3) == b""
    assert 0.4 < time.monotonic() - started < 2.0
    await settled(server)
    writer.close()


async def test_oversized_headers_are_refused(server: AgiServer) -> None:
    reader, writer = await raw(server.port, b"agi_x: " + b"y" * 10_000 + b"\n", close=False)
    assert await asyncio.wait_for(reader.read(), 3) == b""
    await settled(server)
    writer.close()


async def test_unknown_script_and_garbage_headers_close_cleanly(server: AgiServer) -> None:
    assert await agi_session(server.port, route_headers("0312345678", "1", script="nope")) == []
    reader, writer = await raw(server.port, b"\x00\xff garbage\n\n")
    assert await asyncio.wait_for(reader.read(), 2) == b""
    await settled(server)
    writer.close()


async def test_plain_function_routes_work_on_311(server: AgiServer) -> None:
    seen = []

    def plain(request: AgiRequest) -> None:  # panoramisk wraps it with asyncio.coroutine
        seen.append(request.headers["agi_arg_1"])

    server.add_route("route", plain)
    await agi_session(server.port, route_headers("0312345678", "09011112222"))
    assert seen == ["0312345678"]


async def test_replies_510_511_520_and_hangup(server: AgiServer) -> None:
    replies: list[AgiReply | str] = []

    async def probe(request: AgiRequest) -> None:
        replies.append(await request.send_command("BOGUS COMMAND"))
        replies.append(await request.send_command("SET VARIABLE"))
        replies.append(await request.send_command("SET VARIABLE A \"1\""))
        try:
            await request.send_command("SET VARIABLE B \"2\"")
        except AgiHangup as exc:
            replies.append(f"hangup: {exc}")

    answers = iter([
        "510 Invalid or unknown command",
        "520-Invalid command syntax.  Proper usage follows:\n"
        "Usage: SET VARIABLE <variablename> <value>\n520 End of proper usage.",
        "HANGUP\n200 result=1",
        "511 Command Not Permitted on a dead channel or intercept routine",
    ])
    server.add_route("route", probe)
    await agi_session(server.port, route_headers("0312345678", "1"), lambda _: next(answers))
    await settled(server)
    assert isinstance(replies[0], AgiReply) and replies[0].code == 510 and not replies[0].ok
    assert isinstance(replies[1], AgiReply) and replies[1].code == 520
    assert "Usage: SET VARIABLE" in replies[1].text
    assert isinstance(replies[2], AgiReply) and replies[2].ok  # HANGUP line, then the reply
    assert replies[3] == "hangup: 511 Command Not Permitted on a dead channel or intercept routine"


async def test_unanswered_command_times_out_without_a_stuck_task(server: AgiServer) -> None:
    async def ask(request: AgiRequest) -> None:
        await request.set_variable("X", "1")

    server.add_route("route", ask)
    reader, writer = await raw(server.port, "".join(
        f"{k}: {v}\n" for k, v in route_headers("0312345678", "1")).encode() + b"\n",
        close=False)
    assert (await asyncio.wait_for(reader.readline(), 2)).startswith(b"SET VARIABLE X")
    assert await asyncio.wait_for(reader.read(), 3) == b""  # closed after command_timeout
    await settled(server)
    writer.close()


async def test_session_cap_refuses_at_once(server: AgiServer) -> None:
    release = asyncio.Event()

    async def hold(request: AgiRequest) -> None:
        await release.wait()

    server.add_route("route", hold)
    held = [asyncio.create_task(agi_session(server.port, route_headers("0312345678", "1")))
            for _ in range(3)]
    await eventually(lambda: len(server.sessions) >= 3)
    started = time.monotonic()
    assert await agi_session(server.port, route_headers("0312345678", "1")) == []
    assert time.monotonic() - started < 0.5 and server.refused == 1
    release.set()
    await asyncio.gather(*held)


async def test_graceful_close_lets_sessions_in_flight_finish() -> None:
    server = AgiServer(command_timeout=2)
    port = await server.start("127.0.0.1", 0)
    finished = []

    async def slow(request: AgiRequest) -> None:
        await asyncio.sleep(0.3)
        await request.set_variable("DONE", "1")
        finished.append(True)

    server.add_route("route", slow)
    session = asyncio.create_task(agi_session(port, route_headers("0312345678", "1")))
    await eventually(lambda: server.sessions)
    await server.close(grace=2)
    assert await session == ['SET VARIABLE DONE "1"'] and finished == [True]
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_caller_controlled_text_cannot_inject_a_command(server: AgiServer) -> None:
    async def echo(request: AgiRequest) -> None:
        await request.set_variable("CALLER_NAME", request.headers["agi_calleridname"])

    server.add_route("route", echo)
    name = '田中 "太郎"\\ EXEC Dial'
    commands = await agi_session(server.port, route_headers("0312345678", "1", name=name))
    assert commands == ['SET VARIABLE CALLER_NAME "田中 \\"太郎\\"\\\\ EXEC Dial"']


async def test_a_burst_of_calls_all_reach_the_route() -> None:
    """A PBX that starts hundreds of calls at once (after a restart, a campaign) opens them
    all before the server has accepted one: the listen queue must hold them, or the kernel
    drops connections Asterisk thinks are open."""
    server = AgiServer(max_sessions=400)
    port = await server.start("127.0.0.1", 0)
    try:
        server.add_route("route", lambda request: request.set_variable("ROUTED", "1"))
        burst = await asyncio.gather(*(agi_session(port, route_headers("0312345678", str(i)))
                                       for i in range(300)))
        assert burst == [['SET VARIABLE ROUTED "1"']] * 300
        listen_queue = await _listen_backlog(port)
        if listen_queue is not None:
            assert listen_queue >= 400
    finally:
        await server.close(grace=1)


async def _listen_backlog(port: int) -> int | None:
    """The listening socket's backlog as the kernel holds it (``ss``'s Send-Q), if ``ss`` is
    here."""
    try:
        ss = await asyncio.create_subprocess_exec(
            "ss", "-ltnH", f"sport = :{port}", stdout=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        return None
    out, _ = await asyncio.wait_for(ss.communicate(), 10)
    fields = out.decode().split()
    return int(fields[2]) if len(fields) > 2 else None
