"""Helpers to replay a recording through the real pipeline in tests (real sockets, real DB)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

from service.ami.adapter import AmiClient
from service.clock import Clock
from service.config import Config
from service.replay.recording import load_recording
from service.replay.run import ReplayResult, inbound_report, replay_into
from service.replay.server import ReplayServer
from tests.conftest import trace_dir
from tests.waiting import eventually, running


def config_for(tmp_path: Path, **overrides: Any) -> Config:
    return dataclasses.replace(Config(), data_dir=tmp_path / "data", **overrides)


def recorded_before(clock: Clock, hours: float = 1.0) -> float:
    """A start time for a re-based recording: ``hours`` before the service's clock."""
    return (clock() - timedelta(hours=hours)).timestamp()


async def replay(pool: asyncpg.Pool, tmp_path: Path, recording: Path, *, pbx_id: str = "pbx1",
                 config: Config | None = None, **server_options: Any
                 ) -> tuple[list[dict[str, Any]], ReplayResult]:
    server = ReplayServer(load_recording(recording), **server_options)
    result = await replay_into(pool, config or config_for(tmp_path), server, pbx_id=pbx_id)
    async with pool.acquire() as conn:
        report = await inbound_report(conn, pbx_id)
    return report, result


@contextlib.asynccontextmanager
async def logged_in_ami(scenario: str = "answered_agent_hangup"
                        ) -> AsyncIterator[tuple[AmiClient, ReplayServer]]:
    """A real AMI client logged in to a replay of ``scenario``: what tests send actions
    through.  The server keeps every action it received (``server.actions``)."""
    server = ReplayServer(load_recording(trace_dir(scenario) / "ami.jsonl"))
    port = await server.start()
    ami = AmiClient("pbx1", "127.0.0.1", port, "u", "p", lambda events: None)
    try:
        async with running(ami.run()):
            await eventually(ami.logged_in.is_set)
            yield ami, server
    finally:
        await server.close()
