"""HTTP: messages to callees (e-mail or fax) under the outbound policy
(service/compliance/callee_messages.py): held outside the callee's window, refused for
do-not-call, every check recorded."""

from __future__ import annotations

from aiohttp import web

from service.compliance import callee_messages as cm
from service.web.auth import allow, client_scope, current_user
from service.web.context import config, now, pool
from service.web.http import (
    bad_request,
    choice,
    conflict,
    json_body,
    not_found,
    ok,
    page,
    paged,
    text_field,
    whole_id,
)


@allow("admin", "supervisor", "operator")
async def send_message(request: web.Request) -> web.Response:
    """Write a message to a callee: 202 with its state (pending: leaving now; held: until the
    window opens in the callee's time), or 409 when the policy refuses it for good."""
    data = await json_body(request)
    user = current_user(request)
    client = text_field(data, "client", required=False, max_length=20)
    callee = text_field(data, "callee", required=False, max_length=40)
    obligation = data.get("obligation")
    obligation_id = whole_id(str(obligation)) if obligation is not None else None
    if obligation is not None and obligation_id is None:
        raise bad_request("obligation must be a call back's id")
    async with pool(request).acquire() as conn:
        if obligation_id is not None:
            row = await conn.fetchrow(
                "SELECT client, caller_e164 FROM callback_obligations WHERE id = $1 "
                "AND ($2::text[] IS NULL OR client = ANY ($2))", obligation_id,
                client_scope(request))
            if row is None:
                raise not_found("no such call back")
            client, callee = row["client"], callee or row["caller_e164"]
        if not client or not callee:
            raise bad_request("give client and callee, or the call back (obligation)")
        message = cm.NewCalleeMessage(
            client=client, callee=callee,
            channel=str(text_field(data, "channel", max_length=10)),
            subject=str(text_field(data, "subject", max_length=cm.MAX_SUBJECT)),
            body=str(text_field(data, "body", max_length=cm.MAX_BODY)),
            requested_by=user.username,
            email=text_field(data, "email", required=False, max_length=320),
            obligation_id=obligation_id)
        try:
            taken = await cm.submit(conn, message, now=now(request),
                                    fax_gateway=config(request).fax_gateway)
        except cm.CalleeMessageError as exc:
            raise bad_request(str(exc)) from exc
    if taken["state"] == "refused":
        return ok({**taken, "error": f"refused: {taken['last_reason']}"}, status=409)
    return ok(taken, status=202)


@allow("admin", "supervisor", "operator")
async def list_messages(request: web.Request) -> web.Response:
    """Messages to callees, newest first, with their state and the last check's reason."""
    state = choice(request, "state", cm.STATES)
    client = request.query.get("client") or None
    paging = page(request)
    async with pool(request).acquire() as conn:
        rows = await conn.fetch(
            """SELECT * FROM callee_messages
               WHERE ($1::text IS NULL OR client = $1) AND ($2::text IS NULL OR state = $2)
                 AND ($3::bigint IS NULL OR id < $3)
               ORDER BY id DESC LIMIT $4""",
            client, state, paging.before_id, paging.limit + 1)
    return ok(paged([cm.view(r) for r in rows], paging.limit))


@allow("admin", "supervisor", "operator")
async def cancel_message(request: web.Request) -> web.Response:
    message_id = whole_id(request.match_info["message_id"])
    if message_id is None:
        raise not_found()
    async with pool(request).acquire() as conn:
        if not await cm.cancel(conn, message_id, client_scope(request), now(request)):
            raise conflict("only a message that has not left yet can be cancelled")
    return ok({"id": message_id, "state": "cancelled"})
