"""The FastAGI sessions Asterisk really opened (../shared/asterisk-traces/*/agi.jsonl),
replayed against the route over sockets: the same decisions as the recordings' router, in
well-formed commands.

The routing clock is the scenario's simulated local time (sim_local_time_at_start + the
session's t_connect); the ledger the repeat lookup reads is the scenario's own AMI recording,
replayed first with its clock moved to that same simulated time.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agi.context import AgiContext
from agi.route import route
from agi.server import AgiServer
from service.callbacks.repeat_sql import SqlRepeatLookup
from service.clients.schema import parse_clients
from service.routing.cache import RoutingCache
from tests.agi_peer import agi_session
from tests.conftest import TRACES, trace_dir
from tests.replaying import replay

SAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "clients.sample.yaml"
# The recordings' router escalated a second call from the same number within 30 minutes.
REFERENCE_RULE = SAMPLE.read_text().replace(
    "    earlier_calls: 2             # back reach this many inside the window\n"
    "    window: 72h", "    earlier_calls: 1\n    window: 30m")
WELL_FORMED = re.compile(r'^(SET VARIABLE [A-Za-z_]+(\([a-z]+\))?|EXEC MSet) "([^"\\]|\\.)*"$')
SCENARIOS = sorted(p.parent.name for p in TRACES.glob("*/agi.jsonl") if p.stat().st_size)


def variables(commands: list[str]) -> dict[str, str]:
    """What the commands set, read as Asterisk does (SET VARIABLE, or EXEC MSet pairs)."""
    out = {}
    for command in commands:
        match = re.match(r'^SET VARIABLE (\S+) "(.*)"$', command)
        if match:
            out[match.group(1)] = match.group(2)
            continue
        match = re.match(r'^EXEC MSet "(.*)"$', command)
        assert match, command
        data = re.sub(r'\\(.)', r'\1', match.group(1))  # AGI's quoting
        for pair in re.split(r'(?<!\\),', data):       # MSet's separators
            name, _, value = pair.partition("=")
            out[name] = re.sub(r'\\(.)', r'\1', value)
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_recorded_sessions_get_the_recorded_decisions(scenario: str, pool,
                                                            tmp_path: Path) -> None:
    folder = trace_dir(scenario)
    truth = json.loads((folder / "scenario.json").read_text())
    sim_start = datetime.fromisoformat(truth["sim_local_time_at_start"]).replace(
        tzinfo=ZoneInfo("Asia/Tokyo"))
    # The ledger as the PBX saw it, on the simulated clock.
    await replay(pool, tmp_path, folder / "ami.jsonl", rebase_to=sim_start.timestamp())
    cache = RoutingCache()
    cache.directory = parse_clients(REFERENCE_RULE, "reference.yaml")
    now = [sim_start]
    context = AgiContext(cache, SqlRepeatLookup(pool), repeat_timeout_s=2.0,
                         clock=lambda: now[0])
    server = AgiServer(state=context)
    server.add_route("route", route)
    port = await server.start("127.0.0.1", 0)
    try:
        sessions = [json.loads(line) for line in (folder / "agi.jsonl").read_text().splitlines()]
        for session in sessions:
            now[0] = sim_start + timedelta(seconds=session["t_connect"])
            ours = await agi_session(port, [tuple(h) for h in session["headers"]])
            recorded = variables([e["command"] for e in session["exchanges"]])
            got = variables(ours)
            where = f"{scenario} session {session['session']}"
            assert all(WELL_FORMED.match(c) for c in ours), (where, ours)
            assert len(ours) == 1 and ours[0].startswith("EXEC MSet "), (where, ours)
            for name in ("CHANNEL(accountcode)", "ROUTE_CLIENT", "ROUTE_ACTION"):
                assert got[name] == recorded[name], (where, name)
            assert got.get("ESCALATED", "0") == recorded["ESCALATED"], where
            if recorded["ROUTE_ACTION"] == "queue":
                for name in ("ROUTE_QUEUE", "QUEUE_WAIT", "GREETING"):
                    assert got[name] == recorded[name], (where, name)
                assert got.get("QUEUE_PRIO", "0") == recorded["QUEUE_PRIO"], where
                if recorded["ESCALATED"] == "0":
                    assert got["WHISPER"] == recorded["WHISPER"], where
                else:
                    assert got["ESCALATION_REASON"] == "repeat_caller"
                    assert got["__REPEAT_COUNT"] == "2", where
            assert got["VM_BOX"].split("@")[0] == recorded["VM_BOX"], where
    finally:
        await server.close()
    assert server.failed == 0 and not server.sessions
