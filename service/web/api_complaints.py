"""HTTP: complaint records (service/callflows/complaints.py).  Supervisors see them all; a
client user only the count of its own."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from service.callflows import complaints as c
from service.web.auth import allow, client_scope, current_user
from service.web.context import now, pool
from service.web.http import (
    bad_request,
    choice,
    json_body,
    not_found,
    ok,
    page,
    paged,
    text_field,
    when,
)


@allow("admin", "supervisor", "operator")
async def create_complaint(request: web.Request) -> web.Response:
    data = await json_body(request)
    user = current_user(request)
    new = c.NewComplaint(
        client=str(text_field(data, "client", max_length=20)),
        category=str(text_field(data, "category", max_length=40)),
        body=str(text_field(data, "body", max_length=c.MAX_TEXT)),
        created_by=user.username,
        named_operator=text_field(data, "named_operator", required=False, max_length=40),
        pbx_id=text_field(data, "pbx", required=False, max_length=40),
        linkedid=text_field(data, "linkedid", required=False, max_length=40),
        taken_over_by=text_field(data, "taken_over_by", required=False, max_length=40))
    async with pool(request).acquire() as conn:
        try:
            complaint_id = await c.create(conn, new, now(request))
        except c.ComplaintError as exc:
            raise bad_request(str(exc)) from None
    return ok({"id": complaint_id}, status=201)


@allow("admin", "supervisor")
async def list_complaints(request: web.Request) -> web.Response:
    p = page(request)
    async with pool(request).acquire() as conn:
        items = await c.complaints(conn, client=request.query.get("client"),
                                   status=choice(request, "status", c.STATUSES),
                                   limit=p.limit, before_id=p.before_id)
    return ok(paged(items, p.limit))


@allow("admin", "supervisor")
async def update_complaint(request: web.Request) -> web.Response:
    data = await json_body(request)
    try:
        complaint_id = int(request.match_info["complaint_id"])
    except ValueError:
        raise not_found() from None
    async with pool(request).acquire() as conn:
        try:
            row = await c.update(
                conn, complaint_id, by=current_user(request).username, at=now(request),
                status=text_field(data, "status", required=False, max_length=20),
                resolution=text_field(data, "resolution", required=False,
                                      max_length=c.MAX_TEXT),
                taken_over_by=text_field(data, "taken_over_by", required=False,
                                         max_length=40))
        except LookupError:
            raise not_found(f"no complaint {complaint_id}") from None
        except c.ComplaintError as exc:
            raise bad_request(str(exc)) from None
    return ok(row)


@allow("admin", "supervisor", "client")
async def complaint_count(request: web.Request) -> web.Response:
    """How many complaints a client had in a period: all a client user may know of them."""
    scope = client_scope(request)
    client = request.query.get("client") or (scope[0] if scope else None)
    if not client:
        raise bad_request("client is required")
    if scope is not None and client not in scope:
        raise not_found()
    start = when(request, "from") or datetime(1970, 1, 1, tzinfo=UTC)
    end = when(request, "to") or now(request)
    async with pool(request).acquire() as conn:
        count = await c.complaint_count(conn, client, start, end)
    return ok({"client": client, "from": start, "to": end, "count": count})
