"""Continuous reconciliation in /healthz and GET /api/status: each reconciled PBX's source,
last pass, lag, calls still unknown after the settle window and differences left; an alert
(503) when a difference outlives the settle window or the reconciler stops reading; all
read from what the loop stored, never counted per request."""

from __future__ import annotations

import dataclasses
import doctest
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import service.reconcile_live.health as health_module
from service.app import PIPELINES, create_app, database_ctx, ledger_ctx, reconcile_ctx, web_ctx
from service.clock import SettableClock
from service.config import ConfigError, PbxConfig, load_config
from service.replay.recording import load_recording
from service.replay.server import ReplayServer
from service.status import RECONCILE_WORKER
from tests.conftest import trace_dir
from tests.test_reconcile_follow import START, cdr_line
from tests.waiting import eventually
from tests.webapp import seed, web_config

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
STARTED = datetime(2026, 11, 22, 2, 27, 7, tzinfo=UTC)  # START, Asia/Tokyo wall clock


def test_rules() -> None:
    assert doctest.testmod(health_module).failed == 0


async def _unknown_call(pool) -> None:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO calls (pbx_id, linkedid, direction, client, did, caller_number,
                   caller_e164, caller_uniqueid, uniqueids, started_at, ended_at, outcome)
               VALUES ('pbx1', '1795346999.7', 'inbound', 'KSL', '0312345678', '09011112222',
                       '+819011112222', '1795346999.7', ARRAY['1795346999.7'], $1, $2,
                       'unknown')""", STARTED, STARTED + timedelta(seconds=17))


async def reconciling_app(pool, db_url: str, tmp_path: Path,  # type: ignore[no-untyped-def]
                          clock: SettableClock
                          ) -> tuple[web.Application, ReplayServer, Path, Path]:
    """The service (web, ledger from a replayed AMI, the reconcile loop following empty
    files) with an outage call no record knows of yet: its first pass leaves a difference.
    One pass at start; the next ones are run by the test (no sleep raced)."""
    await _unknown_call(pool)
    cdr, queue_log = tmp_path / "Master.csv", tmp_path / "queue_log"
    cdr.write_text("")
    queue_log.write_text("")
    ami = ReplayServer(load_recording(trace_dir("answered_agent_hangup") / "ami.jsonl"))
    port = await ami.start()
    pbx = PbxConfig(pbx_id="pbx1", ami_port=port, ami_username="u", ami_secret="p",
                    inbound_contexts=("from-pstn",), reconcile_source="files",
                    cdr_file=str(cdr), queue_log_file=str(queue_log), clock_tz="Asia/Tokyo")
    config = dataclasses.replace(web_config(tmp_path, db_url, ami_lock=False), pbxs=(pbx,),
                                 reconcile_interval_s=3600.0)
    app = create_app(config, [database_ctx, web_ctx, ledger_ctx, reconcile_ctx], clock=clock)
    return app, ami, cdr, queue_log


async def test_differences_and_a_stopped_reconciler_are_in_healthz(
        pool, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An outage call (``unknown``) whose records Asterisk has not written yet: the first
    pass leaves a difference; /healthz shows it, says 503 once it outlived the settle
    window, and again when no pass succeeded for too long; once the records arrive one
    pass settles it and /healthz is 200 again."""
    seeded = await seed(pool)
    clock = SettableClock(T0)
    app, ami, cdr, queue_log = await reconciling_app(pool, db_url, tmp_path, clock)
    sup = {"Authorization": f"Bearer {seeded.tokens['sup']}"}
    try:
        async with TestClient(TestServer(app)) as client:
            link = app[PIPELINES]["pbx1"].client
            await eventually(lambda: link.logged_in.is_set(), 10, what="the AMI login")
            worker = app[RECONCILE_WORKER]
            await eventually(lambda: worker.reading is not None, 20, what="the first pass")

            async def health(expect: int) -> dict[str, Any]:
                response = await client.get("/healthz")
                body: dict[str, Any] = await response.json()
                assert response.status == expect, body["alerts"]
                return body

            # Found now: younger than the settle window, no alert yet.
            body = await health(200)
            [state] = body["reconcile"]
            assert (state["pbx_id"], state["source"], state["last_ok"], state["lag_s"]) == \
                ("pbx1", "files", T0.isoformat(), 0.0)
            assert (state["unknown_calls"], state["differences"], state["stopped"]) == \
                (1, 1, False)
            assert not [a for a in body["alerts"] if a["kind"].startswith("reconcile")]
            # The supervisor page's list names the call's client and its zone (the page
            # shows the difference's times in it).
            listed = await (await client.get("/api/reconcile", headers=sup)).json()
            [difference] = listed["differences"]
            assert (difference["linkedid"], difference["client"], difference["timezone"]) == \
                ("1795346999.7", "KSL", "Asia/Tokyo")

            clock.fixed = T0 + timedelta(seconds=150)  # past the 120 s settle window
            body = await health(503)
            [alert] = [a for a in body["alerts"] if a["kind"].startswith("reconcile")]
            assert alert["kind"] == "reconcile_differences" and alert["count"] == 1
            assert alert["since"] == T0.timestamp()
            assert alert["message"].startswith("PBX pbx1: 1 difference(s) between the ledger "
                                               "and Asterisk's records are left")
            assert body["reconcile"][0]["lag_s"] == 150.0
            # The wallboard's banner reads the same through /api/status.
            status = await (await client.get("/api/status", headers=sup)).json()
            assert [a["kind"] for a in status["alerts"]] == ["reconcile_differences"]
            assert status["reconcile"] == body["reconcile"]

            clock.fixed = T0 + timedelta(seconds=3 * 3600 + 61)  # three passes missed
            body = await health(503)
            stopped = [a for a in body["alerts"] if a["kind"] == "reconcile_stopped"]
            assert len(stopped) == 1 and body["reconcile"][0]["stopped"] is True
            assert "no pass succeeded for 10861 s" in stopped[0]["message"]

            # A supervisor resolves the difference, saying what was done: its alert goes at
            # once; a pass that finds it again keeps it resolved.
            resolution = {"pbx_id": "pbx1", "kind": difference["kind"],
                          "linkedid": "1795346999.7", "note": "CDR lost in a PBX restart"}
            op = {"Authorization": f"Bearer {seeded.tokens['op']}"}
            url = "/api/reconcile/resolve"
            assert (await client.post(url, headers=op, json=resolution)).status == 403
            no_note = {k: v for k, v in resolution.items() if k != "note"}
            assert (await client.post(url, headers=sup, json=no_note)).status == 400
            assert (await client.post(url, headers=sup, json={**resolution, "kind": "outcome"})
                    ).status == 404
            assert (await client.post(url, headers=sup, json=resolution)).status == 200
            assert (await client.post(url, headers=sup, json=resolution)).status == 409
            body = await health(503)
            assert [a["kind"] for a in body["alerts"]] == ["reconcile_stopped"]
            await worker.run_once()  # the records are still missing: found again
            body = await health(200)
            assert body["reconcile"][0]["differences"] == 0
            listed = await (await client.get("/api/reconcile", headers=sup)).json()
            [difference] = listed["differences"]
            assert (difference["resolved_by"], difference["resolved_note"]) == \
                ("sup", "CDR lost in a PBX restart")
            assert listed["state"]["differences"] == 0 and listed["state"]["ok"]

            # Asterisk's records arrive; one pass settles the call: healthy again.
            cdr.write_text(cdr_line("1795346999.7", START))
            epoch = int(STARTED.timestamp())
            queue_log.write_text(
                f"{epoch}|1795346999.7|q-ksl|NONE|ENTERQUEUE||09011112222|1\n"
                f"{epoch + 4}|1795346999.7|q-ksl|op201|CONNECT|4|1795346833.2|3\n"
                f"{epoch + 17}|1795346999.7|q-ksl|op201|COMPLETEAGENT|4|13|1\n")
            await worker.run_once()
            body = await health(200)
            [state] = body["reconcile"]
            assert (state["unknown_calls"], state["differences"], state["stopped"],
                    state["lag_s"]) == (0, 0, False, 0.0)
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT outcome FROM calls WHERE linkedid = $1",
                                           "1795346999.7") == "answered"
    finally:
        await ami.close()


