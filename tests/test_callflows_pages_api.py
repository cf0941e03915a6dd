"""What the call flows' buttons read besides their own endpoints: an operator's own presence,
and the call-flow state carried by the screen pop (so a reloaded pop shows what the live one
did), over HTTP on a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app, database_ctx, web_ctx
from service.clients.store import load_document
from tests.test_callflows_api import call
from tests.webapp import SAMPLE, Seeded, seed, web_config


@pytest.fixture
async def api(db_url: str, pool, tmp_path: Path) -> AsyncIterator[tuple[TestClient, Seeded]]:
    seeded = await seed(pool)
    async with pool.acquire() as conn:
        await load_document(conn, SAMPLE.read_text().replace(
            "    name_ja: 霞法律事務所",
            "    name_ja: 霞法律事務所\n    recording: on_demand\n"
            "    dispositions: [message_taken, info_given]"), "clients.yaml")
    app = create_app(web_config(tmp_path, db_url), [database_ctx, web_ctx])
    async with TestClient(TestServer(app)) as client:
        yield client, seeded


async def test_an_operator_reads_only_their_own_presence(api, pool) -> None:
    client, s = api
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        for operator, state, reason in (("201", "paused", "lunch"), ("202", "logged_in", None)):
            await conn.execute(
                "INSERT INTO presence_spans (pbx_id, operator, state, reason, queues, via, "
                "started_at) VALUES ('pbx1', $1, $2, $3, '{q-ksl}', 'api', $4)",
                operator, state, reason, now - timedelta(minutes=5))
    status, mine = await call(client, s, "op", "GET", "/api/presence")
    assert status == 200
    assert [(p["operator"], p["state"], p["reason"]) for p in mine["items"]] == [
        ("201", "paused", "lunch")]
    _, everyone = await call(client, s, "sup", "GET", "/api/presence")
    assert [p["operator"] for p in everyone["items"]] == ["201", "202"]
    status, _ = await call(client, s, "ksl", "GET", "/api/presence")
    assert status == 403


async def test_the_pop_carries_the_calls_flow_state(api, pool) -> None:
    client, s = api
    linkedid = s.linkedids["KSL"]
    path = f"/api/screen?pbx=pbx1&linkedid={linkedid}"
    status, pop = await call(client, s, "op", "GET", path)
    assert status == 200
    assert pop["callflows"] == {"recording_policy": "on_demand", "recorded": False,
                                "handraise": None,
                                "dispositions": ["message_taken", "info_given"],
                                "disposition": None}
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO recordings (pbx_id, linkedid, client, file_name, reason) "
            "VALUES ('pbx1', $1, 'KSL', $2, 'on_demand')", linkedid, f"orikaeshi/{linkedid}.wav")
        await conn.execute(
            "INSERT INTO handraises (pbx_id, linkedid, client, operator, caller_channel, via, "
            "held_at, helped_at, helped_by) VALUES ('pbx1', $1, 'KSL', '201', 'PJSIP/x-1', "
            "'api', $2, $3, 'sup')", linkedid, now - timedelta(seconds=40),
            now - timedelta(seconds=10))
        await conn.execute(
            "INSERT INTO call_dispositions (pbx_id, linkedid, client, code, operator, set_by) "
            "VALUES ('pbx1', $1, 'KSL', 'info_given', '201', 'op')", linkedid)
    _, pop = await call(client, s, "op", "GET", path)
    flows = pop["callflows"]
    assert (flows["recorded"], flows["disposition"]) == (True, "info_given")
    assert (flows["handraise"]["state"], flows["handraise"]["helped_by"]) == ("joined", "sup")
    # Another client's call: its own policy (MDC records nothing) and no codes.
    _, other = await call(client, s, "op", "GET",
                          f"/api/screen?pbx=pbx1&linkedid={s.linkedids['MDC']}")
    assert other["callflows"]["recording_policy"] == "none"
    assert other["callflows"]["dispositions"] == []
