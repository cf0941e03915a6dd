"""``orikaeshi clients validate|load|list``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from service.clients.model import Directory
from service.clients.schema import ClientsFileError, parse_clients
from service.clients.store import current_directory, load_document
from service.config import Config
from service.store.db import connect


def add_commands(sub: Any) -> None:
    clients = sub.add_parser("clients", help="the clients file: validate, load, list")
    clients_sub = clients.add_subparsers(dest="clients_command", required=True)
    validate = clients_sub.add_parser("validate", help="check a clients file, every error "
                                                        "with its line")
    validate.add_argument("file", type=Path)
    validate.set_defaults(handler=validate_command)
    load = clients_sub.add_parser("load", help="validate and make it the routing data "
                                                "(every instance reloads)")
    load.add_argument("file", type=Path)
    load.set_defaults(handler=load_command)
    listing = clients_sub.add_parser("list", help="clients in the database")
    listing.set_defaults(handler=list_command)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"orikaeshi clients: {path}: {exc}", file=sys.stderr)
        return None


async def validate_command(args: argparse.Namespace, config: Config) -> int:
    text = _read(args.file)
    if text is None:
        return 2
    try:
        directory = parse_clients(text, str(args.file))
    except ClientsFileError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        print(f"{len(exc.errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{args.file}: ok, {len(directory.clients)} clients, {len(directory.by_did)} DIDs")
    return 0


async def load_command(args: argparse.Namespace, config: Config) -> int:
    text = _read(args.file)
    if text is None:
        return 2
    try:
        async with connect(config) as conn:
            version, directory = await load_document(conn, text, str(args.file),
                                                     loaded_by="cli")
    except ClientsFileError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        print(f"{len(exc.errors)} error(s); nothing loaded", file=sys.stderr)
        return 1
    print(f"loaded version {version}: {len(directory.clients)} clients, "
          f"{len(directory.by_did)} DIDs")
    return 0


async def list_command(args: argparse.Namespace, config: Config) -> int:
    async with connect(config) as conn:
        rows = await conn.fetch("SELECT code, name, active, dids, queue FROM clients "
                                "ORDER BY code")
    for r in rows:
        state = "" if r["active"] else "  (inactive)"
        print(f"{r['code']:8} {r['name']:30} {','.join(r['dids']):28} {r['queue']}{state}")
    return 0


async def clients_from(config: Config, path: Path | None) -> Directory | None:
    """The clients of ``path``, or else the version loaded in the database (None if none).

    Raises OSError, UnicodeDecodeError or ClientsFileError for a file that cannot be used;
    the commands that take ``--clients FILE`` say so in their own words."""
    if path is not None:
        return parse_clients(path.read_text(encoding="utf-8"), str(path))
    async with connect(config) as conn:
        return await current_directory(conn)
