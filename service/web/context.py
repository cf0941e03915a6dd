"""What the web handlers share (typed AppKeys live in service.app; these are accessors)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from service.ami.adapter import AmiClient
from service.config import Config, PbxConfig


def pool(request: web.Request) -> asyncpg.Pool:
    from service.appkeys import POOL

    return request.app[POOL]


def config(request: web.Request) -> Config:
    from service.appkeys import CONFIG

    return request.app[CONFIG]


def ami_for(request: web.Request) -> tuple[PbxConfig, AmiClient | None]:
    """The first PBX's config and this instance's logged-in AMI session to it, if it holds
    one (the instance that holds a PBX's AMI consumer performs its actions)."""
    from service.appkeys import PIPELINES

    cfg = config(request)
    pbx = cfg.pbxs[0]
    pipeline: Any = request.app.get(PIPELINES, {}).get(pbx.pbx_id)
    client = pipeline.client if pipeline is not None else None
    if client is None or not client.logged_in.is_set():
        return pbx, None
    return pbx, client



class Clock:
    """The service's clock (aware, UTC).  Tests set ``fixed`` to put the service at a chosen
    time (the worklist's calling hours, click-to-call); nothing else does."""

    def __init__(self) -> None:
        self.fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed if self.fixed is not None else datetime.now(UTC)


def now(request: web.Request) -> datetime:
    from service.appkeys import CLOCK

    clock = request.app.get(CLOCK)
    return clock() if clock is not None else datetime.now(UTC)
