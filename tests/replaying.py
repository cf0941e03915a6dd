"""Helpers to replay a recording through the real pipeline in tests (real sockets, real DB)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import asyncpg

from service.config import Config
from service.replay.recording import load_recording
from service.replay.run import ReplayResult, inbound_report, replay_into
from service.replay.server import ReplayServer


def config_for(tmp_path: Path, **overrides: Any) -> Config:
    return dataclasses.replace(Config(), data_dir=tmp_path / "data", **overrides)


async def replay(pool: asyncpg.Pool, tmp_path: Path, recording: Path, *, pbx_id: str = "pbx1",
                 config: Config | None = None, **server_options: Any
                 ) -> tuple[list[dict[str, Any]], ReplayResult]:
    server = ReplayServer(load_recording(recording), **server_options)
    result = await replay_into(pool, config or config_for(tmp_path), server, pbx_id=pbx_id)
    async with pool.acquire() as conn:
        report = await inbound_report(conn, pbx_id)
    return report, result
