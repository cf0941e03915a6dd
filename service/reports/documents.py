"""One monthly report in the format asked for: what the CLI, the API and the scheduled
delivery share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.ledger.model import MISSED
from service.reports import render
from service.reports.labels import LANGS
from service.reports.monthly import monthly_report
from service.reports.rules import ReportError, month_period
from service.store import reports_sql

FORMATS = {"json": "application/json", "csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "html": "text/html; charset=utf-8", "pdf": "application/pdf"}


@dataclass(frozen=True)
class Document:
    body: bytes
    content_type: str
    filename: str


async def monthly_document(conn: asyncpg.Connection, client: str, month: str, fmt: str, *,
                           lang: str = "ja", company: str = "", font: str = "",
                           now: datetime | None = None) -> Document:
    """The report of ``client`` for ``month`` as ``fmt`` (json, csv, xlsx, html, pdf).
    ReportError for a bad format, language, month or client."""
    if fmt not in FORMATS:
        raise ReportError(f"format must be one of {', '.join(FORMATS)}")
    if lang not in LANGS:
        raise ReportError(f"language must be one of {', '.join(LANGS)}")
    report = await monthly_report(conn, client, month, now=now)
    if fmt == "json":
        body = render.to_json(report)
    elif fmt == "csv":
        body = render.to_csv(report, lang)
    elif fmt == "html":
        body = render.to_html(report, lang, company, font)
    elif fmt == "pdf":
        body = render.to_pdf(report, lang, company, font)
    else:
        period = month_period(month, report["timezone"])
        missed = await reports_sql.missed_calls(
            conn, reports_sql.Scope(client, period.start, period.end, report["timezone"], 0),
            sorted(MISSED))
        body = render.to_xlsx(report, missed, lang, company)
    return Document(body, FORMATS[fmt], f"orikaeshi-{client}-{report['month']}.{fmt}")
