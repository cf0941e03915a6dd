"""``orikaeshi`` command line.  Each command is a thin call into the module that owns it.

Areas add their own sub-commands: a module listed in ``COMMAND_MODULES`` has
``add_commands(subparsers)`` and gives each parser a ``handler(args, config) -> int`` default.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from service.config import Config, ConfigError, load_config
from service.eventloop import loop_factory
from service.logs import configure_logging

# Modules that contribute sub-commands (see module docstring).
COMMAND_MODULES: tuple[str, ...] = (
    "service.clients.commands",
    "service.routing.commands",
    "service.dialplan.commands",
    "service.web.commands",
    "service.reports.commands",
    "service.handover.commands",
    "service.retention.commands",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orikaeshi", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="run the service: AMI ledger, FastAGI routing, web")

    db = sub.add_parser("db", help="database housekeeping")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("migrate", help="apply pending migrations")
    db_sub.add_parser("url", help="print the database URL (starting the embedded server)")

    rec = sub.add_parser("record", help="save a PBX's raw AMI stream to a file")
    rec.add_argument("out", type=Path)
    rec.add_argument("--pbx", help="pbx_id from the configuration (default: the first)")
    rec.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    rec.add_argument("--raw", action="store_true", help="exact bytes instead of jsonl")

    rep = sub.add_parser("replay", help="replay an AMI recording through the real ledger")
    rep.add_argument("path", type=Path, help="ami.raw or ami.jsonl")
    rep.add_argument("--json", action="store_true", help="one JSON object per inbound call")
    rep.add_argument("--speed", type=float, default=0.0,
                     help="pace by the recording's clock, N times faster (0 = at once)")
    rep.add_argument("--no-timestamps", action="store_true",
                     help="do not add Timestamp headers from the recording's clock")
    rep.add_argument("--into-configured-db", action="store_true",
                     help="write into the configured database instead of a scratch one")
    rep.add_argument("--keep", action="store_true", help="keep the scratch database")
    rep.add_argument("--pbx-id", default="replay")

    recon = sub.add_parser("reconcile", help="compare the ledger with Asterisk's CDR and "
                                             "queue_log; settle unknown calls")
    recon.add_argument("--cdr", type=Path, required=True, help="Master.csv")
    recon.add_argument("--queue-log", type=Path, required=True)
    recon.add_argument("--pbx", help="pbx_id (default: the first configured)")
    recon.add_argument("--from", dest="since", help="ISO date/time, inclusive")
    recon.add_argument("--to", dest="until", help="ISO date/time, exclusive")
    recon.add_argument("--dry-run", action="store_true", help="report only, settle nothing")
    recon.add_argument("--json", action="store_true")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"orikaeshi: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, config.log_format)
    try:
        factory = loop_factory(config.event_loop)
    except ConfigError as exc:
        print(f"orikaeshi: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(_dispatch(args, config))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`orikaeshi replay ... | head`): say so once, and keep Python
        # from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("orikaeshi: output closed by the reader (broken pipe); stopped",
              file=sys.stderr)
        return 141
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # A wrong DATABASE_URL, a refused password: one line saying so, not a traceback.
        print(f"orikaeshi: database: {type(exc).__name__}: {exc}".splitlines()[0],
              file=sys.stderr)
        return 1
    except OSError as exc:
        # The database or a port cannot be reached or bound (e.g. address in use).
        print(f"orikaeshi: {exc}".splitlines()[0], file=sys.stderr)
        return 1


async def _dispatch(args: argparse.Namespace, config: Config) -> int:
    handler = getattr(args, "handler", None)
    if handler is not None:
        result: int = await handler(args, config)
        return result
    if args.command == "serve":
        from service.app import serve
        await serve(config)
        return 0
    if args.command == "db":
        from service.store.db import database_url, migrate_url
        url = await database_url(config)
        if args.db_command == "url":
            print(url)
            return 0
        applied = await migrate_url(url)
        print(f"applied: {applied}" if applied else "database is up to date")
        return 0
    if args.command == "record":
        from service.replay.record import record
        pbx = config.pbx(args.pbx) if args.pbx else config.pbxs[0]
        count = await record(pbx, args.out, seconds=args.seconds, raw=args.raw)
        print(f"recorded {count} messages to {args.out}", file=sys.stderr)
        return 0
    if args.command == "replay":
        return await _replay(args, config)
    if args.command == "reconcile":
        from service.reconcile.command import reconcile_command
        return await reconcile_command(config, args)
    raise AssertionError(args.command)


async def _replay(args: argparse.Namespace, config: Config) -> int:
    from service.replay.recording import RecordingError
    from service.replay.run import inbound_report, open_server, replay_into, untimed_warning
    from service.store.db import create_pool, database_url, migrate_url
    from service.store.scratch import scratch_database

    try:
        server = open_server(args.path, speed=args.speed, timestamps=not args.no_timestamps)
    except (OSError, RecordingError) as exc:
        print(f"orikaeshi replay: {exc}", file=sys.stderr)
        return 2
    if (warning := untimed_warning(args.path, server)) is not None:
        print(warning, file=sys.stderr)
    server_url = await database_url(config)

    async def run(url: str) -> int:
        pool = await create_pool(url, max_size=4)
        try:
            result = await replay_into(pool, config, server, pbx_id=args.pbx_id)
            async with pool.acquire() as conn:
                report = await inbound_report(conn, args.pbx_id)
        finally:
            await pool.close()
        if args.json:
            for row in report:
                print(json.dumps(row, ensure_ascii=False))
        else:
            for row in report:
                print(f"{row['started_at']}  {row['client'] or '-':6} "
                      f"{row['caller'] or '(withheld)':14} {row['outcome']:13} "
                      f"wait={row['wait_s']} talk={row['talk_s']} "
                      f"by={row['answered_by'] or '-'}")
            print(f"{len(report)} inbound calls; {result.pipeline.client.stats.events} events; "
                  f"{result.pipeline.client.stats.bad_messages} bad messages", file=sys.stderr)
        return 0

    if args.into_configured_db:
        await migrate_url(server_url)
        return await run(server_url)
    async with scratch_database(server_url, "orikaeshi_replay", keep=args.keep) as url:
        if args.keep:
            print(f"scratch database kept: {url}", file=sys.stderr)
        return await run(url)
