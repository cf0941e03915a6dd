"""What the call flows' handlers share: the clients as routing knows them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.clients.model import Directory
from service.clients.store import current_directory


async def directory(request: web.Request, conn: Any) -> Directory | None:
    """The clients as routing knows them (the database's newest when this app has no
    routing cache)."""
    from service.appkeys import ROUTING

    cache = request.app.get(ROUTING)
    if cache is not None and cache.directory is not None:
        known: Directory | None = cache.directory
        return known
    return await current_directory(conn)
