"""The call flows' part of the operator's screen pop: what the buttons of the pop need to know
about the call (docs/callflows.md): its client's recording policy and whether it is being
recorded, its latest 手上げ and where that stands, the client's disposition codes and the
one chosen.  Read with the pop, so a reloaded page shows the same as the live one."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from service.callflows.handraise import handraise_state
from service.web.callflow_context import directory


async def pop_callflows(request: web.Request, conn: asyncpg.Connection, pbx_id: str,
                        linkedid: str, client_code: str | None) -> dict[str, Any]:
    """The call's flow state for the pop (the client from the routing cache, so the policy
    is the one the calls are routed with)."""
    known = await directory(request, conn)
    client = known.clients.get(client_code or "") if known else None
    recorded = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM recordings WHERE pbx_id = $1 AND linkedid = $2 "
        "AND deleted_at IS NULL)", pbx_id, linkedid)
    raised = await conn.fetchrow(
        "SELECT id, operator, held_at, helped_by, ended_at, resolution, hold_s, help_s "
        "FROM handraises WHERE pbx_id = $1 AND linkedid = $2 ORDER BY id DESC LIMIT 1",
        pbx_id, linkedid)
    chosen = await conn.fetchval(
        "SELECT code FROM call_dispositions WHERE pbx_id = $1 AND linkedid = $2",
        pbx_id, linkedid)
    handraise = None
    if raised is not None:
        handraise = {**dict(raised), "state": handraise_state(
            raised["ended_at"] is not None, raised["resolution"], raised["helped_by"])}
    return {"recording_policy": client.recording if client else "none",
            "recorded": bool(recorded), "handraise": handraise,
            "dispositions": list(client.dispositions) if client else [],
            "disposition": chosen}
