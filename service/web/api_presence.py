"""HTTP: operator presence (log in / log out / pause with a reason), per-operator figures,
and the disposition code of an answered call (service/callflows/presence.py)."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from service.callflows import presence as pr
from service.web.auth import allow, current_user
from service.web.callflow_context import directory as clients_directory
from service.web.callflow_context import operator_of, pbx_and_ami
from service.web.context import now, pool
from service.web.http import bad_request, conflict, json_body, not_found, ok, text_field, when


@allow("admin", "supervisor", "operator")
async def change(request: web.Request) -> web.Response:
    """An operator changes their own state; a supervisor names the operator."""
    data = await json_body(request)
    operator = operator_of(request, data)
    action = text_field(data, "action", max_length=20)
    queues = data.get("queues")
    if queues is not None and (not isinstance(queues, list) or
                               not all(isinstance(q, str) for q in queues)):
        raise bad_request("queues must be a list of queue names")
    pbx, ami = pbx_and_ami(request)
    async with pool(request).acquire() as conn:
        try:
            state = await pr.change(ami, conn, pbx, operator=operator, action=str(action),
                                    reason=text_field(data, "reason", required=False,
                                                      max_length=40),
                                    queues=queues, via="api", at=now(request))
        except pr.PresenceError as exc:
            raise conflict(str(exc)) from None
    return ok(state)


@allow("admin", "supervisor", "operator")
async def states(request: web.Request) -> web.Response:
    """Every operator's state now; an operator sees only their own (the page's presence
    bar shows it after a reload)."""
    user = current_user(request)
    only = None
    if user.role == "operator":
        only = user.extension or ""  # no extension: no state of anyone's
    async with pool(request).acquire() as conn:
        return ok({"items": await pr.current_states(conn, only)})


@allow("admin", "supervisor")
async def report(request: web.Request) -> web.Response:
    """Seconds per operator in each state (paused:<reason> for pauses); default today."""
    end = when(request, "to") or now(request)
    start = when(request, "from") or end - timedelta(days=1)
    async with pool(request).acquire() as conn:
        return ok({"from": start, "to": end, "operators": await pr.report(conn, start, end)})


@allow("admin", "supervisor", "operator")
async def set_disposition(request: web.Request) -> web.Response:
    data = await json_body(request)
    async with pool(request).acquire() as conn:
        try:
            result = await pr.set_disposition(
                conn, await clients_directory(request, conn),
                pbx_id=str(text_field(data, "pbx", max_length=40)),
                linkedid=str(text_field(data, "linkedid", max_length=40)),
                code=str(text_field(data, "code", max_length=40)),
                set_by=current_user(request).username, at=now(request))
        except LookupError as exc:
            raise not_found(str(exc)) from None
        except pr.PresenceError as exc:
            raise bad_request(str(exc)) from None
    return ok(result)



@allow("admin", "supervisor", "operator")
async def list_dispositions(request: web.Request) -> web.Response:
    """The disposition codes of a client (its list in the clients file)."""
    code = request.query.get("client")
    if not code:
        raise bad_request("client is required")
    async with pool(request).acquire() as conn:
        known = await clients_directory(request, conn)
    client = known.clients.get(code) if known else None
    if client is None:
        raise not_found(f"no client {code!r}")
    return ok({"client": code, "codes": list(client.dispositions)})
