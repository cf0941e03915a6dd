"""HTTP: the wallboard, alerts, escalations, and listen / whisper / barge."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from service.ami.adapter import AmiError
from service.callbacks.escalation import REASONS, escalate
from service.status import status
from service.store import page_queries, web_queries
from service.web.auth import allow, client_scope, current_user
from service.web.context import ami_for, now, pool
from service.web.formatting import with_display
from service.web.http import bad_request, json_body, not_found, ok, page, paged, text_field

# ChanSpy options: q quiet (no beep), d lets the supervisor switch modes with 4/5/6 on the
# keypad, E ends the spy when the operator hangs up; w whisper, B barge.
SPY_OPTIONS = {"listen": "qdE", "whisper": "qwdE", "barge": "qBdE"}
_EXTENSION = re.compile(r"^[0-9A-Za-z_-]{1,20}$")
_ALERT_KEY = re.compile(r"^[a-z_]{1,30}:[\w.:+-]{1,160}$")


@allow("admin", "supervisor", "client")
async def wallboard(request: web.Request) -> web.Response:
    """Everything the wallboard shows, in one read: today per client (against each client's
    thresholds, by hour), queues, operators, live calls with their state, alerts."""
    scope = client_scope(request)
    moment = now(request)
    async with pool(request).acquire() as conn:
        settings = await page_queries.client_settings(conn, scope)
        board = {
            "now": moment,
            "clients": settings,
            "today": await page_queries.today(conn, scope, web_queries.day_start(moment),
                                              settings),
            "queues": await page_queries.queues(conn, scope),
            "operators": await page_queries.operators(conn) if scope is None else [],
            "live_calls": [with_display(c, "caller_e164")
                           for c in await page_queries.live_calls(conn, scope)],
            "alerts": await _alerts(request, conn, scope, settings) if scope is None else [],
        }
    return ok(board)


async def _alerts(request: web.Request, conn: asyncpg.Connection, scope: list[str] | None,
                  settings: dict[str, dict[str, object]]) -> list[dict[str, object]]:
    """Alerts newest first, the PBX links' among them; acknowledged ones marked."""
    items = await page_queries.alerts(conn, scope, settings)
    for alert in items:
        for part in ("call", "obligation", "delivery"):
            if isinstance(alert.get(part), dict):
                with_display(alert[part], "caller_e164")
    for a in status(request.app)["alerts"]:
        since = datetime.fromtimestamp(a["since"], UTC) if a.get("since") else None
        items.append({**a, "since": since,
                      "key": f"{a['kind']}:{a['pbx_id']}:{since.isoformat() if since else ''}"})
    acks = await page_queries.acked(conn, [str(a["key"]) for a in items])
    for alert in items:
        alert["acked"] = acks.get(str(alert["key"]))
    epoch = datetime.fromtimestamp(0, UTC)
    return sorted(items, key=lambda a: a["since"] or epoch, reverse=True)


@allow("admin", "supervisor")
async def alerts(request: web.Request) -> web.Response:
    async with pool(request).acquire() as conn:
        settings = await page_queries.client_settings(conn, None)
        return ok({"items": await _alerts(request, conn, None, settings)})


@allow("admin", "supervisor")
async def ack_alert(request: web.Request) -> web.Response:
    """A supervisor has seen an alert: it stays acknowledged (by whom, when) on every page."""
    data = await json_body(request)
    key = text_field(data, "key", max_length=200) or ""
    if not _ALERT_KEY.match(key):
        raise bad_request("key is an alert's key (from the wallboard)")
    async with pool(request).acquire() as conn:
        await page_queries.ack(conn, key, current_user(request).username)
    return ok({"key": key, "acked_by": current_user(request).username})


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
