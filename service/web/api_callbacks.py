"""HTTP: call-back obligations, marking them done, and click-to-call from the worklist."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from service.callbacks.dialer import CallbackResult, place_callback
from service.compliance.policy import Override
from service.compliance.worklist import annotate
from service.store import callbacks_sql, page_queries, web_queries
from service.web.auth import STAFF, allow, client_scope, current_user
from service.web.calling_window import window_state
from service.web.context import ami_for, config, now, pool
from service.web.formatting import with_display
from service.web.http import (
    bad_request,
    conflict,
    json_body,
    not_found,
    ok,
    text_field,
    whole_id,
)

STATES = ("open", "fulfilled", "expired", "cancelled", "cannot_call_back")


def _obligation_id(request: web.Request) -> int:
    obligation_id = whole_id(request.match_info["obligation_id"])
    if obligation_id is None:
        raise not_found()
    return obligation_id


async def _visible(request: web.Request, obligation_id: int) -> dict[str, object]:
    async with pool(request).acquire() as conn:
        rows = await conn.fetch("SELECT * FROM callback_obligations WHERE id = $1 "
                                "AND ($2::text[] IS NULL OR client = ANY ($2))",
                                obligation_id, client_scope(request))
    if not rows:
        raise not_found("no such call back")
    return dict(rows[0])


@allow(*STAFF, "client")
async def list_obligations(request: web.Request) -> web.Response:
    states = [s for s in request.query.get("state", "").split(",") if s]
    if any(s not in STATES for s in states):
        raise bad_request(f"state must be among {', '.join(STATES)}")
    try:
        limit = min(500, max(1, int(request.query.get("limit", 200))))
    except ValueError as exc:
        raise bad_request("limit is a whole number") from exc
    scope = client_scope(request)
    wanted = request.query.get("client")
    if wanted:
        scope = [wanted] if scope is None or wanted in scope else []
    async with pool(request).acquire() as conn:
        items = await callbacks_sql.obligations(conn, clients=scope, states=states or None,
                                                limit=limit)
        windows = {r["code"]: r for r in await conn.fetch(
            "SELECT code, timezone, calling_hours_start, calling_hours_end FROM clients "
            "WHERE code = ANY ($1)", list({str(o["client"]) for o in items}))}
        names = await page_queries.caller_names(
            conn, [(str(o["client"]), str(o["caller_e164"])) for o in items
                   if o["caller_e164"]])
        # Shown before the click: the whole outbound policy, as the dial would apply it
        # (hours in the callee's time, contact limits, do-not-call; docs/compliance.md).
        await annotate(conn, items, now(request))
        # Call backs scheduled for a time and not placed yet, shown (and cancellable) in
        # their row.
        scheduled = await conn.fetch(
            "SELECT id, obligation_id, run_at, operator, requested_by, tries, last_reason "
            "FROM scheduled_callbacks WHERE state = 'pending' AND obligation_id = ANY ($1) "
            "ORDER BY run_at, id", [o["id"] for o in items])
    moment = now(request)
    pending: dict[object, list[dict[str, object]]] = {}
    for row in scheduled:
        pending.setdefault(row["obligation_id"], []).append(dict(row))
    for item in items:
        # What the worklist shows before any click: who, how many missed calls, and
        # whether 発信 is allowed now (and if not, when it opens).
        with_display(item, "caller_e164")
        item["caller_name"] = names.get((str(item["client"]), str(item["caller_e164"])))
        client = windows.get(str(item["client"]))
        # The client's zone: the page shows every time in it, and reads the time a person
        # types for a scheduled call back in it.
        item["timezone"] = client["timezone"] if client is not None else None
        item["scheduled"] = pending.get(item["id"], [])
        item["calling"] = None if client is None or item["state"] != "open" else \
            window_state(item["caller_e164"], moment, (client["calling_hours_start"],
                                                       client["calling_hours_end"]),
                         client["timezone"])
    return ok({"items": items, "now": moment})


@allow("admin", "supervisor", "client")
async def mark_done(request: web.Request) -> web.Response:
    """The client (or a supervisor for it) says the call back was made: *reported*."""
    obligation_id = _obligation_id(request)
    await _visible(request, obligation_id)
    data = await json_body(request) if request.can_read_body else {}
    note = text_field(data, "note", required=False, max_length=1000)
    user = current_user(request)
    async with pool(request).acquire() as conn:
        changed = await callbacks_sql.report_fulfilled(conn, obligation_id, user.clients,
                                                       user.username, note)
    if not changed:
        raise conflict("this call back is not open")
    return ok({"id": obligation_id, "state": "fulfilled", "fulfilment": "reported"})


@allow("admin", "supervisor")
async def cancel(request: web.Request) -> web.Response:
    obligation_id = _obligation_id(request)
    await _visible(request, obligation_id)
    data = await json_body(request)
    note = text_field(data, "note", max_length=1000) or ""
    async with pool(request).acquire() as conn:
        changed = await callbacks_sql.cancel(conn, obligation_id, None,
                                             current_user(request).username, note)
    if not changed:
        raise conflict("this call back is not open")
    return ok({"id": obligation_id, "state": "cancelled"})


@allow("admin", "supervisor", "operator")
async def call_back(request: web.Request) -> web.Response:
    """Click-to-call: ring the user's phone, then dial the caller, if the hours allow."""
    obligation = await _visible(request, _obligation_id(request))
    if obligation["state"] != "open" or not obligation["caller_e164"]:
        raise conflict("only an open call back with a number can be dialled")
    user = current_user(request)
    data = await json_body(request) if request.can_read_body else {}
    operator = text_field(data, "operator", required=False, max_length=20) or user.extension
    if not operator:
        raise bad_request("no phone: give operator, or set the user's extension")
    if user.role == "operator" and operator != user.extension:
        # An operator rings their own phone; ringing another's would put a stranger's
        # call on a colleague's line (supervisors may place a call for an operator).
        raise web.HTTPForbidden(text='{"error": "an operator calls from their own extension"}',
                                content_type="application/json")
    wanted_pbx = text_field(data, "pbx", required=False, max_length=64)
    moment = now(request)
    # A supervisor's override of the hours or limits, honoured where the client's rules
    # allow it, always with a reason; recorded with who and why.
    override_reason = text_field(data, "override_reason", required=False, max_length=500)
    override = None
    if override_reason:
        if user.role not in ("admin", "supervisor"):
            raise bad_request("only a supervisor may override")
        override = Override(user.username, override_reason)
    async with pool(request).acquire() as conn:
        # The PBX the caller called the client on (its trunk and the operator's phone).
        pbx_id = wanted_pbx or await web_queries.callback_pbx(
            conn, str(obligation["client"]), str(obligation["caller_e164"]),
            [p.pbx_id for p in config(request).pbxs])
        pbx, ami = ami_for(request, pbx_id)
        result = await place_callback(
            ami, conn, pbx, client=str(obligation["client"]),
            number=str(obligation["caller_e164"]), operator=operator,
            requested_by=user.username, now=moment,
            obligation_id=int(str(obligation["id"])), override=override)
        window = await conn.fetchrow(
            "SELECT timezone, calling_hours_start, calling_hours_end FROM clients "
            "WHERE code = $1", obligation["client"])
    body: dict[str, object] = {"placed": result.placed, "reason": result.reason,
                               "request": result.request_id, "code": refusal_code(result)}
    if window is not None and body["code"] == "outside_calling_hours":
        body["calling"] = window_state(str(obligation["caller_e164"]), moment,
                                       (window["calling_hours_start"],
                                        window["calling_hours_end"]), window["timezone"])
    return ok(body, status=202 if result.placed else 409)


