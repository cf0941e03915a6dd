"""``orikaeshi route explain``: the decision the route AGI would make, and why."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.clients.commands import clients_from
from service.clients.model import Directory
from service.clients.schema import ClientsFileError
from service.config import Config
from service.localtime import local_iso
from service.phone import to_e164
from service.routing.policy import decide, is_open, repeat_applies
from service.routing.repeat import RepeatHistory
from service.store.db import TRANSIENT_ERRORS, create_pool, database_url


def add_commands(sub: Any) -> None:
    route = sub.add_parser("route", help="routing decisions")
    route_sub = route.add_subparsers(dest="route_command", required=True)
    explain = route_sub.add_parser("explain", help="the decision for a call, and why")
    explain.add_argument("--did", required=True, help="the dialled number")
    explain.add_argument("--caller", default="", help="the caller's number ('' = withheld)")
    explain.add_argument("--at", help="ISO time (default now; without an offset, the "
                                      "client's local time)")
    explain.add_argument("--clients", type=Path, help="a clients file instead of the "
                                                       "database's routing data")
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(handler=explain_command)


class BadTime(ValueError):
    """``--at`` is not a date and time."""


def _when(text: str | None, directory: Directory, did: str) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadTime(f"--at {text!r} is not an ISO date and time (e.g. 2026-11-24T10:00 in "
                      "the client's time zone, or 2026-11-24T10:00+09:00)") from None
    if moment.tzinfo is None:
        client = directory.client_for(did)
        moment = moment.replace(tzinfo=ZoneInfo(client.timezone if client else "Asia/Tokyo"))
    return moment


async def explain_command(args: argparse.Namespace, config: Config) -> int:
    try:
        directory = await clients_from(config, args.clients)
    except (OSError, UnicodeDecodeError, ClientsFileError) as exc:
        print(f"orikaeshi route explain: {exc}", file=sys.stderr)
        return 2
    if directory is None:
        print("orikaeshi route explain: no clients loaded (orikaeshi clients load FILE, "
              "or --clients FILE)", file=sys.stderr)
        return 2
    try:
        now = _when(args.at, directory, args.did)
    except BadTime as exc:
        print(f"orikaeshi route explain: {exc}", file=sys.stderr)
        return 2
    history, flags = await _history(config, directory, args.did, args.caller, now)
    decision = decide(directory, args.did, args.caller or None, now, history, flags=flags)
    if args.json:
        print(json.dumps({"decision": asdict(decision), "variables": decision.variables(),
                          "at": now.isoformat()}, default=str, ensure_ascii=False, indent=1))
        return 0
    # The moment in the DID's client's zone (the zone its hours are read in), with offset.
    client = directory.client_for(args.did)
    at = local_iso(now, client.timezone if client else None)
    print(f"call to {args.did} from {args.caller or '(withheld)'} at {at}")
    for reason in decision.reasons:
        print(f"  - {reason}")
    print("variables the route AGI sets:")
    for name, value in decision.variables():
        print(f"  {name} = {value}")
    return 0


async def _history(config: Config, directory: Directory, did: str, caller: str,
                   now: datetime) -> tuple[RepeatHistory | None, tuple[str, ...]]:
    """The repeat history the AGI would see (needs the database), and the flag the AGI would
    set when the database cannot answer."""
    client = directory.client_for(did)
    e164 = to_e164(caller)
    if client is None or e164 is None or not repeat_applies(client, caller) or \
            not is_open(client, now)[0]:
        return None, ()
    from service.callbacks.repeat_sql import SqlRepeatLookup

    try:
        pool = await create_pool(await database_url(config), max_size=1)
    except TRANSIENT_ERRORS as exc:
        print(f"orikaeshi route explain: no repeat check, database unreachable: {exc}",
              file=sys.stderr)
        return None, ("repeat_check_unavailable",)
    try:
        lookup = SqlRepeatLookup(pool)
        return await lookup(client.code, e164, now, client.repeat.window_s), ()
    except TRANSIENT_ERRORS as exc:
        print(f"orikaeshi route explain: no repeat check: {exc}", file=sys.stderr)
        return None, ("repeat_check_unavailable",)
    except asyncpg.UndefinedTableError as exc:
        print(f"orikaeshi route explain: no repeat check: the database has no orikaeshi "
              f"tables yet ({exc}); run `orikaeshi db migrate`", file=sys.stderr)
        return None, ("repeat_check_unavailable",)
    finally:
        await pool.close()
