"""Per-operator monthly figures (issue 11: presence states and times kept so per-operator
figures can be reported): answered calls and talk, logged in and paused by reason cut at the
month's edges in the company's time zone, dispositions, 手上げ, complaints naming the
operator, dials under the policy.  Rows in a real PostgreSQL; the API (staff only) and the
command as a process."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app, database_ctx, web_ctx
from service.clock import SettableClock
from service.reports.operators import operator_month
from tests.test_report_documents import orikaeshi
from tests.webapp import seed, web_config

TOKYO = ZoneInfo("Asia/Tokyo")
START = datetime(2026, 11, 1, tzinfo=TOKYO)
END = datetime(2026, 12, 1, tzinfo=TOKYO)


async def put_rows(pool) -> None:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        # 201: logged in from 23:00 on 31 October (one hour before the month) to 02:00 on
        # 1 November, then lunch 1 h, then break 10 min, then logged out.
        spans = [("201", "logged_in", None, START - timedelta(hours=1), START + timedelta(hours=2)),
                 ("201", "paused", "lunch", START + timedelta(hours=2), START + timedelta(hours=3)),
                 ("201", "paused", "break", START + timedelta(hours=3),
                  START + timedelta(hours=3, minutes=10)),
                 ("201", "logged_out", None, START + timedelta(hours=3, minutes=10), None),
                 # 202 still logged in at the month's end: counted up to local midnight.
                 ("202", "logged_in", None, END - timedelta(minutes=30), None)]
        for operator, state, reason, started, ended in spans:
            await conn.execute(
                """INSERT INTO presence_spans (pbx_id, operator, state, reason, via, started_at,
                       ended_at) VALUES ('pbx1', $1, $2, $3, 'api', $4, $5)""",
                operator, state, reason, started, ended)
        for i, (operator, talk, at) in enumerate((("201", 40.0, START + timedelta(hours=1)),
                                                  ("201", 20.0, START + timedelta(hours=1.5)),
                                                  ("202", 30.0, END - timedelta(minutes=10)),
                                                  ("201", 99.0, START - timedelta(minutes=5)))):
            await conn.execute(
                """INSERT INTO calls (pbx_id, linkedid, direction, client, caller_number,
                       uniqueids, started_at, answered_at, ended_at, outcome, wait_s, talk_s,
                       answered_by) VALUES ('pbx1', $1, 'inbound', 'KSL', '09011112222', $2,
                       $3, $3, $4, 'answered', 2, $5, $6)""",
                f"op.{i}", [f"op.{i}"], at, at + timedelta(seconds=talk), talk, operator)
            await conn.execute(
                """INSERT INTO call_dispositions (pbx_id, linkedid, client, code, operator,
                       set_by, set_at) VALUES ('pbx1', $1, 'KSL', $2, $3, $3, $4)""",
                f"op.{i}", "resolved" if i != 1 else "callback_promised", operator, at)
        await conn.execute(
            """INSERT INTO handraises (pbx_id, client, operator, caller_channel, via, held_at,
                   hold_s) VALUES ('pbx1', 'KSL', '201', 'PJSIP/t-1', 'feature_code', $1, 45)""",
            START + timedelta(hours=1))
        await conn.execute(
            """INSERT INTO complaints (client, named_operator, category, body, created_by,
                   created_at) VALUES ('KSL', '202', 'operator_attitude', 'x', 'sup', $1)""",
            START + timedelta(days=3))
        for allowed in (True, True, False):
            await conn.execute(
                """INSERT INTO outbound_decisions (decided_at, client, callee_e164, dialled,
                       path, operator, allowed, rule, reason) VALUES ($1, 'KSL', '+81311112222',
                       '0311112222', 'handset', '201', $2, $3, 'r')""",
                START + timedelta(days=2), allowed, "allowed" if allowed else "calling_hours")


async def test_figures_per_operator_cut_at_the_months_edges(pool) -> None:
    await put_rows(pool)
    async with pool.acquire() as conn:
        report = await operator_month(conn, "2026-11", "Asia/Tokyo")
    assert report["period_start"] == "2026-10-31T15:00:00+00:00"
    first, second = report["operators"]
    assert first == {
        "operator": "201", "answered": 2, "talk_s": 60.0, "talk_avg_s": 30.0,
        "logged_in_s": 7200.0, "paused_s": 4200.0,
        "paused_by_reason": {"break": 600.0, "lunch": 3600.0}, "handraises": 1,
        "hold_s": 45.0, "complaints": 0, "dials": 2, "dials_refused": 1,
        "dispositions": {"callback_promised": 1, "resolved": 1}}
    assert (second["operator"], second["answered"], second["logged_in_s"],
            second["complaints"]) == ("202", 1, 1800.0, 1)
    # In UTC, November starts at 09:00 JST on the 1st: 201's night shift belongs to October.
    async with pool.acquire() as conn:
        utc = {o["operator"]: o for o in (await operator_month(conn, "2026-11",
                                                                "UTC"))["operators"]}
    assert (utc["201"]["answered"], utc["201"]["logged_in_s"], utc["201"]["dials"]) == (0, 0, 2)
    assert utc["202"]["answered"] == 1


@pytest.fixture
async def api(db_url: str, pool, tmp_path: Path) -> AsyncIterator[tuple[TestClient, dict]]:
    seeded = await seed(pool)
    await put_rows(pool)
    app = create_app(web_config(tmp_path, db_url), [database_ctx, web_ctx],
                     clock=SettableClock(datetime(2026, 12, 2, tzinfo=UTC)))
    async with TestClient(TestServer(app)) as client:
        yield client, seeded.tokens


async def test_staff_only_over_http_with_csv(api) -> None:
    client, tokens = api
    sup = {"Authorization": f"Bearer {tokens['sup']}"}
    body = await (await client.get("/api/reports/operators?month=2026-11", headers=sup)).json()
    assert [o["operator"] for o in body["operators"]][:2] == ["201", "202"]
    assert body["generated_at"].startswith("2026-12-02")
    response = await client.get("/api/reports/operators?month=2026-11&format=csv", headers=sup)
    rows = list(csv.DictReader(io.StringIO((await response.read()).decode("utf-8-sig"))))
    row = next(r for r in rows if r["operator"] == "201")
    assert row["paused_by_reason"] == "break=600.0; lunch=3600.0" and row["dials"] == "2"
    for who in ("ksl", "op"):
        response = await client.get("/api/reports/operators?month=2026-11",
                                    headers={"Authorization": f"Bearer {tokens[who]}"})
        assert response.status == 403, who
    response = await client.get("/api/reports/operators?month=2026-13", headers=sup)
    assert response.status == 400


async def test_the_command(pool, db_url: str, tmp_path: Path) -> None:
    await put_rows(pool)
    code, out, err = await orikaeshi(db_url, tmp_path, "report", "operators",
                                     "--month", "2026-11")
    assert code == 0, err
    assert json.loads(out)["operators"][0]["paused_s"] == 4200.0
    code, out, err = await orikaeshi(db_url, tmp_path, "report", "operators", "--month", "11")
    assert code == 2 and err.strip().startswith("orikaeshi report:")


def test_docstring_examples() -> None:
    import doctest

    import service.reports.operators as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
