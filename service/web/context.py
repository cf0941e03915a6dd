"""What the web handlers share (typed AppKeys live in service.app; these are accessors)."""

from __future__ import annotations

from datetime import datetime
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


def now(request: web.Request) -> datetime:
    """The service's clock (``service.clock``), for rules that depend on the time."""
    from service.appkeys import CLOCK

    return request.app[CLOCK]()


def ami_for(request: web.Request, pbx_id: str | None = None
            ) -> tuple[PbxConfig, AmiClient | None]:
    """The PBX ``pbx_id`` (the PBX of the call an action is about; the first configured
    when None or unknown) and this instance's logged-in AMI session to it, if it holds one
    (the instance that holds a PBX's AMI consumer performs its actions)."""
    from service.appkeys import PIPELINES

    cfg = config(request)
    pbx = next((p for p in cfg.pbxs if p.pbx_id == pbx_id), cfg.pbxs[0])
    pipeline: Any = request.app.get(PIPELINES, {}).get(pbx.pbx_id)
    client = pipeline.client if pipeline is not None else None
    if client is None or not client.logged_in.is_set():
        return pbx, None
    return pbx, client
