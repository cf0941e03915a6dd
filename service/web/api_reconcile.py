"""HTTP: what continuous reconciliation left (the supervisor page /reconcile), and a
supervisor's resolution of a difference."""

from __future__ import annotations

from aiohttp import web

from service.reconcile_live.settle import differences, reconcile_state, resolve
from service.status import RECONCILE_WORKER
from service.web.auth import allow, current_user
from service.web.context import config, now, pool
from service.web.http import conflict, json_body, not_found, ok, text_field


@allow("admin", "supervisor")
async def reconcile(request: web.Request) -> web.Response:
    """Each PBX's last pass, the calls still unknown, and every difference left."""
    state = await reconcile_state(pool(request))
    async with pool(request).acquire() as conn:
        items = await differences(conn)
    # A PBX's passes belong to no client: the page shows them in the company's zone.
    return ok({"state": state, "differences": items,
               "company_timezone": config(request).company_timezone})


@allow("admin", "supervisor")
async def resolve_difference(request: web.Request) -> web.Response:
    """A supervisor has looked at a difference and says what was done (the note is
    required: it is the evidence).  It no longer raises /healthz's alert."""
    data = await json_body(request)
    pbx_id = text_field(data, "pbx_id", max_length=64) or ""
    kind = text_field(data, "kind", max_length=40) or ""
    linkedid = text_field(data, "linkedid", required=False, max_length=64) or ""
    note = text_field(data, "note", max_length=1000) or ""
    async with pool(request).acquire() as conn:
        result = await resolve(conn, pbx_id, kind, linkedid, by=current_user(request).username,
                               note=note, now=now(request))
    if result == "missing":
        raise not_found("no such difference")
    if result == "already":
        raise conflict("this difference is already resolved")
    worker = request.app.get(RECONCILE_WORKER)
    if worker is not None:
        await worker.refresh()  # /healthz says so now, not after the next pass
    return ok({"pbx_id": pbx_id, "kind": kind, "linkedid": linkedid, "resolved": True})