def refusal_code(result: CallbackResult) -> str:
    """A code for the dialler's answer that the pages translate (its reason is English).

    >>> refusal_code(CallbackResult(False, "refused: 03:22 in Asia/Tokyo is outside ..."))
    'outside_calling_hours'
    >>> refusal_code(CallbackResult(False, "refused: the number is on ...", 1, "do_not_call"))
    'do_not_call'
    >>> refusal_code(CallbackResult(True, "dialling")), refusal_code(
    ...     CallbackResult(False, "no AMI session to the PBX"))
    ('dialling', 'no_pbx_link')
    """
    if result.placed:
        return "dialling"
    # The outbound policy's rule (docs/compliance.md): hours, limits, do-not-call.
    if result.rule in ("do_not_call", "max_attempts", "min_gap"):
        return {"do_not_call": "do_not_call"}.get(result.rule, "contact_limit")
    if result.reason.startswith("refused:"):
        return "outside_calling_hours"
    if result.reason == "no AMI session to the PBX":
        return "no_pbx_link"
    return "failed"


@allow("admin", "supervisor", "operator")
async def schedule_call_back(request: web.Request) -> web.Response:
    """Schedule the call back for a time: the service places it then, through the same
    policy as a click (moved to when the callee may be called if it is refused for the hours
    or the limits)."""
    from datetime import datetime

    from service.compliance.scheduler import schedule

    obligation = await _visible(request, _obligation_id(request))
    if obligation["state"] != "open" or not obligation["caller_e164"]:
        raise conflict("only an open call back with a number can be scheduled")
    user = current_user(request)
    data = await json_body(request)
    operator = text_field(data, "operator", required=False, max_length=20) or user.extension
    if not operator:
        raise bad_request("no phone: give operator, or set the user's extension")
    text = text_field(data, "at", max_length=40) or ""
    try:
        run_at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise bad_request("at must be an ISO time with its offset, e.g. "
                          "2026-12-02T09:30:00+09:00") from exc
    if run_at.tzinfo is None:
        raise bad_request("at needs its offset (+09:00), so that nobody guesses the zone")
    moment = now(request)
    if run_at < moment - SCHEDULE_SLACK:
        raise bad_request("at is in the past")
    async with pool(request).acquire() as conn:
        # The outbound policy as it would judge the call at that time (hours in the
        # callee's time, do-not-call, the limits with today's history): a time it would
        # refuse is refused now, with the reason and when the callee may be called.
        probe: dict[str, Any] = {"state": "open", "client": obligation["client"],
                                 "caller_e164": obligation["caller_e164"]}
        await annotate(conn, [probe], max(run_at, moment))
        if probe["contact_allowed"] is False:
            rule = str(probe["refusal_rule"])
            code = {"do_not_call": "do_not_call", "calling_hours": "outside_calling_hours"
                    }.get(rule, "contact_limit")
            opens = probe["opens_at"]
            return ok({"scheduled": False, "code": code, "rule": rule,
                       "reason": probe["refusal_reason"],
                       "opens_at": opens.isoformat() if opens else None}, status=409)
        scheduled = await schedule(conn, obligation_id=int(str(obligation["id"])),
                                   client=str(obligation["client"]),
                                   callee_e164=str(obligation["caller_e164"]),
                                   operator=operator, requested_by=user.username,
                                   run_at=run_at)
    return ok({"id": scheduled, "run_at": run_at.isoformat(), "scheduled": True}, status=201)


