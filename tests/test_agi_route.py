"""The ``route`` AGI over real sockets: escalation on the wire, a repeat lookup that is slow or
failing never holds a call up, MSet refused, no routing data, and the in-memory routing data
following ``clients load`` (LISTEN/NOTIFY on a real PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from agi.context import AgiContext
from agi.route import route
from agi.server import AgiServer
from service.clients.schema import parse_clients
from service.clients.store import load_document
from service.routing.cache import RoutingCache
from service.routing.repeat import RepeatHistory, RepeatLookup
from tests.agi_peer import agi_session, route_headers
from tests.waiting import eventually

SAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "clients.sample.yaml"
TOKYO = ZoneInfo("Asia/Tokyo")
# A Tuesday, 10:00 in Tokyo, no holiday: every sample client is open.
OPEN = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)
KSL_DID, WSH_DID, CALLER = "0312345678", "0501234567", "09011112222"


def variables(commands: list[str]) -> dict[str, str]:
    """The pairs of one ``EXEC MSet``, or of ``SET VARIABLE`` lines, unquoted as Asterisk
    reads them."""
    out: dict[str, str] = {}
    for command in commands:
        match = re.match(r'^SET VARIABLE (\S+) "(.*)"$', command)
        if match:
            out[match.group(1)] = re.sub(r"\\(.)", r"\1", match.group(2))
            continue
        match = re.match(r'^EXEC MSet "(.*)"$', command)
        assert match, command
        data = re.sub(r"\\(.)", r"\1", match.group(1))
        for pair in re.split(r"(?<!\\),", data):
            name, _, value = pair.partition("=")
            out[name] = re.sub(r"\\(.)", r"\1", value)
    return out


class Lookup:
    """A repeat lookup with a chosen answer, delay or failure; notes each call and whether it
    was cancelled."""

    def __init__(self, history: RepeatHistory | None = None, delay: float = 0.0,
                 error: Exception | None = None) -> None:
        self.history = history or RepeatHistory(calls=0)
        self.delay = delay
        self.error = error
        self.calls: list[tuple[str, str, str | None]] = []
        self.cancelled = 0

    async def __call__(self, client: str, caller_e164: str, now: datetime, window_s: float,
                       exclude_uniqueid: str | None = None) -> RepeatHistory:
        self.calls.append((client, caller_e164, exclude_uniqueid))
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        return self.history


async def serve(lookup: RepeatLookup, cache: RoutingCache | None = None,
                timeout_s: float = 0.15) -> tuple[AgiServer, int]:
    if cache is None:
        cache = RoutingCache()
        cache.directory = parse_clients(SAMPLE.read_text(encoding="utf-8"), "sample.yaml")
    # The service's clock gives UTC (agi.context.utc_now): 01:00 UTC is 10:00 in Tokyo.
    context = AgiContext(cache, lookup, repeat_timeout_s=timeout_s,
                         clock=lambda: OPEN.astimezone(UTC))
    server = AgiServer(state=context, command_timeout=2)
    server.add_route("route", route)
    return server, await server.start("127.0.0.1", 0)


@pytest.fixture
async def closing() -> AsyncIterator[list[AgiServer]]:
    servers: list[AgiServer] = []
    yield servers
    for server in servers:
        await server.close(grace=1)
        assert not server.sessions and server.failed == 0


async def test_repeat_caller_is_escalated_on_the_wire(closing: list[AgiServer]) -> None:
    first = OPEN - timedelta(hours=20)
    lookup = Lookup(RepeatHistory(calls=2, first_at=first, last_at=OPEN - timedelta(hours=1)))
    server, port = await serve(lookup)
    closing.append(server)
    commands = await agi_session(port, route_headers(KSL_DID, CALLER, uniqueid="1795.7"))
    assert len(commands) == 1 and commands[0].startswith("EXEC MSet ")
    got = variables(commands)
    assert lookup.calls == [("KSL", "+819011112222", "1795.7")]
    assert got["ROUTE_QUEUE"] == "q-sup" and got["QUEUE_PRIO"] == "10"
    assert got["ESCALATED"] == "1" and got["ESCALATION_REASON"] == "repeat_caller"
    # For the whisper Gosub on the member channel: third call, none called back since `first`.
    assert got["__REPEAT_COUNT"] == "3"
    assert got["__REPEAT_SINCE"] == str(int(first.timestamp()))
    assert got["__ROUTE_TZ"] == "Asia/Tokyo"
    assert got["CHANNEL(accountcode)"] == "KSL" and "ROUTE_FLAGS" not in got


async def test_a_slow_repeat_lookup_never_holds_the_call(closing: list[AgiServer]) -> None:
    lookup = Lookup(RepeatHistory(calls=5), delay=30)
    server, port = await serve(lookup, timeout_s=0.1)
    closing.append(server)
    # agi_session gives up after 5 s: the answer comes from the timeout, not the lookup.
    commands = await agi_session(port, route_headers(KSL_DID, CALLER), timeout=5)
    got = variables(commands)
    assert got["ROUTE_QUEUE"] == "q-ksl" and "ESCALATED" not in got
    assert got["ROUTE_FLAGS"] == "repeat_check_unavailable"
    assert lookup.cancelled == 1


async def test_a_failing_database_routes_normally_and_flags_it(
        closing: list[AgiServer]) -> None:
    lookup = Lookup(error=asyncpg.ConnectionDoesNotExistError("connection was closed"))
    server, port = await serve(lookup)
    closing.append(server)
    got = variables(await agi_session(port, route_headers(WSH_DID, CALLER)))
    assert got["ROUTE_CLIENT"] == "WSH" and got["ROUTE_QUEUE"] == "q-wsh"
    assert got["ROUTE_FLAGS"] == "repeat_check_unavailable"


async def test_withheld_caller_skips_the_lookup(closing: list[AgiServer]) -> None:
    lookup = Lookup(RepeatHistory(calls=9))
    server, port = await serve(lookup)
    closing.append(server)
    got = variables(await agi_session(port, route_headers(KSL_DID, "anonymous")))
    assert lookup.calls == []
    assert got["ROUTE_QUEUE"] == "q-ksl" and got["ROUTE_FLAGS"] == "withheld_caller"


async def test_mset_refused_falls_back_to_one_set_variable_each(
        closing: list[AgiServer]) -> None:
    server, port = await serve(Lookup())
    closing.append(server)

    def no_mset(command: str) -> str:  # an Asterisk without app MSet loaded
        return "200 result=-2" if command.startswith("EXEC ") else "200 result=1"

    commands = await agi_session(port, route_headers(KSL_DID, CALLER), reply=no_mset)
    assert commands[0].startswith("EXEC MSet ")
    singles = commands[1:]
    assert singles and all(c.startswith("SET VARIABLE ") for c in singles)
    assert variables(singles) == variables(commands[:1])
    assert singles[0] == 'SET VARIABLE CHANNEL(accountcode) "KSL"'


async def test_no_routing_data_sets_nothing_and_ends(closing: list[AgiServer]) -> None:
    server, port = await serve(Lookup(), cache=RoutingCache())
    closing.append(server)
    # Nothing set: the dialplan's static fallback queues the call (ROUTE_SOURCE=fallback).
    assert await agi_session(port, route_headers(KSL_DID, CALLER)) == []


async def test_routing_data_follows_clients_load(pool: asyncpg.Pool,
                                                 closing: list[AgiServer]) -> None:
    cache = RoutingCache(check_interval=60)  # only a notification can refresh in time
    refresher = asyncio.create_task(cache.run(pool))
    try:
        async with pool.acquire() as conn:
            v1, _ = await load_document(conn, SAMPLE.read_text(encoding="utf-8"), "v1.yaml")
        await eventually(lambda: cache.directory is not None
                         and cache.directory.version == v1, what="first load")
        server, port = await serve(Lookup(), cache=cache)
        closing.append(server)
        got = variables(await agi_session(port, route_headers(WSH_DID, CALLER)))
        assert got["ROUTE_CLIENT"] == "WSH"
        # WSH leaves the file: its DID becomes unknown, routed by default and flagged.
        async with pool.acquire() as conn:
            v2, _ = await load_document(
                conn, SAMPLE.read_text(encoding="utf-8").split("  WSH:")[0], "v2.yaml")
        await eventually(lambda: cache.directory is not None
                         and cache.directory.version == v2, what="reload on NOTIFY")
        got = variables(await agi_session(port, route_headers(WSH_DID, CALLER)))
        assert "ROUTE_CLIENT" not in got and got["ROUTE_FLAGS"] == "unknown_did"
        assert got["ROUTE_QUEUE"] == "q-ksl"  # the sample's unknown_did route
    finally:
        refresher.cancel()
        await asyncio.gather(refresher, return_exceptions=True)
