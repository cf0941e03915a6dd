"""Following Master.csv and queue_log on the PBX host: appended lines only once, whole lines
only, across rename rotation and copytruncate, resumed after a restart from the saved
position, bad and overlong lines skipped and counted; and a pass over the followed rows
settles an unknown call without any command."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from service.reconcile_live.follow import FileFollower
from service.reconcile_live.settle import reconcile_state
from service.reconcile_live.worker import ReconcileWorker
from tests.replaying import config_for

START = datetime(2026, 11, 22, 11, 27, 7)  # the PBX's wall clock, Asia/Tokyo


def cdr_line(uniqueid: str, start: datetime, src: str = "09011112222") -> str:
    end = start + timedelta(seconds=17)
    return (f'"KSL","{src}","0312345678","from-pstn","""Tanaka"" <{src}>",'
            f'"Local/0312345678@from-pstn-0000;2","Local/201@operators-0001;1","Queue",'
            f'"q-ksl,t,,,30","{start:%Y-%m-%d %H:%M:%S}","{start:%Y-%m-%d %H:%M:%S}",'
            f'"{end:%Y-%m-%d %H:%M:%S}",17,17,"ANSWERED","DOCUMENTATION","{uniqueid}",""\n')


async def count(pool, table: str) -> int:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))


async def test_follow_across_rotation_truncation_and_restart(pool, tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(cdr_line("1.1", START) + cdr_line("1.2", START)[:40])  # a half line
    follower = FileFollower("pbx1", path, "cdr", "Asia/Tokyo")
    assert await follower.poll(pool) == 1
    with path.open("a") as out:  # the rest of the half line, and a bad one
        out.write(cdr_line("1.2", START)[40:] + '"only","three","columns"\n')
    assert await follower.poll(pool) == 1 and follower.stats.bad_lines == 1
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM cdr WHERE uniqueid = '1.1'")
    assert row["start"] == datetime(2026, 11, 22, 2, 27, 7)  # UTC
    assert row["clid"] == '"Tanaka" <09011112222>' and row["source"] == f"file:{path}"
    # logrotate: renamed, a line written to the old file late, a new file at the path.
    with path.open("a") as out:
        out.write(cdr_line("1.3", START))
    path.rename(tmp_path / "Master.csv.1")
    path.write_text(cdr_line("2.1", START))
    with (tmp_path / "Master.csv.1").open("a") as out:
        out.write(cdr_line("1.4", START))
    assert await follower.poll(pool) == 3 and follower.stats.rotations == 1
    await follower.close()
    # A restart goes on from the saved position: nothing twice, the new line once.
    with path.open("a") as out:
        out.write(cdr_line("2.2", START))
    again = FileFollower("pbx1", path, "cdr", "Asia/Tokyo")
    assert await again.poll(pool) == 1
    # copytruncate: the same file, shorter: read from its start.
    path.write_text(cdr_line("3.1", START))
    assert await again.poll(pool) == 1
    await again.close()
    assert await count(pool, "cdr") == 7


async def test_reads_are_bounded(pool, tmp_path: Path) -> None:
    path = tmp_path / "queue_log"
    lines = [f"{1795346833 + i}|17953468{i:02d}.1|q-ksl|NONE|ENTERQUEUE||0901|1\n"
             for i in range(40)]
    path.write_text("x" * 5000 + "\n" + "".join(lines))  # an overlong line first
    follower = FileFollower("pbx1", path, "queue_log", "UTC", max_read=1024, max_line=1024,
                            max_reads_per_poll=1000)
    assert await follower.poll(pool) == 40
    assert follower.stats.bad_lines == 1
    await follower.close()


async def test_a_followed_unknown_call_is_settled_by_the_loop(pool, tmp_path: Path) -> None:
    """The ledger closed a call ``unknown`` (its end fell in an AMI gap); Asterisk's files
    say 201 answered it.  One turn of the service's loop settles it; nothing is left."""
    now = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    started = datetime(2026, 11, 22, 2, 27, 7, tzinfo=UTC)
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO calls (pbx_id, linkedid, direction, client, did, caller_number,
                   caller_e164, caller_uniqueid, uniqueids, started_at, ended_at, outcome)
               VALUES ('pbx1', '1795346827.1', 'inbound', 'KSL', '0312345678', '09011112222',
                       '+819011112222', '1795346827.1', ARRAY['1795346827.1'], $1, $2,
                       'unknown')""", started, started + timedelta(seconds=17))
    cdr = tmp_path / "Master.csv"
    cdr.write_text(cdr_line("1795346827.1", START))
    queue_log = tmp_path / "queue_log"
    epoch = int(started.timestamp())
    queue_log.write_text(f"{epoch}|1795346827.1|q-ksl|NONE|ENTERQUEUE||09011112222|1\n"
                         f"{epoch + 4}|1795346827.1|q-ksl|op201|CONNECT|4|1795346833.2|3\n"
                         f"{epoch + 17}|1795346827.1|q-ksl|op201|COMPLETEAGENT|4|13|1\n")
    pbx = dataclasses.replace(config_for(tmp_path).pbxs[0], reconcile_source="files",
                              cdr_file=str(cdr), queue_log_file=str(queue_log),
                              clock_tz="Asia/Tokyo")
    config = dataclasses.replace(config_for(tmp_path), pbxs=(pbx,))
    assert (await reconcile_state(pool))["running"] is False
    worker = ReconcileWorker(pool, config, clock=lambda: now)
    await worker.run_once()
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT outcome, answered_by, settled_by FROM calls")
    assert tuple(row) == ("answered", "201", "reconcile")
    state = await reconcile_state(pool)
    assert (state["ok"], state["differences"], state["unknown_calls"]) == (True, 0, 0)
    assert state["pbx"]["pbx1"]["settled"] == 1
    # A call the ledger never saw (the service was down) is added; its difference shows.
    with cdr.open("a") as out:
        out.write(cdr_line("1795346900.5", START + timedelta(minutes=5), src="08022223333"))
    await worker.run_once()
    state = await reconcile_state(pool)
    assert state["differences"] == 1 and not state["ok"]
    assert state["pbx"]["pbx1"]["differences"] == {"unsettled": 1}
    for follower in worker.followers["pbx1"]:
        await follower.close()


async def test_supervisor_page_and_api(pool, db_url: str, tmp_path: Path) -> None:
    """GET /api/reconcile for supervisors (not operators), and the page is served."""
    from aiohttp.test_utils import TestClient, TestServer

    from service.app import create_app, database_ctx, web_ctx
    from tests.webapp import seed, web_config

    seeded = await seed(pool)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO reconcile_differences (pbx_id, kind, linkedid, detail) "
            "VALUES ('pbx1', 'missing_in_cdr', '1.1', 'in the ledger, no CDR row')")
    app = create_app(web_config(tmp_path, db_url), [database_ctx, web_ctx])
    async with TestClient(TestServer(app)) as client:
        sup = {"Authorization": f"Bearer {seeded.tokens['sup']}"}
        response = await client.get("/api/reconcile", headers=sup)
        body = await response.json()
        assert body["state"]["differences"] == 1 and not body["state"]["ok"]
        assert body["differences"][0]["detail"] == "in the ledger, no CDR row"
        op = {"Authorization": f"Bearer {seeded.tokens['op']}"}
        assert (await client.get("/api/reconcile", headers=op)).status == 403
        page = await client.get("/reconcile")
        assert page.status == 200 and "reconcile.js" in await page.text()
