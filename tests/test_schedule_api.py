"""Scheduling a call back over the API: a time the outbound policy forbids is refused with the
rule, the reason and the earliest allowed time; do-not-call never; a time in the past is
refused; pending ones are listed with their obligation (with the client's zone) and
cancelled only while pending, an operator only their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app, database_ctx, web_ctx
from service.clients.store import load_document
from tests.test_compliance import LIMITED
from tests.webapp import seed, web_config

TOKYO = ZoneInfo("Asia/Tokyo")
LATE = datetime(2026, 6, 10, 22, 30, tzinfo=TOKYO)


@pytest.fixture
async def api(db_url: str, pool, tmp_path: Path) -> AsyncIterator[tuple[TestClient, dict[str, str], dict[str, list[int]]]]:  # type: ignore[no-untyped-def]  # noqa: E501
    seeded = await seed(pool)
    async with pool.acquire() as conn:
        await load_document(conn, LIMITED, "limited.yaml")
    app = create_app(web_config(tmp_path, db_url), [database_ctx, web_ctx], clock=lambda: LATE)
    async with TestClient(TestServer(app)) as client:
        yield client, seeded.tokens, seeded.obligations


def auth(tokens: dict[str, str], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}"}


async def test_schedule_refusals_list_and_cancel(api, pool) -> None:  # type: ignore[no-untyped-def]
    client, tokens, obligations = api
    op, sup = auth(tokens, "op"), auth(tokens, "sup")
    ob = obligations["KSL"][1]
    url = f"/api/obligations/{ob}/schedule"
    # 23:00 tonight: outside the hours; the earliest is 08:00 tomorrow, callee's time.
    response = await client.post(url, headers=op, json={"at": "2026-06-10T23:00:00+09:00"})
    body = await response.json()
    assert response.status == 409 and body["scheduled"] is False
    assert (body["code"], body["rule"]) == ("outside_calling_hours", "calling_hours")
    assert "outside the allowed calling hours" in body["reason"]
    assert datetime.fromisoformat(body["opens_at"]) == datetime(2026, 6, 11, 8, tzinfo=TOKYO)
    # The past is refused; do-not-call is refused whatever the time.
    response = await client.post(url, headers=op, json={"at": "2026-06-10T09:00:00+09:00"})
    assert response.status == 400 and "past" in (await response.json())["error"]
    dnc = obligations["KSL"][3]
    response = await client.post(f"/api/obligations/{dnc}/schedule", headers=op,
                                 json={"at": "2026-06-11T10:00:00+09:00"})
    assert response.status == 409 and (await response.json())["code"] == "do_not_call"
    # Allowed: 10:00 tomorrow.  Listed with the obligation, and the client's zone.
    response = await client.post(url, headers=op, json={"at": "2026-06-11T10:00:00+09:00"})
    assert response.status == 201
    scheduled_id = (await response.json())["id"]
    items = (await (await client.get("/api/obligations?state=open", headers=op)).json())["items"]
    row = next(i for i in items if i["id"] == ob)
    assert row["timezone"] == "Asia/Tokyo"
    [pending] = row["scheduled"]
    assert (pending["id"], pending["operator"], pending["requested_by"]) == \
        (scheduled_id, "201", "op")
    assert datetime.fromisoformat(pending["run_at"]) == datetime(2026, 6, 11, 10, tzinfo=TOKYO)
    # The limit: one attempt a day.  An allowed attempt tomorrow at 09:00 (recorded evidence)
    # makes 10:00 the second: refused for the limit, earliest the day after.
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO outbound_decisions (decided_at, client, callee_e164, dialled, path,
                   allowed, rule, reason) SELECT $1, 'KSL', caller_e164, caller_e164,
                   'click_to_call', true, 'allowed', 'test' FROM callback_obligations
                   WHERE id = $2""", datetime(2026, 6, 11, 9, tzinfo=TOKYO), ob)
    response = await client.post(url, headers=op, json={"at": "2026-06-11T10:30:00+09:00"})
    body = await response.json()
    assert response.status == 409 and (body["code"], body["rule"]) == \
        ("contact_limit", "max_attempts")
    assert datetime.fromisoformat(body["opens_at"]) == datetime(2026, 6, 12, 8, tzinfo=TOKYO)
    # Cancel: not another operator's (a supervisor may), not twice, not a client's user.
    async with pool.acquire() as conn:
        other = await conn.fetchval(
            """INSERT INTO scheduled_callbacks (obligation_id, client, callee_e164, operator,
                   requested_by, run_at) VALUES ($1, 'KSL', '+819000000001', '202', 'op2', $2)
               RETURNING id""", ob, LATE + timedelta(days=1))
    cancel = f"/api/scheduled/{other}/cancel"
    assert (await client.post(cancel, headers=op, json={})).status == 403
    assert (await client.post(cancel, headers=auth(tokens, "ksl"), json={})).status == 403
    assert (await client.post(cancel, headers=sup, json={})).status == 200
    assert (await client.post(cancel, headers=sup, json={})).status == 409
    assert (await client.post(f"/api/scheduled/{scheduled_id}/cancel", headers=op,
                              json={})).status == 200
    assert (await client.post("/api/scheduled/999999/cancel", headers=sup,
                              json={})).status == 404
    async with pool.acquire() as conn:
        states = await conn.fetch("SELECT state, last_reason FROM scheduled_callbacks "
                                  "ORDER BY id")
    assert [tuple(s) for s in states] == [("cancelled", "cancelled by op"),
                                          ("cancelled", "cancelled by sup")]
    items = (await (await client.get("/api/obligations?state=open", headers=op)).json())["items"]
    assert next(i for i in items if i["id"] == ob)["scheduled"] == []


async def test_a_call_back_closed_since_is_not_placed(pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The scheduler at the scheduled time: the call back was cancelled meanwhile (a wrong
    number): not placed, nothing dialled or recorded as an attempt; one still open is tried
    (no PBX here: it waits a minute, as before)."""
    from service.compliance.scheduler import RETRY, ScheduledCallbacks, schedule
    from tests.replaying import config_for

    seeded = await seed(pool)
    cancelled, still_open = seeded.obligations["KSL"][1], seeded.obligations["KSL"][2]
    at = datetime(2026, 6, 11, 10, 0, tzinfo=TOKYO)
    async with pool.acquire() as conn:
        ids = [await schedule(conn, obligation_id=ob, client="KSL",
                              callee_e164=await conn.fetchval(
                                  "SELECT caller_e164 FROM callback_obligations WHERE id = $1",
                                  ob),
                              operator="201", requested_by="op", run_at=at)
               for ob in (cancelled, still_open)]
        await conn.execute("UPDATE callback_obligations SET state = 'cancelled', "
                           "closed_at = $2 WHERE id = $1", cancelled, at)
    pbx = config_for(tmp_path).pbxs[0]
    worker = ScheduledCallbacks(pool, lambda: (pbx, None), clock=lambda: at)
    assert await worker.run_once() == 2
    async with pool.acquire() as conn:
        rows = {r["id"]: r for r in await conn.fetch("SELECT * FROM scheduled_callbacks")}
        decisions = await conn.fetch("SELECT callee_e164 FROM outbound_decisions")
    assert (rows[ids[0]]["state"], rows[ids[0]]["last_reason"]) == \
        ("cancelled", "not placed: the call back is cancelled")
    assert (rows[ids[1]]["state"], rows[ids[1]]["run_at"]) == ("pending", at + RETRY)
    assert all(d["callee_e164"] != rows[ids[0]]["callee_e164"] for d in decisions)
