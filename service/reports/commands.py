"""``orikaeshi report month`` and ``orikaeshi report audit``."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from service.config import Config
from service.localtime import local_iso
from service.reports.documents import FORMATS, monthly_document
from service.reports.labels import LANGS
from service.reports.monthly import monthly_reports
from service.reports.render import RenderError, to_json
from service.reports.rules import ReportError
from service.store.db import connect
from service.store.reports_sql import audit, audit_rows


def cli_actor() -> str:
    """Who runs a command, for the audit of access to clients' data."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def add_commands(sub: Any) -> None:
    report = sub.add_parser("report", help="monthly client reports; who looked at what")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    month = report_sub.add_parser("month", help="one month's report of a client (or, as "
                                                "JSON, of every client)")
    month.add_argument("--client", help="client code (default: every client, JSON only)")
    month.add_argument("--month", required=True, help="YYYY-MM, in the client's time zone")
    month.add_argument("--format", default="json", choices=tuple(FORMATS))
    month.add_argument("--lang", default="ja", choices=LANGS)
    month.add_argument("--out", type=Path, help="file to write (default: standard output)")
    month.set_defaults(handler=month_command)
    operators = report_sub.add_parser(
        "operators", help="every operator's figures for a month (answered, talk, logged in, "
                          "paused by reason, 手上げ, complaints, dials, dispositions)")
    operators.add_argument("--month", required=True,
                           help="YYYY-MM, in the company's time zone (company_timezone)")
    operators.add_argument("--format", default="json", choices=("json", "csv"))
    operators.add_argument("--out", type=Path, help="file to write (default: standard output)")
    operators.set_defaults(handler=operators_command)
    trail = report_sub.add_parser("audit", help="who viewed or exported which client's data")
    trail.add_argument("--client")
    trail.add_argument("--limit", type=int, default=200)
    trail.set_defaults(handler=audit_command)


async def month_command(args: argparse.Namespace, config: Config) -> int:
    if args.client is None and args.format != "json":
        print("orikaeshi report: --client is needed for formats other than json",
              file=sys.stderr)
        return 2
    try:
        async with connect(config) as conn:
            if args.client is None:
                body = to_json(await monthly_reports(conn, args.month))
            else:
                document = await monthly_document(
                    conn, args.client, args.month, args.format, lang=args.lang,
                    company=config.company_name, font=config.report_font)
                body = document.body
            await audit(conn, cli_actor(), "report_export", args.client,
                        f"month={args.month} format={args.format}")
    except (ReportError, RenderError) as exc:
        print(f"orikaeshi report: {exc}", file=sys.stderr)
        return 2
    return _write(body, args.out)


async def operators_command(args: argparse.Namespace, config: Config) -> int:
    from service.reports.operators import generated, operator_month, to_csv

    try:
        async with connect(config) as conn:
            report = await operator_month(conn, args.month, config.company_timezone)
            await audit(conn, cli_actor(), "operators_view", None,
                        f"month={args.month} format={args.format}")
    except ReportError as exc:
        print(f"orikaeshi report: {exc}", file=sys.stderr)
        return 2
    report = generated(report, datetime.now().astimezone())
    body = to_json(report) if args.format == "json" else to_csv(report)
    return _write(body, args.out)


def _write(body: bytes, out: Path | None) -> int:
    if out is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return 0
    try:
        out.write_bytes(body)
    except OSError as exc:
        print(f"orikaeshi report: {out}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({len(body):,} bytes)", file=sys.stderr)
    return 0


def _when(value: datetime, zone: str) -> str:
    """An audit time in the row's client's zone (a row of no client: the company's)."""
    return local_iso(value, zone)


async def audit_command(args: argparse.Namespace, config: Config) -> int:
    async with connect(config) as conn:
        rows = await audit_rows(conn, client=args.client, limit=args.limit)
        zones = {r["code"]: r["timezone"] for r in
                 await conn.fetch("SELECT code, timezone FROM clients")}
    for row in rows:
        when = _when(row["at"], zones.get(row["client"]) or config.company_timezone)
        print(f"{when}  {row['actor']:20} {row['action']:16} "
              f"{row['client'] or '-':8} {row['detail'] or ''}")
    return 0