# A time typed "now" reaches the server a little later (and the browser's clock may be a
# little behind): not "in the past" by a few seconds.
SCHEDULE_SLACK = timedelta(minutes=2)


@allow("admin", "supervisor", "operator")
async def cancel_scheduled(request: web.Request) -> web.Response:
    """Cancel a call back scheduled for a time, before the service places it.  An operator
    cancels what they scheduled or what rings their phone; supervisors any."""
    scheduled_id = whole_id(request.match_info["scheduled_id"])
    if scheduled_id is None:
        raise not_found()
    user = current_user(request)
    async with pool(request).acquire() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM scheduled_callbacks WHERE id = $1 "
            "AND ($2::text[] IS NULL OR client = ANY ($2))", scheduled_id, client_scope(request))
        if row is None:
            raise not_found("no such scheduled call back")
        if user.role == "operator" and user.username != row["requested_by"] \
                and user.extension != row["operator"]:
            raise web.HTTPForbidden(
                text='{"error": "an operator cancels only their own scheduled call backs"}',
                content_type="application/json")
        # Only while pending: the scheduler claims rows FOR UPDATE, so a row being placed
        # right now waits here and is then no longer pending.
        changed = await conn.fetchval(
            "UPDATE scheduled_callbacks SET state = 'cancelled', updated_at = now(), "
            "last_reason = $2 WHERE id = $1 AND state = 'pending' RETURNING id",
            scheduled_id, f"cancelled by {user.username}")
    if changed is None:
        raise conflict("this scheduled call back is no longer pending")
    return ok({"id": scheduled_id, "state": "cancelled"})