async def test_a_failing_pass_keeps_the_last_success_and_says_why(
        pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A pass that cannot read its file is recorded with its error; the lag is measured from
    the last success, so the alert comes when the failures last, naming the error."""
    from service.reconcile_live.worker import ReconcileWorker
    from tests.replaying import config_for

    await _unknown_call(pool)
    cdr = tmp_path / "Master.csv"
    cdr.write_text("")
    pbx = dataclasses.replace(config_for(tmp_path).pbxs[0], pbx_id="pbx1",
                              reconcile_source="files", cdr_file=str(cdr), clock_tz="UTC")
    config = dataclasses.replace(config_for(tmp_path), pbxs=(pbx,))
    clock = SettableClock(T0)
    worker = ReconcileWorker(pool, config, clock=clock)
    worker.running = True  # as inside run(): the loop is alive
    await worker.run_once()
    cdr.rename(tmp_path / "gone")  # and no file at the path: reading fails
    cdr.mkdir()  # a directory where the file was: open() fails with an OSError
    for minutes in (1, 2):
        clock.fixed = T0 + timedelta(minutes=minutes)
        await worker.run_once()
    [state], alerts = worker.view()
    assert state["last_ok"] == T0.isoformat()
    assert state["last_pass"] == (T0 + timedelta(minutes=2)).isoformat()
    assert state["error"] and "IsADirectoryError" in state["error"]
    assert not [a for a in alerts if a["kind"] == "reconcile_stopped"]
    clock.fixed = T0 + timedelta(seconds=config.reconcile_interval_s * 3 + 61)
    _, alerts = worker.view()
    [stopped] = [a for a in alerts if a["kind"] == "reconcile_stopped"]
    assert "last error: IsADirectoryError" in stopped["message"]
    for follower in worker.followers["pbx1"]:
        await follower.close()


@pytest.mark.parametrize(("pbx", "top", "error"), [
    ('reconcile_source = "databse"', "",
     "[[pbx]] p1 reconcile_source: 'databse' is not one of off, database, files"),
    ('reconcile_source = "files"', "", '[[pbx]] p1 reconcile_source = "files" needs cdr_file'),
    ('reconcile_source = "database"', "reconcile_interval_s = 0",
     "reconcile_interval_s: must be more than 0"),
])
def test_reconcile_settings_are_checked(tmp_path: Path, pbx: str, top: str, error: str) -> None:
    path = tmp_path / "orikaeshi.toml"
    path.write_text(f'{top}\n[[pbx]]\npbx_id = "p1"\n{pbx}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value).startswith(error)
