"""HTTP: what continuous reconciliation left (the supervisor page /reconcile)."""

from __future__ import annotations

from aiohttp import web

from service.reconcile_live.settle import differences, reconcile_state
from service.web.auth import allow
from service.web.context import pool
from service.web.http import ok


@allow("admin", "supervisor")
async def reconcile(request: web.Request) -> web.Response:
    """Each PBX's last pass, the calls still unknown, and every difference left."""
    state = await reconcile_state(pool(request))
    async with pool(request).acquire() as conn:
        items = await differences(conn)
    return ok({"state": state, "differences": items})
