"""``orikaeshi purge [--dry-run] [--client CODE] [--as-of DATE]``."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.config import Config
from service.localtime import local_iso
from service.reports.commands import cli_actor
from service.retention.purge import purge
from service.store.db import connect


def add_commands(sub: Any) -> None:
    parser = sub.add_parser("purge", help="delete calls, messages, voicemail recordings, "
                                          "outbound decisions and Asterisk record copies "
                                          "past each client's retention period")
    parser.add_argument("--dry-run", action="store_true", help="count only, delete nothing")
    parser.add_argument("--client", help="only this client")
    parser.add_argument("--as-of", help="ISO date/time to measure the periods from "
                                        "(default: now), e.g. to see what next month's "
                                        "purge will take")
    parser.set_defaults(handler=purge_command)


async def purge_command(args: argparse.Namespace, config: Config) -> int:
    now = datetime.now(UTC)
    if args.as_of:
        try:
            now = datetime.fromisoformat(args.as_of)
        except ValueError:
            print(f"orikaeshi purge: --as-of {args.as_of!r} is not an ISO date/time",
                  file=sys.stderr)
            return 2
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
    spool = Path(config.voicemail_spool_dir) if config.voicemail_spool_dir else None
    async with connect(config) as conn:
        results = await purge(conn, now, dry_run=args.dry_run, actor=cli_actor(),
                              client=args.client, voicemail_spool=spool)
    verb = "would delete" if args.dry_run else "deleted"
    for r in results:
        figures = ", ".join(f"{v} {k}" for k, v in r.rows.items())
        recordings = f", {r.recordings} recordings" if spool else \
            " (recordings: voicemail_spool_dir not set)"
        print(f"{r.client}: {verb} from before {local_iso(r.cutoff, r.timezone)}: "
              f"{figures}{recordings}")
    if not results:
        print("no client has a retention period: nothing to purge")
    return 0
