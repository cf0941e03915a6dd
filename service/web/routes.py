"""Every HTTP endpoint in one table: method, path, handler, summary, parameters.

The router and the OpenAPI document (``GET /api/openapi.json``) are both built from it, so
the document cannot drift from what is served.  Who may call each endpoint is declared on its
handler (``@allow``) and shown in the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

import service.web.api_reports as api_reports
from service.ledger.model import OUTCOMES
from service.status import api_status
from service.store import web_sql
from service.web import (
    api_admin,
    api_callbacks,
    api_callee_messages,
    api_calls,
    api_reconcile,
    api_session,
    api_supervisor,
    stream,
)
from service.web.api_callflows import CALLFLOW_ENDPOINTS
from service.web.auth import COOKIE, Handler, public
from service.web.context import pool

STATIC = Path(__file__).with_name("static")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    query: tuple[tuple[str, str], ...] = ()       # (name, description)
    body: dict[str, str] = field(default_factory=dict)  # field -> description


PAGE = (("limit", "1..500, default 50"), ("before", "id cursor from next_before"))
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/api/login", api_session.login, "Log in: session cookie + CSRF token",
             body={"username": "user name", "password": "password"}),
    Endpoint("POST", "/api/logout", api_session.logout, "End the session"),
    Endpoint("GET", "/api/me", api_session.me, "Who am I (and my CSRF token)"),
    Endpoint("GET", "/api/calls", api_calls.list_calls, "Calls, newest first", query=(
        ("client", "client code"), ("from", "ISO time, inclusive"), ("to", "ISO time"),
        ("outcome", "one of " + ", ".join(OUTCOMES)), ("caller", "a number, any format"),
        ("direction", "inbound | outbound"), ("missed", "1: missed calls only"), *PAGE)),
    Endpoint("GET", "/api/calls.csv", api_calls.export_calls,
             "All calls in scope as CSV (UTF-8 with BOM)",
             query=(("client", "client code"), ("from", "ISO time"), ("to", "ISO time"))),
    Endpoint("GET", "/api/calls/{call_id}", api_calls.get_call,
             "One call with its queue stints and ring attempts"),
    Endpoint("GET", "/api/screen", api_calls.screen_pop,
             "Operator screen pop: client card, caller history, open call backs",
             query=(("pbx", "pbx id (from the ring event)"), ("linkedid", "the call"))),
    Endpoint("GET", "/api/clients", api_calls.list_clients, "Clients"),
    Endpoint("GET", "/api/clients/{code}", api_calls.get_client, "One client's card"),
    Endpoint("GET", "/api/messages", api_calls.list_messages, "Messages (受電報告)",
             query=(("client", "client code"), *PAGE)),
    Endpoint("POST", "/api/messages", api_calls.create_message, "Take a message for a client",
             body={"client": "client code", "disposition":
                   "callback_requested | urgent | info_only", "body": "the message",
                   "caller_number": "optional", "caller_name": "optional",
                   "pbx": "optional call", "linkedid": "optional call"}),
    Endpoint("GET", "/api/obligations", api_callbacks.list_obligations,
             "Call-back obligations by due time",
             query=(("state", "comma-separated: " + ", ".join(api_callbacks.STATES)),
                    ("client", "client code"), ("limit", "1..500"))),
    Endpoint("POST", "/api/obligations/{obligation_id}/done", api_callbacks.mark_done,
             "The client called back (fulfilled, reported)", body={"note": "optional"}),
    Endpoint("POST", "/api/obligations/{obligation_id}/cancel", api_callbacks.cancel,
             "Cancel an obligation", body={"note": "why"}),
    Endpoint("POST", "/api/obligations/{obligation_id}/call", api_callbacks.call_back,
             "Click-to-call: ring my phone, then the caller (calling-hours guard)",
             body={"operator": "optional extension (default: mine)"}),
    Endpoint("GET", "/api/wallboard", api_supervisor.wallboard,
             "Queues, today per client, operators, live calls, alerts"),
    Endpoint("GET", "/api/alerts", api_supervisor.alerts,
             "Escalated callers, long waits, overdue call backs"),
    Endpoint("GET", "/api/escalations", api_supervisor.list_escalations, "Escalations",
             query=PAGE),
    Endpoint("POST", "/api/escalations", api_supervisor.create_escalation,
             "Move an operator's caller to the supervisors (手上げ)",
             body={"reason": "complaint | complaint_naming_operator | payment_dispute | other",
                   "operator": "extension (supervisors; operators escalate their own)"}),
    Endpoint("POST", "/api/spy", api_supervisor.spy,
             "Listen, whisper or barge on an operator's call (audited)",
             body={"operator": "extension", "mode": "listen | whisper | barge",
                   "phone": "optional: the supervisor's phone (default: own extension)"}),
    Endpoint("GET", "/api/spy", api_supervisor.spy_audit, "The audit of spying"),
    Endpoint("GET", "/api/users", api_admin.list_users, "Users"),
    Endpoint("POST", "/api/users", api_admin.create_user, "Create a user",
             body={"username": "", "password": "8+ characters",
                   "role": "admin | supervisor | operator | client",
                   "client": "client users only", "extension": "phone", "display_name": ""}),
    Endpoint("GET", "/api/stream", stream.stream,
             "Server-Sent Events: call, ring, alert, obligation, resync"),
    Endpoint("GET", "/api/status", api_status,
             "The service's state: each PBX link, FastAGI, spool, alerts (as /healthz)"),
    # Monthly client reports, the audit of access to clients' data (docs/reports.md).
    Endpoint("GET", "/api/reports/monthly", api_reports.monthly,
             "Monthly client report (one client, or every client as JSON for staff)",
             query=(("month", "YYYY-MM, client's time zone"), ("client", "client code"),
                    ("format", "json | csv | xlsx | html | pdf"), ("lang", "ja | en"))),
    Endpoint("GET", "/api/reports/operators", api_reports.operators,
             "Per-operator figures of a month (answered, talk, logged in, paused by reason, "
             "手上げ, complaints naming them, dials, dispositions); staff only",
             query=(("month", "YYYY-MM in company_timezone"), ("format", "json | csv"))),
    Endpoint("GET", "/api/reports/chart", api_reports.chart,
             "A monthly report's chart as PNG",
             query=(("month", "YYYY-MM"), ("client", "client code"),
                    ("chart", "by_day | by_hour"), ("lang", "ja | en"))),
    Endpoint("GET", "/api/audit", api_reports.audit,
             "Who viewed or exported which client's data",
             query=(("client", "client code"), ("limit", "1..1000"))),
    Endpoint("GET", "/api/delivery-failures", api_reports.delivery_failures,
             "Deliveries to clients that failed (alerts)"),
    Endpoint("GET", "/api/screen/current", api_calls.screen_current,
             "The screen pop of the call at my phone now (restored after a reload)"),
    Endpoint("POST", "/api/alerts/ack", api_supervisor.ack_alert,
             "Acknowledge an alert (stored: by whom, when)", body={"key": "the alert's key"}),
    *(Endpoint(*endpoint) for endpoint in CALLFLOW_ENDPOINTS),
)

PAGES = {"/": "index.html", "/login": "login.html", "/wallboard": "wallboard.html",
         "/operator": "operator.html", "/worklist": "worklist.html", "/portal": "portal.html"}
PAGES["/report"] = "report.html"  # the monthly report (service/web/api_reports.py)

# Continuous reconciliation (issue 13): the supervisor's page of differences.
ENDPOINTS = (*ENDPOINTS, Endpoint(
    "GET", "/api/reconcile", api_reconcile.reconcile,
    "Reconciliation with Asterisk's CDR and queue_log: last pass, unknown calls, differences"))
PAGES["/reconcile"] = "reconcile.html"
ENDPOINTS = (*ENDPOINTS, Endpoint(
    "POST", "/api/obligations/{obligation_id}/schedule", api_callbacks.schedule_call_back,
    "Schedule the call back for a time (placed then, under the same outbound policy)",
    body={"at": "ISO time with offset", "operator": "optional extension (default: mine)"}))
ENDPOINTS = (*ENDPOINTS, Endpoint(
    "POST", "/api/reconcile/resolve", api_reconcile.resolve_difference,
    "Mark a reconciliation difference resolved (who and why are kept)",
    body={"pbx_id": "the PBX", "kind": "the difference's kind", "linkedid": "the call",
          "note": "what was done (required)"}))
ENDPOINTS = (*ENDPOINTS, Endpoint(
    "POST", "/api/scheduled/{scheduled_id}/cancel", api_callbacks.cancel_scheduled,
    "Cancel a scheduled call back that has not been placed yet"))
# Messages to callees (e-mail, fax) under the same outbound policy (issue 13).
ENDPOINTS = (*ENDPOINTS, Endpoint(
    "POST", "/api/callee-messages", api_callee_messages.send_message,
    "Send a message to a callee by e-mail or fax: held outside the callee's calling window, "
    "refused for do-not-call, every check recorded",
    body={"channel": "email | fax", "subject": "one line", "body": "the text",
          "email": "channel email: the callee's address",
          "obligation": "a call back's id (gives client and callee)",
          "client": "client code (without obligation)",
          "callee": "the callee's phone or fax number (without obligation)"}), Endpoint(
    "GET", "/api/callee-messages", api_callee_messages.list_messages,
    "Messages to callees, newest first (state, last check's reason)",
    query=(("client", "client code"), ("state", "pending | held | sent | refused | failed | "
                                       "cancelled"), *PAGE)), Endpoint(
    "POST", "/api/callee-messages/{message_id}/cancel", api_callee_messages.cancel_message,
    "Cancel a message that has not left yet"))


def openapi() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        roles = getattr(endpoint.handler, "orikaeshi_roles", ())
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "description": "public" if roles is None else "roles: " + ", ".join(roles),
            "parameters": [{"name": name, "in": "query", "required": False,
                            "description": text, "schema": {"type": "string"}}
                           for name, text in endpoint.query] + [
                {"name": part[1:-1], "in": "path", "required": True,
                 "schema": {"type": "string"}}
                for part in endpoint.path.split("/") if part.startswith("{")],
            "responses": {"200": {"description": "OK"},
                          "400": {"description": "bad input (JSON: error)"},
                          "401": {"description": "not logged in"},
                          "403": {"description": "not allowed for this role, or CSRF"},
                          "404": {"description": "not found (or not yours)"}},
        }
        if endpoint.body:
            operation["requestBody"] = {"content": {"application/json": {"schema": {
                "type": "object",
                "properties": {k: {"type": "string", "description": v}
                               for k, v in endpoint.body.items()}}}}}
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {"openapi": "3.0.3",
            "info": {"title": "orikaeshi", "version": "0.1.0",
                     "description": "Calls, call backs, messages and live state of an "
                                    "answering company's PBX. Cookie session (CSRF header "
                                    "X-CSRF-Token) or Authorization: Bearer token."},
            "components": {"securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "orikaeshi_session"}}},
            "security": [{"bearer": []}, {"cookie": []}],
            "paths": paths}


@public
async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(openapi())


# Who is offered each page; anyone else is sent to their own home page (never an empty page
# that fails on its first API call).
PAGE_ROLES = {"/wallboard": ("admin", "supervisor"),
              "/operator": ("admin", "supervisor", "operator"),
              "/worklist": ("admin", "supervisor", "operator"),
              "/portal": ("admin", "supervisor", "client")}
# The supervisor's desk (issue 11): 手上げ, safety-net alerts, presence, complaints, recordings.
PAGES["/supervisor"] = "supervisor.html"
PAGE_ROLES["/supervisor"] = ("admin", "supervisor")
HOME = {"admin": "/wallboard", "supervisor": "/wallboard", "operator": "/operator",
        "client": "/portal"}


def home_for(role: str, path: str) -> str | None:
    """Where a page request goes instead, or None to serve it.

    >>> home_for("operator", "/wallboard"), home_for("client", "/worklist")
    ('/operator?denied=wallboard', '/portal?denied=worklist')
    >>> home_for("supervisor", "/wallboard") is None, home_for("client", "/login") is None
    (True, True)
    """
    roles = PAGE_ROLES.get(path)
    if roles is None or role in roles:
        return None
    return f"{HOME.get(role, '/login')}?denied={path.strip('/')}"


def _page(name: str, path: str) -> Handler:
    @public
    async def page(request: web.Request) -> web.StreamResponse:
        if path in PAGE_ROLES:
            token = request.cookies.get(COOKIE)
            async with pool(request).acquire() as conn:
                found = await web_sql.session_user(conn, token) if token else None
            if found is None:
                raise web.HTTPFound(f"/login?next={path}")
            elsewhere = home_for(found[0].role, path)
            if elsewhere is not None:
                raise web.HTTPFound(elsewhere)
        return web.FileResponse(STATIC / name, headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": "default-src 'self'; style-src 'self'; "
                                       "script-src 'self'; connect-src 'self'"})
    return page


@public
async def favicon(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "favicon.ico",
                            headers={"Cache-Control": "max-age=86400"})


def setup_routes(app: web.Application) -> None:
    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, endpoint.path, endpoint.handler)
    app.router.add_get("/api/openapi.json", openapi_document)
    for path, name in PAGES.items():
        app.router.add_get(path, _page(name, path))
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_static("/static", STATIC)  # public: no data in them (see auth)
