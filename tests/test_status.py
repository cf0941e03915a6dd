"""The service's own state where people look: /healthz and GET /api/status (one function,
service/status.py) name each PBX link with its host, port, state, since when and last
error; the FastAGI listener; the spool; and alerts, among them calls arriving without DID
or routing decision because the service watches the wrong dialplan context."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from service.app import PIPELINES, create_app, database_ctx, ledger_ctx, web_ctx
from service.config import PbxConfig
from service.ledger.model import Call
from service.replay.recording import load_recording
from service.replay.server import ReplayServer
from service.status import STATUS_WATCH, missing_route_facts, spool_depth
from service.store.spool import Spool
from tests.conftest import trace_dir
from tests.live_asterisk import free_port
from tests.waiting import eventually
from tests.webapp import seed, web_config


def test_missing_route_facts() -> None:
    whole = Call("p", "1.1", "inbound", started_at=0.0, did="0312345678")
    whole.route_action, whole.caller_number = "queue", "09011112222"
    assert missing_route_facts(whole) == []
    whole.caller_number = None  # a withheld number is not a fault
    assert missing_route_facts(whole) == []
    blind = Call("p", "1.2", "inbound", started_at=0.0)
    assert missing_route_facts(blind) == ["DID", "routing decision", "caller number"]


def test_spool_depth_counts_what_was_appended_and_notices_a_refill(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "p.spool")
    for n in range(3):
        spool.append([{"call": n}])
    first = spool_depth(spool.path)
    assert (first.lines, first.size) == (3, spool.path.stat().st_size)
    spool.append([{"call": 3}])
    assert spool_depth(spool.path, first).lines == 4
    # Replayed and emptied, then refilled past the old size before anyone asked again.
    spool.clear()
    for n in range(5):
        spool.append([{"call": 10 + n, "pad": "x" * 40}])
    again = spool_depth(spool.path, first)
    assert (again.lines, again.size) == (5, spool.path.stat().st_size)


async def test_an_unreachable_pbx_is_named_in_healthz_and_api_status(
        db_url: str, pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seeded = await seed(pool)
    port = free_port()  # nothing listens there
    config = web_config(tmp_path, db_url, ami_lock=False, pbxs=(
        PbxConfig(pbx_id="tokyo-1", ami_port=port, ami_username="u", ami_secret="p"),))
    app = create_app(config, [database_ctx, web_ctx, ledger_ctx])
    async with TestClient(TestServer(app)) as client:
        client_of = app[PIPELINES]["tokyo-1"].client
        await eventually(lambda: client_of.last_error is not None, 10, what="a failed connect")
        response = await client.get("/healthz")
        assert response.status == 503
        health = await response.json()
        [link] = health["pbx"]
        assert (link["pbx_id"], link["host"], link["port"], link["state"]) == \
            ("tokyo-1", "127.0.0.1", port, "down")
        assert link["last_error"] == (f"connection refused by 127.0.0.1:{port} (Asterisk "
                                      "down, or AMI off/elsewhere)")
        assert isinstance(link["since"], float)
        [alert] = health["alerts"]
        assert alert["kind"] == "pbx_down" and alert["since"] == link["since"]
        assert f"PBX tokyo-1 (127.0.0.1:{port}) is not connected: connection refused" in \
            alert["message"]
        # No FastAGI server in this app: said so, not null.
        assert health["agi"] == {"listening": None, "sessions": 0, "served": 0,
                                 "refused": 0, "failed": 0}

        # The wallboard reads the same through /api/status, for supervisors and admins only.
        assert (await client.get("/api/status")).status == 401
        statuses: dict[str, Any] = {}
        for who in ("admin", "sup", "op", "ksl"):
            got = await client.get("/api/status",
                                   headers={"Authorization": f"Bearer {seeded.tokens[who]}"})
            statuses[who] = got.status
            if got.status == 200:
                body = await got.json()
                assert set(body) == {"pbx", "agi", "spool", "reconcile", "alerts"}
                assert body["pbx"][0]["last_error"] == link["last_error"]
                assert body["alerts"][0]["kind"] == "pbx_down"
        assert statuses == {"admin": 200, "sup": 200, "op": 403, "ksl": 403}


async def test_spooled_records_are_counted_and_alerted(db_url: str, tmp_path: Path) -> None:
    config = web_config(tmp_path, db_url, ami_lock=False, pbxs=(
        PbxConfig(pbx_id="p1", ami_port=free_port(), ami_username="u", ami_secret="p"),))
    app = create_app(config, [database_ctx, ledger_ctx])
    async with TestClient(TestServer(app)) as client:
        body = await (await client.get("/healthz")).json()
        assert body["spool"] == {"p1": {"depth": 0, "bytes": 0, "spooling": False}}
        # What the writer does while the database is away: batches appended to the spool.
        writer = app[PIPELINES]["p1"].writer
        # As after a failed write: the writer leaves the spool alone until its retry time,
        # so these placeholder batches are not tried (and dropped) while the test counts.
        writer._next_retry = math.inf
        spool = writer.spool
        spool.append([{"kind": "placeholder"}])
        spool.append([{"kind": "placeholder"}])
        body = await (await client.get("/healthz")).json()
        size = spool.path.stat().st_size
        assert body["spool"] == {"p1": {"depth": 2, "bytes": size, "spooling": True}}
        spooling = [a for a in body["alerts"] if a["kind"] == "spooling"]
        assert len(spooling) == 1 and "2 batch(es) of call records are kept on disk" in \
            spooling[0]["message"]
        # Counted again after one more batch (only the new bytes are read) and after the
        # spool was emptied.
        spool.append([{"kind": "placeholder"}])
        body = await (await client.get("/healthz")).json()
        assert body["spool"] == {"p1": {"depth": 3, "bytes": spool.path.stat().st_size,
                                        "spooling": True}}
        spool.clear()  # not a real batch: gone before the writer tries it
        body = await (await client.get("/healthz")).json()
        assert body["spool"] == {"p1": {"depth": 0, "bytes": 0, "spooling": False}}
        assert not [a for a in body["alerts"] if a["kind"] == "spooling"]
        spool.append([{"kind": "placeholder"}])
        body = await (await client.get("/healthz")).json()
        assert body["spool"]["p1"]["depth"] == 1
        spool.clear()


async def _replay_with(tmp_path: Path, db_url: str, inbound: tuple[str, ...]
                       ) -> dict[str, Any]:
    server = ReplayServer(load_recording(trace_dir("answered_agent_hangup") / "ami.jsonl"))
    port = await server.start()
    config = dataclasses.replace(web_config(tmp_path, db_url, ami_lock=False), pbxs=(
        PbxConfig(pbx_id="pbx1", ami_port=port, ami_username="u", ami_secret="p",
                  inbound_contexts=inbound),))
    app = create_app(config, [database_ctx, ledger_ctx])
    try:
        async with TestClient(TestServer(app)) as client:
            await server.finished.wait()
            pipeline = app[PIPELINES]["pbx1"]
            await pipeline.client.drained()
            body: dict[str, Any] = await (await client.get("/healthz")).json()
            body["_unrouted_since"] = [a.since for a in app[STATUS_WATCH].unrouted.alerts
                                       .values()]
            return body
    finally:
        await server.close()


async def test_calls_in_a_context_the_service_does_not_watch_raise_an_alert(
        db_url: str, tmp_path: Path) -> None:
    """The recording's carrier calls are created in [from-pstn].  Watching only
    [orikaeshi-inbound] (the mirror image of issue 8's sample), the call reaches its queue
    with no DID and no routing decision, and the service says so where people look."""
    wrong = await _replay_with(tmp_path / "wrong", db_url, ("orikaeshi-inbound",))
    unrouted = [a for a in wrong["alerts"] if a["kind"] == "unrouted_calls"]
    assert len(unrouted) == 1, wrong["alerts"]
    message = unrouted[0]["message"]
    assert message.startswith("PBX pbx1: 1 inbound call(s) reached queue q-ksl without DID, "
                              "routing decision, caller number (created in [from-pstn])")
    assert "inbound_contexts: orikaeshi-inbound" in message
    assert "orikaeshi dialplan check" in message
    assert unrouted[0]["since"] == wrong["_unrouted_since"][0]

    right = await _replay_with(tmp_path / "right", db_url, ("from-pstn",))
    assert [a for a in right["alerts"] if a["kind"] == "unrouted_calls"] == []
