"""Two PBXs into one instance (issue 12, Operations: several PBXs).

Two recordings are served at once by two replay servers, configured as the PBXs ``east``
and ``west`` of one app.  Both ledgers are as a replay of each alone gives them; the spy
button and click-to-call reach the PBX of the call they are about (each replay server keeps
the actions it received), never simply the first one configured.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app, database_ctx, ledger_ctx, web_ctx
from service.config import PbxConfig
from service.replay.recording import load_recording
from service.replay.run import inbound_report
from service.replay.server import ReplayServer
from service.store.callbacks_sql import open_or_join
from tests.conftest import trace_dir
from tests.replaying import replay
from tests.webapp import seed, web_config

EAST, WEST = "answered_agent_hangup", "queue_timeout_to_voicemail"
# A Tuesday, 10:00 in Tokyo: inside every client's calling hours.
OPEN = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def without_pbx(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in row.items() if k != "pbx"} for row in rows]


async def test_two_pbxs_one_instance(db_url: str, pool, tmp_path: Path) -> None:
    alone = {}
    for name in (EAST, WEST):
        alone[name], _ = await replay(pool, tmp_path, trace_dir(name) / "ami.jsonl",
                                      pbx_id=f"alone-{name}")
    seeded = await seed(pool)
    servers = {name: ReplayServer(load_recording(trace_dir(name) / "ami.jsonl"))
               for name in (EAST, WEST)}
    ports = {name: await server.start() for name, server in servers.items()}
    config = dataclasses.replace(
        web_config(tmp_path, db_url),
        pbxs=(PbxConfig(pbx_id="east", ami_port=ports[EAST], ami_username="u", ami_secret="p"),
              PbxConfig(pbx_id="west", ami_port=ports[WEST], ami_username="u",
                        ami_secret="p")))
    app = create_app(config, [database_ctx, web_ctx, ledger_ctx], clock=lambda: OPEN)
    sup = {"Authorization": f"Bearer {seeded.tokens['sup']}"}
    try:
        async with TestClient(TestServer(app)) as client:
            for server in servers.values():
                await server.finished.wait()
            async with pool.acquire() as conn:
                async def settled(pbx: str, expected: int) -> bool:
                    rows = await inbound_report(conn, pbx)
                    return len(rows) == expected and all(r["ended_at"] for r in rows)

                for pbx, name in (("east", EAST), ("west", WEST)):
                    for _ in range(200):
                        if await settled(pbx, len(alone[name])):
                            break
                        await asyncio.sleep(0.05)
                    report = await inbound_report(conn, pbx)
                    assert without_pbx(report) == without_pbx(alone[name]), pbx

                # An operator (201) on a live call on west: the ledger says so.
                await conn.execute(
                    """INSERT INTO calls (pbx_id, linkedid, direction, client, started_at,
                           uniqueids) VALUES ('west', 'live-1', 'inbound', 'KSL', now(), '{}')""")
                await conn.execute(
                    """INSERT INTO stints (pbx_id, linkedid, seq, queue, caller_uniqueid,
                           joined_at, connected_at, result)
                       VALUES ('west', 'live-1', 1, 'q-ksl', 'c1', now(), now(), 'answered')""")
                await conn.execute(
                    """INSERT INTO ring_attempts (pbx_id, member_uniqueid, linkedid, stint_seq,
                           queue, interface, agent, member_channel, started_at, result)
                       VALUES ('west', 'm1', 'live-1', 1, 'q-ksl', 'Local/201@operators/n',
                               '201', 'Local/201@operators-000000aa;1', now(), 'answered')""")
                caller = await conn.fetchval(
                    "SELECT caller_e164 FROM calls WHERE pbx_id = 'west' AND client = 'KSL' "
                    "AND caller_e164 IS NOT NULL LIMIT 1")
                obligation = await open_or_join(conn, "KSL", caller, "09088889999",
                                                OPEN, 86400, "missed", None)

            response = await client.post("/api/spy", json={"mode": "whisper",
                                                           "operator": "201"}, headers=sup)
            assert response.status == 202, await response.text()
            response = await client.post(f"/api/obligations/{obligation}/call",
                                         json={"operator": "201"}, headers=sup)
            assert response.status == 202, await response.text()
    finally:
        for server in servers.values():
            await server.close()

    def originates(name: str) -> list[dict[str, str]]:
        return [a for a in servers[name].actions if a.get("Action") == "Originate"]

    assert originates(EAST) == []
    spied, dialled = originates(WEST)
    assert spied["Application"] == "ChanSpy"
    assert spied["Data"].startswith("Local/201@operators-000000aa;1,")
    assert dialled["Context"] == "orikaeshi-outbound" and dialled["Account"] == "KSL"
    assert dialled["Channel"] == "PJSIP/201"
