"""HTTP: the wallboard, alerts, escalations, and listen / whisper / barge."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiohttp import web

from service.ami.adapter import AmiError
from service.callbacks.escalation import REASONS, escalate
from service.store import web_queries
from service.web.auth import allow, client_scope, current_user
from service.web.context import ami_for, pool
from service.web.http import bad_request, json_body, not_found, ok, page, paged, text_field

# ChanSpy options: q quiet (no beep), d lets the supervisor switch modes with 4/5/6 on the
# keypad, E ends the spy when the operator hangs up; w whisper, B barge.
SPY_OPTIONS = {"listen": "qdE", "whisper": "qwdE", "barge": "qBdE"}
_EXTENSION = re.compile(r"^[0-9A-Za-z_-]{1,20}$")
SERVICE_LEVEL_S = 20.0
LONG_WAIT_S = 60.0


@allow("admin", "supervisor", "client")
async def wallboard(request: web.Request) -> web.Response:
    async with pool(request).acquire() as conn:
        board = await web_queries.wallboard(
            conn, client_scope(request), web_queries.day_start(datetime.now(UTC)),
            SERVICE_LEVEL_S, LONG_WAIT_S)
    return ok(board)


@allow("admin", "supervisor")
async def alerts(request: web.Request) -> web.Response:
    async with pool(request).acquire() as conn:
        return ok({"items": await web_queries.alerts(conn, None, LONG_WAIT_S)})


@allow("admin", "supervisor")
async def list_escalations(request: web.Request) -> web.Response:
    p = page(request)
    async with pool(request).acquire() as conn:
        items = await web_queries.escalations(conn, client_scope(request), limit=p.limit,
                                              before_id=p.before_id)
    return ok(paged(items, p.limit))


@allow("admin", "supervisor", "operator")
async def create_escalation(request: web.Request) -> web.Response:
    """手上げ from the screen: an operator escalates their own caller; a supervisor may do
    it for an operator."""
    data = await json_body(request)
    reason = text_field(data, "reason", max_length=40)
    if reason not in REASONS:
        raise bad_request(f"reason must be one of {', '.join(REASONS)}")
    user = current_user(request)
    operator = user.extension if user.role == "operator" else \
        text_field(data, "operator", max_length=20)
    if not operator:
        raise bad_request("no operator: the user has no extension")
    wanted_pbx = text_field(data, "pbx", required=False, max_length=64)
    async with pool(request).acquire() as conn:
        call = await web_queries.live_operator_channel(conn, operator, wanted_pbx)
        if call is None:
            raise not_found(f"operator {operator} is on no call")
        pbx, ami = ami_for(request, call[3])  # the call's own PBX
        if ami is None:
            raise web.HTTPServiceUnavailable(text='{"error": "no AMI session here"}',
                                             content_type="application/json")
        result = await escalate(ami, conn, pbx_id=pbx.pbx_id, call=call[:3],
                                reason=str(reason),
                                requested_by=user.username,
                                context=pbx.escalation_context)
    return ok({"moved": result.moved, "detail": result.detail, "id": result.escalation_id},
              status=201 if result.moved else 502)


@allow("admin", "supervisor")
async def spy(request: web.Request) -> web.Response:
    """Ring the supervisor's phone into ChanSpy on the operator's channel; audited."""
    data = await json_body(request)
    mode = text_field(data, "mode", max_length=10)
    if mode not in SPY_OPTIONS:
        raise bad_request(f"mode must be one of {', '.join(SPY_OPTIONS)}")
    operator = text_field(data, "operator", max_length=20) or ""
    if not _EXTENSION.match(operator):
        raise bad_request("operator is an extension")
    user = current_user(request)
    phone = text_field(data, "phone", required=False, max_length=20) or user.extension
    if not phone or not _EXTENSION.match(phone):
        raise bad_request("no phone for the supervisor: set the user's extension")
    wanted_pbx = text_field(data, "pbx", required=False, max_length=64)
    async with pool(request).acquire() as conn:
        call = await web_queries.live_operator_channel(conn, operator, wanted_pbx)
        if call is None:
            raise not_found(f"operator {operator} is on no call")
        linkedid, channel, _client, call_pbx = call
        pbx, ami = ami_for(request, call_pbx)  # ChanSpy must run on the call's own PBX
        result, detail = "failed", "no AMI session on this instance"
        if ami is not None:
            try:
                answer = await ami.send_action({
                    "Action": "Originate", "Channel": pbx.phone_channel.format(ext=phone),
                    "Application": "ChanSpy", "Data": f"{channel},{SPY_OPTIONS[mode]}",
                    "CallerID": f'"{mode} {operator}" <{operator}>', "Timeout": "30000",
                    "Async": "true"})
                result = "originated" if getattr(answer, "response", "") == "Success" \
                    else "failed"
                detail = getattr(answer, "message", "") or result
            except AmiError as exc:
                detail = str(exc)
        audit_id = await web_queries.record_spy_use(
            conn, supervisor=user.username, phone=phone, operator=operator, mode=str(mode),
            result=result, channel=channel, linkedid=linkedid, detail=detail)
    return ok({"result": result, "detail": detail, "audit": audit_id},
              status=202 if result == "originated" else 502)


@allow("admin", "supervisor")
async def spy_audit(request: web.Request) -> web.Response:
    async with pool(request).acquire() as conn:
        rows = await conn.fetch("SELECT * FROM spy_audit ORDER BY id DESC LIMIT 200")
    return ok({"items": [dict(r) for r in rows]})
