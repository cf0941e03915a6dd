"""HTTP: 手上げ with hold (service/callflows/handraise.py) and the call flows' wallboard
alerts (service/callflows/alerts.py)."""

from __future__ import annotations

from aiohttp import web

from service.callflows import alerts as a
from service.callflows import handraise as h
from service.web.auth import allow, client_scope, current_user
from service.web.callflow_context import bridged_caller, operator_call, operator_of, pbx_and_ami
from service.web.context import now, pool
from service.web.http import conflict, json_body, not_found, ok


def _id(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise not_found() from None


@allow("admin", "supervisor", "operator")
async def hold(request: web.Request) -> web.Response:
    """The operator's 手上げ button: the caller to hold, the operator and the supervisors
    rung into a consult room.  An operator holds their own caller; a supervisor names the
    operator."""
    data = await json_body(request)
    user = current_user(request)
    operator = operator_of(request, data)
    async with pool(request).acquire() as conn:
        linkedid, operator_channel, client, pbx, ami = await operator_call(request, conn,
                                                                          operator)
        caller = await bridged_caller(ami, operator, operator_channel)
        try:
            handraise_id = await h.hold_by_api(ami, conn, h.HoldRequest(
                pbx_id=pbx.pbx_id, linkedid=linkedid, client=client, operator=operator,
                caller_channel=caller, via="api", requested_by=user.username),
                now(request))
        except h.HandraiseError as exc:
            raise conflict(str(exc)) from None
    return ok({"id": handraise_id}, status=201)


@allow("admin", "supervisor")
async def decide(request: web.Request) -> web.Response:
    """Take over (the caller to the supervisor) or hand back (the caller to the operator);
    listen (the supervisor muted in the room, or rung into it muted) or whisper (unmuted:
    the operator hears the supervisor, the caller stays on hold music)."""
    handraise_id = _id(request, "handraise_id")
    action = request.match_info["action"]
    if action not in h.ACTIONS + h.SUPERVISE:
        raise not_found()
    user = current_user(request)
    async with pool(request).acquire() as conn:
        pbx_id = await conn.fetchval("SELECT pbx_id FROM handraises WHERE id = $1",
                                     handraise_id)
        if pbx_id is None:
            raise not_found(f"no handraise {handraise_id}")
        pbx, ami = pbx_and_ami(request, pbx_id)
        try:
            if action in h.SUPERVISE:
                result = await h.supervise(ami, conn, pbx, handraise_id, action,
                                           user.username, user.extension, now(request))
            else:
                result = await h.decide(ami, conn, handraise_id, action, user.username,
                                        now(request))
        except h.HandraiseError as exc:
            raise conflict(str(exc)) from None
    return ok(result)


@allow("admin", "supervisor")
async def list_handraises(request: web.Request) -> web.Response:
    async with pool(request).acquire() as conn:
        items = await h.handraises(conn, open_only=request.query.get("open") == "1")
    return ok({"items": items})


@allow("admin", "supervisor", "client")
async def list_alerts(request: web.Request) -> web.Response:
    """Open call-flow alerts (safety net, 手上げ); a client user sees only its own."""
    async with pool(request).acquire() as conn:
        return ok({"items": await a.open_alerts(conn, client_scope(request))})


@allow("admin", "supervisor")
async def clear_alert(request: web.Request) -> web.Response:
    alert_id = _id(request, "alert_id")
    async with pool(request).acquire() as conn:
        done = await a.clear_alert(conn, alert_id, current_user(request).username,
                                   now(request))
    if not done:
        raise not_found(f"no open alert {alert_id}")
    return ok({"id": alert_id, "cleared": True})
