"""What the call flows' handlers share: the clients, whose call, the PBX's AMI."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.ami.adapter import AmiClient, AmiError
from service.clients.model import Directory
from service.clients.store import current_directory
from service.config import PbxConfig


async def directory(request: web.Request, conn: Any) -> Directory | None:
    """The clients as routing knows them (the database's newest when this app has no
    routing cache)."""
    from service.appkeys import ROUTING

    cache = request.app.get(ROUTING)
    if cache is not None and cache.directory is not None:
        known: Directory | None = cache.directory
        return known
    return await current_directory(conn)


def operator_of(request: web.Request, data: dict[str, Any]) -> str:
    """Whose call: an operator acts on their own; a supervisor or admin names the operator."""
    from service.web.auth import current_user
    from service.web.http import bad_request, text_field

    user = current_user(request)
    operator = user.extension if user.role == "operator" else \
        text_field(data, "operator", max_length=20)
    if not operator:
        raise bad_request("no operator: the user has no extension")
    return operator


def pbx_and_ami(request: web.Request, pbx_id: str | None = None
                ) -> tuple[PbxConfig, AmiClient]:
    """The PBX (of the call, or the first) and this instance's AMI session to it; 503 when
    this instance holds none."""
    from service.web.context import ami_for

    pbx, ami = ami_for(request, pbx_id)
    if ami is None:
        raise web.HTTPServiceUnavailable(text='{"error": "no AMI session here"}',
                                         content_type="application/json")
    return pbx, ami


async def bridged_caller(ami: AmiClient, operator: str, operator_channel: str) -> str:
    """The caller's channel bridged with the operator's (AMI Getvar BRIDGEPEER); 409 when
    the operator is bridged to nobody or the PBX does not answer."""
    from service.web.http import conflict

    try:
        peer = await ami.send_action({"Action": "Getvar", "Channel": operator_channel,
                                      "Variable": "BRIDGEPEER"})
    except AmiError as exc:
        raise conflict(f"the PBX did not answer: {exc}") from None
    caller = peer.get("Value") if hasattr(peer, "get") else None
    if not caller:
        raise conflict(f"operator {operator} is not bridged to a caller")
    return str(caller)


async def operator_call(request: web.Request, conn: Any, operator: str
                        ) -> tuple[str, str, str | None, PbxConfig, AmiClient]:
    """(linkedid, the operator's channel, client, PBX, AMI) of the call the operator is on:
    404 when on none, 503 when this instance holds no AMI session to the call's PBX."""
    from service.store import web_queries
    from service.web.http import not_found

    call = await web_queries.live_operator_channel(conn, operator)
    if call is None:
        raise not_found(f"operator {operator} is on no call")
    linkedid, operator_channel, client, call_pbx = call
    pbx, ami = pbx_and_ami(request, call_pbx)  # the call's own PBX
    return linkedid, operator_channel, client, pbx, ami
