"""The call flows' API over HTTP on a real database: complaints (supervisors see them, a
client only its count), the call-flow alerts of the wallboard, 手上げ decisions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app, database_ctx, web_ctx
from service.callflows.alerts import raise_alert
from service.callflows.complaints import complaint_count
from service.callflows.handraise import HoldRequest, open_hold
from tests.webapp import Seeded, seed, web_config


@pytest.fixture
async def api(db_url: str, pool, tmp_path: Path) -> AsyncIterator[tuple[TestClient, Seeded]]:
    seeded = await seed(pool)
    app = create_app(web_config(tmp_path, db_url), [database_ctx, web_ctx])
    async with TestClient(TestServer(app)) as client:
        yield client, seeded


async def call(client: TestClient, s: Seeded, who: str, method: str, path: str,
               json: object = None) -> tuple[int, Any]:
    response = await client.request(method, path, json=json,
                                    headers={"Authorization": f"Bearer {s.tokens[who]}"})
    body = await response.json() if response.content_type == "application/json" else None
    return response.status, body


async def test_complaints_for_supervisors_and_only_a_count_for_the_client(api, pool
                                                                          ) -> None:
    client, s = api
    complaint = {"client": "KSL", "category": "operator_attitude",
                 "body": "オペレーターの態度が悪いとのこと", "named_operator": "201",
                 "pbx": "pbx1", "linkedid": s.linkedids["KSL"]}
    status, made = await call(client, s, "op", "POST", "/api/complaints", complaint)
    assert status == 201, made
    await call(client, s, "sup", "POST", "/api/complaints",
               {"client": "MDC", "category": "no_callback", "body": "折り返しがない"})
    # Who may do what.
    for who, expected in (("admin", 200), ("sup", 200), ("op", 403), ("ksl", 403)):
        status, _ = await call(client, s, who, "GET", "/api/complaints")
        assert status == expected, who
    status, listed = await call(client, s, "sup", "GET", "/api/complaints?client=KSL")
    assert [(c["category"], c["named_operator"], c["created_by"], c["status"])
            for c in listed["items"]] == [("operator_attitude", "201", "op", "open")]
    # Resolving needs the resolution; the supervisor who took over is kept.
    path = f"/api/complaints/{made['id']}"
    status, refused = await call(client, s, "sup", "POST", path, {"status": "resolved"})
    assert (status, refused["error"]) == (400, "a resolved complaint needs its resolution")
    status, done = await call(client, s, "sup", "POST", path, {
        "status": "resolved", "resolution": "謝罪し、折り返し済み", "taken_over_by": "sup"})
    assert status == 200 and (done["status"], done["taken_over_by"], done["updated_by"]) == \
        ("resolved", "sup", "sup")
    await call(client, s, "sup", "POST", path, {"status": "closed"})
    status, refused = await call(client, s, "sup", "POST", path, {"status": "open"})
    assert (status, refused["error"]) == (400, "a closed complaint stays closed")
    # The client: a count of its own, nothing of another client's.
    status, counted = await call(client, s, "ksl", "GET", "/api/complaints/count")
    assert (status, counted["client"], counted["count"]) == (200, "KSL", 1)
    status, _ = await call(client, s, "ksl", "GET", "/api/complaints/count?client=MDC")
    assert status == 404
    # Bad input: clear errors.
    status, bad = await call(client, s, "op", "POST", "/api/complaints",
                             {**complaint, "category": "rude"})
    assert status == 400 and bad["error"].startswith("category must be one of")
    status, bad = await call(client, s, "op", "POST", "/api/complaints",
                             {**complaint, "client": "NOPE"})
    assert (status, bad["error"]) == (400, "no client 'NOPE'")
    # The function the client's report calls.
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        assert await complaint_count(conn, "KSL", now - timedelta(days=1), now) == 1
        assert await complaint_count(conn, "KSL", now - timedelta(days=3),
                                     now - timedelta(days=1)) == 0


async def test_callflow_alerts_scoped_and_cleared(api, pool) -> None:
    client, s = api
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        ids = [await raise_alert(conn, kind="safety_net", pbx_id="pbx1",
                                 linkedid=s.linkedids[code], client=code,
                                 detail={"supervisor_queue_status": "TIMEOUT"}, at=now)
               for code in ("KSL", "MDC")]
    status, seen = await call(client, s, "sup", "GET", "/api/callflow-alerts")
    assert status == 200 and [a["id"] for a in seen["items"]] == ids
    assert seen["items"][0]["detail"] == {"supervisor_queue_status": "TIMEOUT"}
    status, own = await call(client, s, "ksl", "GET", "/api/callflow-alerts")
    assert [a["client"] for a in own["items"]] == ["KSL"]
    # The wallboard's own alert list carries them too, with a key to acknowledge them.
    _, board = await call(client, s, "sup", "GET", "/api/alerts")
    assert [(a["kind"], a["key"], a["alert"]["id"]) for a in board["items"]
            if a["kind"] == "safety_net"] == [("safety_net", f"safety_net:{i}", i) for i in ids]
    status, _ = await call(client, s, "ksl", "POST", f"/api/callflow-alerts/{ids[0]}/clear")
    assert status == 403
    status, _ = await call(client, s, "sup", "POST", f"/api/callflow-alerts/{ids[0]}/clear")
    assert status == 200
    status, _ = await call(client, s, "sup", "POST", f"/api/callflow-alerts/{ids[0]}/clear")
    assert status == 404
    _, left = await call(client, s, "sup", "GET", "/api/callflow-alerts")
    assert [a["id"] for a in left["items"]] == ids[1:]


async def test_handraise_endpoints_refuse_clearly_without_a_pbx(api, pool) -> None:
    client, s = api
    status, _ = await call(client, s, "ksl", "POST", "/api/handraise", {})
    assert status == 403
    status, body = await call(client, s, "op", "POST", "/api/handraise", {})
    assert (status, body["error"]) == (404, "operator 201 is on no call")
    status, _ = await call(client, s, "sup", "POST", "/api/handraise/1/explode")
    assert status == 404
    status, listed = await call(client, s, "sup", "GET", "/api/handraise?open=1")
    assert (status, listed) == (200, {"items": []})
    # listen / whisper: supervisors only, a handraise that exists, a PBX session to do it.
    status, body = await call(client, s, "sup", "POST", "/api/handraise/77/listen")
    assert (status, body["error"]) == (404, "no handraise 77")
    async with pool.acquire() as conn:
        held = await open_hold(conn, HoldRequest(
            pbx_id="pbx1", linkedid=s.linkedids["KSL"], client="KSL", operator="201",
            caller_channel="PJSIP/trunk-00000001", via="api", requested_by="op"),
            datetime.now(UTC))
    for who, action, expected in (("op", "listen", 403), ("ksl", "whisper", 403),
                                  ("sup", "listen", 503), ("admin", "whisper", 503)):
        status, _ = await call(client, s, who, "POST", f"/api/handraise/{held}/{action}")
        assert status == expected, (who, action)
    status, listed = await call(client, s, "sup", "GET", "/api/handraise?open=1")
    assert [(h["id"], h["supervisor_mode"]) for h in listed["items"]] == [(held, None)]


async def test_dispositions_from_the_clients_list_on_answered_calls_only(api, pool,
                                                                         tmp_path: Path
                                                                         ) -> None:
    from service.clients.store import load_document
    from tests.webapp import SAMPLE

    client, s = api
    text = SAMPLE.read_text().replace(
        "    name_ja: 霞法律事務所",
        "    name_ja: 霞法律事務所\n    dispositions: [message_taken, info_given]")
    async with pool.acquire() as conn:
        await load_document(conn, text, "clients.yaml")
    answered = {"pbx": "pbx1", "linkedid": s.linkedids["KSL"]}
    status, body = await call(client, s, "op", "POST", "/api/dispositions",
                              {**answered, "code": "message_taken"})
    assert (status, body["code"], body["client"]) == (200, "message_taken", "KSL")
    status, body = await call(client, s, "op", "POST", "/api/dispositions",
                              {**answered, "code": "sold"})
    assert (status, body["error"]) == (400, "'sold' is not a disposition of client KSL (its "
                                             "list: message_taken, info_given)")
    status, body = await call(client, s, "op", "POST", "/api/dispositions",
                              {"pbx": "pbx1", "linkedid": s.linkedids["KSL"] + "9",
                               "code": "info_given"})
    assert (status, body["error"]) == (400, "only an answered call takes a disposition")
    status, _ = await call(client, s, "ksl", "POST", "/api/dispositions",
                           {**answered, "code": "info_given"})
    assert status == 403
    status, listed = await call(client, s, "op", "GET", "/api/dispositions?client=KSL")
    assert (status, listed) == (200, {"client": "KSL", "codes": ["message_taken",
                                                                  "info_given"]})
    async with pool.acquire() as conn:
        kept = await conn.fetch("SELECT client, code, operator, set_by FROM "
                                "call_dispositions")
    assert [tuple(k) for k in kept] == [("KSL", "message_taken", "201", "op")]


async def test_presence_needs_a_pbx_and_a_reason(api) -> None:
    client, s = api
    status, body = await call(client, s, "op", "POST", "/api/presence", {"action": "pause"})
    assert (status, body["error"]) == (503, "no AMI session here")
    status, _ = await call(client, s, "ksl", "POST", "/api/presence", {"action": "login"})
    assert status == 403
    status, body = await call(client, s, "sup", "GET", "/api/presence")
    assert (status, body) == (200, {"items": []})


def test_wrapup_per_client_queue() -> None:
    from service.callflows.presence import render_wrapup
    from service.clients.schema import parse_clients
    from tests.webapp import SAMPLE

    text = SAMPLE.read_text().replace("    name_ja: 霞法律事務所",
                                      "    name_ja: 霞法律事務所\n    wrapup: 20s")
    assert render_wrapup(parse_clients(text, "c.yaml")) == (
        "; after-call work per client (orikaeshi clients file: wrapup)\n"
        "[q-ksl](+)\nwrapuptime = 20\n")
