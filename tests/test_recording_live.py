"""Call recording on a real Asterisk (dialplan/recording.conf): KSL records every call and
tells its callers, MDC records none.  A recording exists for KSL's call (named by its
linkedid) and none for MDC's; through the API it is played to a supervisor and to KSL's users
only (MDC's user: not found, an operator: forbidden), and every playback is audited.
Retention then deletes it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app, database_ctx, web_ctx
from service.callflows.recordings import delete_recordings_before, start_on_demand
from service.clients.schema import parse_clients
from service.store import web_sql
from service.web.auth import hash_password
from service.web.callflow_context import bridged_caller
from tests.callflows_live import live_pbx
from tests.live_asterisk import asterisk_binary, live_clients
from tests.webapp import web_config

pytestmark = [pytest.mark.asterisk,
              pytest.mark.skipif(asterisk_binary() is None, reason="no Asterisk binary")]

CLIENTS = live_clients("KSL", "MDC", "WSH", queue_timeout="25s").replace(
    "    queue: q-ksl\n", "    queue: q-ksl\n    recording: all\n    recording_notice: yes\n"
).replace("    queue: q-wsh\n", "    queue: q-wsh\n    recording: on_demand\n")

PHONES = """
[test-operators]
; The operators answer and speak (a prompt), so there is audio to record.
exten => _20[12],1,Answer()
 same => n,Playback(orikaeshi/repeat-3)
 same => n,Hangup()
; 203 speaks longer: its call is recorded on demand once it has started.
exten => 203,1,Answer()
 same => n,Playback(orikaeshi/escalation-menu)
 same => n,Hangup()
"""


async def test_recorded_client_has_a_recording_served_only_to_allowed_roles(
        pool, db_url: str, tmp_path: Path) -> None:
    directory = parse_clients(CLIENTS, "live.yaml")
    async with live_pbx(pool, tmp_path, directory, PHONES,
                        {"q-ksl": "201", "q-mdc": "202", "q-wsh": "203"}) as live:
        await live.call("0312345678", "09011112222", wait_s=15)
        await live.call("0663330001", "08022223333", wait_s=15)
        await live.call("0501234567", "07033334444", wait_s=15)
        # WSH records on demand: the operator's page asks once the call is answered.
        connect = await live.wait_for(lambda e: e.get("Event") == "AgentConnect"
                                      and e.get("Queue") == "q-wsh", "203 answering")
        caller = await bridged_caller(live.control, "203", connect["DestChannel"])
        async with pool.acquire() as conn:
            await start_on_demand(live.control, conn, pbx_id="live", caller_channel=caller,
                                  linkedid=connect["Linkedid"], client="WSH",
                                  requested_by="op203", at=datetime.now(UTC))
        calls = await live.rows("SELECT linkedid, client, answered_by FROM calls WHERE "
                                "ended_at IS NOT NULL ORDER BY client", want=3)
        rows = await live.rows("SELECT * FROM recordings ORDER BY id", want=2)
        spool = live.pbx.root / "spool" / "monitor"
    ksl, mdc, wsh = calls
    assert (ksl["client"], ksl["answered_by"], mdc["client"], mdc["answered_by"]) == \
        ("KSL", "201", "MDC", "202")
    # The caller was told, and the recording is the call's, named by its linkedid.
    def ran(caller: str) -> list[str]:
        return [f"{e.get('Application')}({e.get('AppData')})" for e in live.events
                if e.get("Event") == "Newexten" and e.get("CallerIDNum") == caller
                and e.get("Context") == "orikaeshi-recording"]
    assert ran("09011112222")[0] == "ExecIf(1?Playback(orikaeshi/recording-notice))"
    assert f"MixMonitor(orikaeshi/{ksl['linkedid']}.wav,b)" in ran("09011112222")
    assert ran("08022223333") == []
    files = sorted(p.name for p in (spool / "orikaeshi").iterdir())
    assert files == sorted([f"{ksl['linkedid']}.wav", f"{wsh['linkedid']}.wav"]), files
    on_demand = (spool / "orikaeshi" / f"{wsh['linkedid']}.wav").read_bytes()
    assert on_demand[:4] == b"RIFF" and len(on_demand) > 16000, len(on_demand)
    audio = (spool / "orikaeshi" / f"{ksl['linkedid']}.wav").read_bytes()
    # The operator's 3.4 s of speech, at 8 kHz 16-bit: a real call, not an empty header.
    assert audio[:4] == b"RIFF" and len(audio) > 2 * 16000, len(audio)
    recording = next(r for r in rows if r["client"] == "KSL")
    assert (recording["linkedid"], recording["reason"]) == (ksl["linkedid"], "policy")
    assert [(r["client"], r["reason"], r["requested_by"]) for r in rows
            if r["client"] == "WSH"] == [("WSH", "on_demand", "op203")]

    # The API: who may play it.
    tokens = {}
    async with pool.acquire() as conn:
        for name, role, client in (("sup", "supervisor", None), ("ksl", "client", "KSL"),
                                   ("mdc", "client", "MDC"), ("op", "operator", None)):
            user = await web_sql.create_user(conn, name, hash_password("x" * 12), role,
                                             client=client, extension=None, display_name=name)
            tokens[name] = await web_sql.new_api_token(conn, user.id, "test")
    config = web_config(tmp_path, db_url)
    config = dataclasses.replace(config, pbxs=(dataclasses.replace(
        config.pbxs[0], pbx_id="live", recordings_dir=spool),))
    app = create_app(config, [database_ctx, web_ctx])
    path = f"/api/recordings/{recording['id']}/audio"
    async with TestClient(TestServer(app)) as client:
        async def get(who: str, url: str) -> tuple[int, bytes, str]:
            response = await client.get(url, headers={"Authorization":
                                                      f"Bearer {tokens[who]}"})
            return response.status, await response.read(), \
                response.headers.get("Content-Disposition", "")
        assert (await get("sup", path))[:2] == (200, audio)
        status, body, disposition = await get("ksl", path + "?download=1")
        assert (status, body) == (200, audio)
        assert disposition == f'attachment; filename="{ksl["linkedid"]}.wav"'
        assert (await get("mdc", path))[0] == 404
        assert (await get("op", path))[0] == 403
        status, listed, _ = await get("mdc", "/api/recordings")
        assert (status, listed) == (200, b'{"items": [], "next_before": null}')
    async with pool.acquire() as conn:
        audit = await conn.fetch("SELECT username, role, action FROM recording_audit "
                                 "ORDER BY id")
        assert [tuple(a) for a in audit] == [("op203", "staff", "start"),
                                            ("sup", "supervisor", "play"),
                                            ("ksl", "client", "download")]
        # Retention: nothing newer than the cut-off goes, then the recording does.
        now = datetime.now(UTC)
        assert await delete_recordings_before(conn, {"live": spool},
                                              now - timedelta(days=1)) == 0
        assert await delete_recordings_before(conn, {"live": spool},
                                              now + timedelta(minutes=1)) == 2
    assert list((spool / "orikaeshi").iterdir()) == []
