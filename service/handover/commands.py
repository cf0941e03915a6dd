"""``orikaeshi export client`` and ``orikaeshi import handover`` (引き継ぎ)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from service.config import Config
from service.handover.export import HandoverError, export_client
from service.handover.importer import import_handover
from service.reports.commands import cli_actor
from service.store.db import connect
from service.store.reports_sql import audit


def add_commands(sub: Any) -> None:
    export = sub.add_parser("export", help="export a client's whole history (引き継ぎ)")
    export_sub = export.add_subparsers(dest="export_command", required=True)
    client = export_sub.add_parser("client", help="calls, messages, call backs, voicemail "
                                                  "references and settings as a bundle")
    client.add_argument("client", help="client code")
    client.add_argument("--since", help="only from this date (YYYY-MM-DD, client's time "
                                        "zone); open call backs are always included")
    client.add_argument("--out", type=Path, required=True, help="folder to write (new/empty)")
    client.set_defaults(handler=export_command)
    imp = sub.add_parser("import", help="import a handover bundle or CSV files")
    imp_sub = imp.add_subparsers(dest="import_command", required=True)
    handover = imp_sub.add_parser("handover", help="a bundle folder, or callbacks.csv / "
                                                   "messages.csv from another company")
    handover.add_argument("folder", type=Path)
    handover.add_argument("--client", help="into this client (required for CSV)")
    handover.set_defaults(handler=import_command)


async def export_command(args: argparse.Namespace, config: Config) -> int:
    async with connect(config) as conn:
        try:
            since = None
            if args.since:
                tz = await conn.fetchval("SELECT timezone FROM clients WHERE code = $1",
                                         args.client) or "UTC"
                try:
                    since = datetime.fromisoformat(args.since)
                except ValueError as exc:
                    raise HandoverError(f"--since {args.since!r} is not a date") from exc
                if since.tzinfo is None:
                    since = since.replace(tzinfo=ZoneInfo(tz))
            counts = await export_client(conn, args.client, args.out, since=since)
        except (HandoverError, OSError) as exc:
            print(f"orikaeshi export: {exc}", file=sys.stderr)
            return 2
        await audit(conn, cli_actor(), "handover_export", args.client,
                    f"out={args.out} since={args.since or '-'} " +
                    " ".join(f"{k}={v}" for k, v in counts.items()))
    print(f"{args.out}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


async def import_command(args: argparse.Namespace, config: Config) -> int:
    async with connect(config) as conn:
        try:
            added = await import_handover(conn, args.folder, client=args.client,
                                          now=datetime.now(UTC))
        except (HandoverError, OSError) as exc:
            print(f"orikaeshi import: {exc}", file=sys.stderr)
            return 2
        await audit(conn, cli_actor(), "handover_import", args.client,
                    f"folder={args.folder} " + " ".join(f"{k}={v}" for k, v in added.items()))
    print("imported: " + ", ".join(f"{v} {k}" for k, v in added.items()))
    return 0
