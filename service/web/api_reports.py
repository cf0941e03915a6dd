"""HTTP: the monthly client report (every format, charts), the audit of who looked at which
client's data, and failed deliveries for the wallboard.

A client user gets its own client's report only (another client's is 404, as everywhere);
admins and supervisors may ask for one client or for every client at once.  Every report
served is written to ``data_access_audit``.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from service.reports.documents import FORMATS, monthly_document
from service.reports.labels import LANGS
from service.reports.monthly import monthly_reports
from service.reports.render import RenderError, chart_png, figure_rows
from service.reports.rules import ReportError, parse_month
from service.store import reports_sql
from service.web.auth import allow, client_scope, current_user
from service.web.context import config, pool
from service.web.http import bad_request, choice, not_found, ok


def _now(request: web.Request) -> datetime:
    from service.appkeys import CLOCK

    return request.app[CLOCK]()


def _month(request: web.Request) -> str:
    text = request.query.get("month", "")
    try:
        return f"{parse_month(text):%Y-%m}"
    except ReportError as exc:
        raise bad_request(str(exc), value=text) from exc


def _client(request: web.Request, *, required: bool) -> str | None:
    """The client asked for, within the caller's scope: a client user always gets its own
    (asking for another is 404); staff may leave it out (every client) unless required."""
    asked = request.query.get("client") or None
    scope = client_scope(request)
    if scope is not None:
        if asked is not None and asked not in scope:
            raise not_found("no such client")
        return scope[0]
    if asked is None and required:
        raise bad_request("client is required")
    return asked


@allow("admin", "supervisor", "client")
async def monthly(request: web.Request) -> web.StreamResponse:
    """``?month=YYYY-MM[&client=][&format=json|csv|xlsx|html|pdf][&lang=ja|en]``."""
    month = _month(request)
    fmt = choice(request, "format", tuple(FORMATS)) or "json"
    lang = choice(request, "lang", LANGS) or "ja"
    client = _client(request, required=fmt != "json")
    cfg = config(request)
    user = current_user(request).username
    async with pool(request).acquire() as conn:
        try:
            if client is None:
                reports = await monthly_reports(conn, month, now=_now(request))
                await reports_sql.audit(conn, user, "report_view", None,
                                        f"month={month} every client")
                return ok({"month": month, "items": reports})
            if fmt == "json" and request.query.get("figures") == "1":
                # For the report page: the report plus its figures labelled in ``lang``.
                [report] = await monthly_reports(conn, month, [client], now=_now(request))
                await reports_sql.audit(conn, user, "report_view", client, f"month={month}")
                return ok({**report, "figures": figure_rows(report, lang)})
            document = await monthly_document(conn, client, month, fmt, lang=lang,
                                              company=cfg.company_name, font=cfg.report_font,
                                              now=_now(request))
        except ReportError as exc:
            if str(exc).startswith("no client"):
                raise not_found("no such client") from exc
            raise bad_request(str(exc)) from exc
        except RenderError as exc:
            raise web.HTTPServiceUnavailable(text=str(exc)) from exc
        await reports_sql.audit(conn, user, "report_view" if fmt == "json" else "report_export",
                                client, f"month={month} format={fmt}")
    headers = {"Cache-Control": "no-store"}
    if fmt != "json":
        disposition = "inline" if fmt in ("html", "pdf") else "attachment"
        headers["Content-Disposition"] = f'{disposition}; filename="{document.filename}"'
    if fmt == "html":
        # A standalone document: its own inline styles and images, no script at all.
        headers["Content-Security-Policy"] = ("default-src 'none'; style-src 'unsafe-inline'; "
                                              "img-src data:")
    return web.Response(body=document.body, content_type=document.content_type.split(";")[0],
                        charset="utf-8" if "charset" in document.content_type else None,
                        headers=headers)


@allow("admin", "supervisor")
async def operators(request: web.Request) -> web.Response:
    """``?month=YYYY-MM[&format=json|csv]``: every operator's figures for the month in the
    company's time zone (service/reports/operators.py).  Never for client users."""
    from service.reports.operators import generated, operator_month, to_csv

    month = _month(request)
    fmt = choice(request, "format", ("json", "csv")) or "json"
    async with pool(request).acquire() as conn:
        report = generated(await operator_month(conn, month, config(request).company_timezone),
                           _now(request))
        await reports_sql.audit(conn, current_user(request).username, "operators_view", None,
                                f"month={month} format={fmt}")
    if fmt == "json":
        return ok(report)
    return web.Response(body=to_csv(report), content_type="text/csv", charset="utf-8",
                        headers={"Cache-Control": "no-store", "Content-Disposition":
                                 f'attachment; filename="operators-{month}.csv"'})


@allow("admin", "supervisor", "client")
async def chart(request: web.Request) -> web.Response:
    """``?client=&month=&chart=by_day|by_hour[&lang=]``: a PNG for the report page."""
    month = _month(request)
    which = choice(request, "chart", ("by_day", "by_hour")) or "by_day"
    lang = choice(request, "lang", LANGS) or "ja"
    client = _client(request, required=True)
    assert client is not None
    async with pool(request).acquire() as conn:
        try:
            [report] = await monthly_reports(conn, month, [client])
        except ReportError as exc:
            raise not_found("no such client") from exc
    try:
        png = chart_png(report, which, lang, config(request).report_font)
    except RenderError as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from exc
    return web.Response(body=png, content_type="image/png",
                        headers={"Cache-Control": "no-store"})


@allow("admin")
async def audit(request: web.Request) -> web.Response:
    """Who viewed or exported which client's data (``?client=``)."""
    try:
        limit = int(request.query.get("limit", "200"))
    except ValueError as exc:
        raise bad_request("limit is a whole number") from exc
    if not 1 <= limit <= 1000:
        raise bad_request("limit must be 1..1000")
    async with pool(request).acquire() as conn:
        rows = await reports_sql.audit_rows(conn, client=request.query.get("client") or None,
                                            limit=limit)
    return ok({"items": rows})


@allow("admin", "supervisor")
async def delivery_failures(request: web.Request) -> web.Response:
    """Deliveries to clients that failed (given up, or retrying after a failure)."""
    async with pool(request).acquire() as conn:
        rows = await reports_sql.delivery_failures(conn)
    return ok({"items": rows})
