"""HTTP: calls (the ledger), clients, messages, and the operator's screen pop."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from service.ledger.model import OUTCOMES
from service.localtime import local_iso
from service.messages.service import MessageError, NewMessage, take_message
from service.phone import to_e164
from service.store import page_queries, web_queries
from service.store.reports_sql import audit
from service.web.auth import STAFF, allow, client_scope, current_user
from service.web.context import now, pool
from service.web.formatting import with_display
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
    whole_id,
)
from service.web.pop_callflows import pop_callflows


def _caller_filter(request: web.Request) -> str | None:
    raw = request.query.get("caller")
    if not raw:
        return None
    e164 = to_e164(raw)
    if e164 is None:
        raise bad_request("caller is not a phone number", value=raw)
    return e164


@allow(*STAFF, "client")
async def list_calls(request: web.Request) -> web.Response:
    p = page(request)
    async with pool(request).acquire() as conn:
        items = await web_queries.calls(
            conn, client_scope(request), client=request.query.get("client") or None,
            since=when(request, "from"), until=when(request, "to"),
            outcome=choice(request, "outcome", OUTCOMES), caller=_caller_filter(request),
            direction=choice(request, "direction", ("inbound", "outbound")),
            missed_only=request.query.get("missed") == "1", limit=p.limit,
            before_id=p.before_id)
    for item in items:
        with_display(item, "caller_e164", "callee_e164")
    return ok(paged(items, p.limit))


def _call_id(request: web.Request) -> int:
    call_id = whole_id(request.match_info["call_id"])
    if call_id is None:
        raise not_found()
    return call_id


def spreadsheet_safe(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (leading = + - @, or a tab or CR
    before one) gets a leading apostrophe: caller names are caller-controlled.

    >>> [spreadsheet_safe(v) for v in ("=1+1", "\t=cmd", "\r@x", "", "田中", 3)]
    ["'=1+1", "'\t=cmd", "'\r@x", '', '田中', 3]
    """
    if isinstance(value, str) and value[:1] and value[0] in "=+-@\t\r":
        return "'" + value
    return value


@allow(*STAFF, "client")
async def get_call(request: web.Request) -> web.Response:
    async with pool(request).acquire() as conn:
        found = await web_queries.call(conn, client_scope(request), _call_id(request))
    if found is None:
        raise not_found("no such call")
    return ok(found)


@allow("admin", "supervisor", "operator")
async def screen_pop(request: web.Request) -> web.Response:
    """What an operator's page shows when a call rings them (``?pbx=&linkedid=``, as in the
    stream's ring event)."""
    pbx, linkedid = request.query.get("pbx"), request.query.get("linkedid")
    if not pbx or not linkedid:
        raise bad_request("pbx and linkedid are required")
    async with pool(request).acquire() as conn:
        card = await _pop(conn, pbx, linkedid, current_user(request).extension, now(request))
        if card is not None:
            card["callflows"] = await pop_callflows(request, conn, pbx, linkedid,
                                                    card["call"]["client"])
    if card is None:
        raise not_found("no such call")
    return ok(card)


@allow("admin", "supervisor", "operator")
async def screen_current(request: web.Request) -> web.Response:
    """The pop of the call ringing or answered at my phone now (or just ended): what the
    operator page restores after a reload.  ``{"call": null}`` when there is none."""
    extension = current_user(request).extension
    async with pool(request).acquire() as conn:
        found = await page_queries.current_ring(conn, extension) if extension else None
        card = await _pop(conn, *found, extension, now(request)) if found else None
        if card is not None and found:
            card["callflows"] = await pop_callflows(request, conn, found[0], found[1],
                                                    card["call"]["client"])
    return ok(card or {"call": None})


async def _pop(conn: asyncpg.Connection, pbx: str, linkedid: str, extension: str | None,
               moment: datetime) -> dict[str, Any] | None:
    """The screen pop with the operator's view of the call (ringing at my phone, talking with
    me, taken by another operator, ended, and since when), numbers as people read them, and
    for an escalated repeat caller what the short whisper no longer says."""
    card = await web_queries.screen_pop(conn, None, pbx, linkedid)
    if card is None:
        return None
    call = card["call"]
    rings = await page_queries.my_rings(conn, pbx, linkedid, extension) if extension else []
    card["state"], card["since"] = page_queries.pop_state(call, rings, extension)
    card["now"] = moment
    with_display(call, "caller_e164")
    for row in card["history"]:
        with_display(row, "caller_e164", "callee_e164")
    card["repeat"] = None
    if call["escalated"] and call["client"] and call["caller_e164"]:
        settings = (await page_queries.client_settings(conn, [call["client"]])).get(
            call["client"], {})
        context = await page_queries.repeat_context(
            conn, call["client"], call["caller_e164"], call["id"],
            float(settings.get("repeat_window_s", 72 * 3600)))
        reason = await conn.fetchval(
            "SELECT reason FROM escalations WHERE pbx_id = $1 AND linkedid = $2 "
            "ORDER BY id DESC LIMIT 1", pbx, linkedid) or call["escalation_reason"]
        card["escalation_kind"] = page_queries.escalation_kind(reason, context["calls"])
        card["escalation_reason"] = reason
        if card["escalation_kind"] == "repeat_caller":
            card["repeat"] = context
    return card


