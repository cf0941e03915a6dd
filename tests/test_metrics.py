"""``/metrics``: the figures are the service's real ones (issue 12, Operations).

A recording is served as the PBX into the real app; a route session and a repeat lookup
run through FastAGI; the exposition is parsed with Prometheus's own parser and checked
against what happened.  Admins only on the web port; open on its own port when configured.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from service.app import (
    METRICS,
    agi_ctx,
    create_app,
    database_ctx,
    ledger_ctx,
    metrics_ctx,
    routing_ctx,
    web_ctx,
)
from service.config import REPO_ROOT, PbxConfig
from service.replay.recording import load_recording
from service.replay.server import ReplayServer
from tests.agi_peer import agi_session, route_headers
from tests.conftest import trace_dir
from tests.live_asterisk import free_port
from tests.waiting import eventually
from tests.webapp import seed, web_config


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_metrics_tell_what_happened(db_url: str, pool, tmp_path: Path) -> None:
    seeded = await seed(pool)
    server = ReplayServer(load_recording(trace_dir("answered_agent_hangup") / "ami.jsonl"))
    port = await server.start()
    metrics_port = free_port()
    config = dataclasses.replace(
        web_config(tmp_path, db_url), agi_port=free_port(), metrics_port=metrics_port,
        clients_file=REPO_ROOT / "deploy/clients.sample.yaml",
        pbxs=(PbxConfig(pbx_id="pbx1", ami_port=port, ami_username="u", ami_secret="p"),))
    app = create_app(config, [database_ctx, web_ctx, ledger_ctx, routing_ctx, agi_ctx,
                              metrics_ctx])
    try:
        async with TestClient(TestServer(app)) as client:
            commands = await agi_session(config.agi_port,
                                         route_headers("0312345678", "09011112222"))
            assert commands and commands[0].startswith("EXEC MSet ")
            action = commands[0].split("ROUTE_ACTION=")[1].split(",")[0].rstrip('"')
            await server.finished.wait()
            registry = app[METRICS].registry
            labels = {"pbx": "pbx1", "outcome": "answered", "direction": "inbound"}
            await eventually(lambda: registry.get_sample_value(
                "orikaeshi_calls_ended_total", labels) == 1, timeout=10,
                what="the call's end counted")

            assert (await client.get("/metrics", allow_redirects=False)).status == 302
            assert (await client.get("/metrics", headers={
                "Authorization": f"Bearer {seeded.tokens['sup']}"})).status == 403
            response = await client.get("/metrics", headers={
                "Authorization": f"Bearer {seeded.tokens['admin']}"})
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            got = samples(await response.text())
            async with aiohttp.ClientSession() as http, http.get(
                    f"http://127.0.0.1:{metrics_port}/metrics") as side:
                assert side.status == 200  # its own port: no authentication
                side_samples = samples(await side.text())
    finally:
        await server.close()

    assert got[("orikaeshi_calls_ended_total",
                (("direction", "inbound"), ("outcome", "answered"), ("pbx", "pbx1")))] == 1
    assert got[("orikaeshi_agi_decisions_total", (("action", action),))] == 1
    assert got[("orikaeshi_agi_session_seconds_count",
                (("result", "answered"), ("script", "route")))] == 1
    events = got[("orikaeshi_ami_events_total", (("pbx", "pbx1"),))]
    assert events > 100
    assert got[("orikaeshi_ami_up", (("pbx", "pbx1"),))] == 1
    assert got[("orikaeshi_spool_bytes", (("pbx", "pbx1"),))] == 0
    assert got[("orikaeshi_ledger_records_dead_lettered_total", (("pbx", "pbx1"),))] == 0
    assert got[("orikaeshi_live_streams", ())] == 0
    assert got[("orikaeshi_message_deliveries_failed", ())] == 0
    assert ("orikaeshi_ledger_lag_seconds", (("pbx", "pbx1"),)) in got
    assert side_samples[("orikaeshi_ami_events_total", (("pbx", "pbx1"),))] >= events


async def test_repeat_lookup_latency_is_observed_ok_or_not() -> None:
    """(Whether the route asks at all depends on the client's hours: tested directly.)"""
    from datetime import UTC, datetime

    import pytest

    from service.metrics import Metrics
    from service.routing.repeat import RepeatHistory

    metrics = Metrics()
    answers: list[Exception | None] = [None, RuntimeError("database gone")]

    async def lookup(client: str, caller: str, now: datetime, window_s: float,
                     exclude_uniqueid: str | None = None) -> RepeatHistory:
        error = answers.pop(0)
        if error is not None:
            raise error
        return RepeatHistory(calls=2)

    timed = metrics.timed_lookup(lookup)
    now = datetime(2026, 11, 24, tzinfo=UTC)
    assert (await timed("KSL", "+819011112222", now, 3600.0)).calls == 2
    with pytest.raises(RuntimeError):
        await timed("KSL", "+819011112222", now, 3600.0)
    for result in ("ok", "error"):
        assert metrics.registry.get_sample_value("orikaeshi_repeat_lookup_seconds_count",
                                                 {"result": result}) == 1
