"""FastAGI serves the PBX only (issue 12, Medium 4).

The server allows 127.0.0.1 (the PBX) and not 127.0.0.2 (anyone else on the network).  A
flood of connections from 127.0.0.2 -- idle ones, and whole ``spy`` sessions that would
write the audit table -- while the PBX's route sessions are answered, every one; nothing the
stranger sent reaches a route.  One source is held to its per-source session cap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agi.context import AgiContext
from agi.server import AgiRequest, AgiServer
from agi.spy import spy
from service.fdbudget import DescriptorBudget
from tests.agi_peer import agi_session, route_headers
from tests.waiting import eventually

SPY = [("agi_network", "yes"), ("agi_network_script", "spy"),
       ("agi_channel", "PJSIP/301-00000001"), ("agi_arg_1", "barge"), ("agi_arg_2", "201")]


@pytest.fixture
async def server() -> AsyncIterator[tuple[AgiServer, list[tuple[str, str, str]]]]:
    audit: list[tuple[str, str, str]] = []

    async def record_spy(supervisor: str, operator: str, mode: str) -> None:
        audit.append((supervisor, operator, mode))

    context = AgiContext(None, None, record_spy=record_spy)  # type: ignore[arg-type]
    srv = AgiServer(state=context, header_timeout=2, command_timeout=2, max_sessions=100,
                    allow=("127.0.0.1", "::1"), max_per_source=40,
                    budget=DescriptorBudget(limit=10_000))

    async def answer(request: AgiRequest) -> None:
        await request.set_variable("ROUTE_CLIENT", "KSL")

    srv.add_route("route", answer)
    srv.add_route("spy", spy)
    srv.port = await srv.start("127.0.0.1", 0)  # type: ignore[attr-defined]
    yield srv, audit
    await srv.close(grace=1)


async def idle_from(port: int, source: str) -> asyncio.StreamWriter | None:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    except OSError:
        return None
    writer.write(b"agi_network: yes\n")
    return writer


async def test_a_flood_from_a_stranger_never_reaches_a_route(server) -> None:
    srv, audit = server
    port = srv.port
    idle = await asyncio.gather(*[idle_from(port, "127.0.0.2") for _ in range(500)])
    strangers = [asyncio.create_task(agi_session(port, SPY, source="127.0.0.2", timeout=5))
                 for _ in range(100)]
    try:
        answered = 0
        for i in range(34):
            commands = await agi_session(port, route_headers("0312345678", "0901111222",
                                                             uniqueid=f"3.{i}"))
            answered += commands == ['SET VARIABLE ROUTE_CLIENT "KSL"']
        assert answered == 34
        assert all(result == [] for result in await asyncio.gather(*strangers))
        # The PBX's own spy feature code is recorded; the stranger's 100 never were.
        assert await agi_session(port, SPY) == []
        await eventually(lambda: len(audit) == 1)
        assert audit == [("301", "201", "barge")]
        # Every connection from the stranger was refused at accept, none served.
        opened = sum(writer is not None for writer in idle) + len(strangers)
        await eventually(lambda: srv.refused_source == opened)
    finally:
        for writer in idle:
            if writer is not None:
                writer.close()


async def test_one_source_is_held_to_its_session_cap(server) -> None:
    srv, _ = server
    held = [await idle_from(srv.port, "127.0.0.1") for _ in range(40)]
    await eventually(lambda: len(srv.sessions) == 40)
    assert await agi_session(srv.port, route_headers("0312345678", "0901111222")) == []
    assert srv.refused >= 1
    for writer in held:
        if writer is not None:
            writer.close()
    # The idle ones time out (header timeout) or close; then the PBX is served again.
    await eventually(lambda: not srv.sessions, timeout=10)
    assert await agi_session(srv.port, route_headers("0312345678", "0901111222")) == [
        'SET VARIABLE ROUTE_CLIENT "KSL"']


def test_compose_publishes_fastagi_only_on_loopback_and_uses_the_image() -> None:
    """No Docker engine here to build or run it; what can be checked is checked."""
    from pathlib import Path

    import yaml

    deploy = Path(__file__).resolve().parents[1] / "deploy"
    compose = yaml.safe_load((deploy / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        if not name.startswith("orikaeshi"):
            continue
        agi = [p for p in service["ports"] if p.endswith(":4573")]
        assert agi and all(p.startswith("127.0.0.1:") for p in agi), (name, agi)
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert "command" not in service  # no pip install at every start
        gateway = compose["networks"]["default"]["ipam"]["config"][0]["gateway"]
        assert service["environment"]["ORIKAESHI_AGI_ALLOW"] == gateway
    dockerfile = (deploy / "Dockerfile").read_text()
    assert "USER orikaeshi" in dockerfile and "orikaeshi serve" in dockerfile