TIMES = ("started_at", "answered_at", "ended_at")


@allow(*STAFF, "client")
async def export_calls(request: web.Request) -> web.StreamResponse:
    """CSV of the caller's calls (a client's whole history when it moves provider)."""
    columns = ("id", "client", "direction", "started_at", "answered_at", "ended_at",
               "caller_e164", "caller_name", "did", "outcome", "wait_s", "talk_s",
               "answered_by", "escalated", "escalation_reason", "voicemail_left",
               "fallback_routed", "callee_e164", "dial_result")
    # Every parameter is read before the 200 is sent: a bad one is a 400, not a cut stream.
    since, until = when(request, "from"), when(request, "to")
    client = request.query.get("client") or None
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="calls.csv"'})
    await response.prepare(request)
    await response.write("\ufeff".encode())  # so spreadsheet programs read it as UTF-8
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    before: int | None = None
    async with pool(request).acquire() as conn:
        # Who exported which client's calls: the audit admins read (docs/reports.md).
        scope = client_scope(request)
        zones = {r["code"]: r["timezone"] for r in
                 await conn.fetch("SELECT code, timezone FROM clients")}
        await audit(conn, current_user(request).username, "calls_export",
                    scope[0] if scope else request.query.get("client") or None,
                    f"from={request.query.get('from') or '-'} to={request.query.get('to') or '-'}")
        while True:
            rows = await web_queries.calls(
                conn, client_scope(request), client=client, since=since, until=until,
                outcome=None,
                caller=None, direction=None, missed_only=False, limit=1000, before_id=before)
            for row in rows[:1000]:
                # Times in the call's client's zone, with the offset (people open this in a
                # spreadsheet; UTC there reads as the wrong hour).
                zone = zones.get(row["client"])
                writer.writerow([spreadsheet_safe(local_iso(row[c], zone) if c in TIMES
                                                  else row[c]) for c in columns])
            await response.write(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
            if len(rows) <= 1000:
                break
            before = rows[999]["id"]
    await response.write_eof()
    return response


@allow(*STAFF, "client")
async def list_clients(request: web.Request) -> web.Response:
    async with pool(request).acquire() as conn:
        return ok({"items": await web_queries.clients_list(conn, client_scope(request))})


@allow(*STAFF, "client")
async def get_client(request: web.Request) -> web.Response:
    async with pool(request).acquire() as conn:
        card = await web_queries.client_card(conn, client_scope(request),
                                             request.match_info["code"])
    if card is None:
        raise not_found("no such client")
    return ok(card)


@allow(*STAFF, "client")
async def list_messages(request: web.Request) -> web.Response:
    p = page(request)
    async with pool(request).acquire() as conn:
        items = await web_queries.messages(conn, client_scope(request),
                                           client=request.query.get("client") or None,
                                           limit=p.limit, before_id=p.before_id)
    return ok(paged(items, p.limit))


@allow("admin", "supervisor", "operator")
async def create_message(request: web.Request) -> web.Response:
    data = await json_body(request)
    message = NewMessage(
        client=text_field(data, "client", max_length=20) or "",
        disposition=text_field(data, "disposition", max_length=40) or "",
        body=text_field(data, "body", max_length=10_000) or "",
        caller_number=text_field(data, "caller_number", required=False, max_length=40),
        caller_name=text_field(data, "caller_name", required=False, max_length=200),
        pbx_id=text_field(data, "pbx", required=False, max_length=60),
        linkedid=text_field(data, "linkedid", required=False, max_length=60),
        taken_by=current_user(request).extension or current_user(request).username)
    try:
        async with pool(request).acquire() as conn:
            taken = await take_message(conn, message)
    except MessageError as exc:
        raise bad_request(str(exc)) from exc
    return ok(taken, status=201)
