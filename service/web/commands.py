"""``orikaeshi users add|list|passwd|token|revoke-token|disable|enable``.

Ending an account's access: ``passwd`` (every session and token made before the change
stops working), ``revoke-token`` (one token by name, or all), ``disable`` (no login, every
session and token ended; ``enable`` lets the user log in again, with new tokens).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import timedelta
from typing import Any

import asyncpg

from service.config import Config
from service.store import web_sql
from service.store.db import connect
from service.web.auth import ROLES, hash_password


def add_commands(sub: Any) -> None:
    users = sub.add_parser("users", help="people who use the pages and the API")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="create a user (password from "
                                           "ORIKAESHI_PASSWORD or asked)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--client", help="the client a client user belongs to")
    add.add_argument("--extension", help="phone extension of an operator or supervisor")
    add.add_argument("--name", default="", help="display name")
    add.set_defaults(handler=add_command)
    listing = users_sub.add_parser("list")
    listing.set_defaults(handler=list_command)
    passwd = users_sub.add_parser("passwd", help="set a user's password")
    passwd.add_argument("username")
    passwd.set_defaults(handler=passwd_command)
    token = users_sub.add_parser("token", help="make an API bearer token (shown once)")
    token.add_argument("username")
    token.add_argument("--name", default="cli")
    token.add_argument("--days", type=int, default=None,
                       help="valid for this many days (default: token_lifetime_days; 0: "
                            "never expires)")
    token.set_defaults(handler=token_command)
    revoke = users_sub.add_parser("revoke-token", help="revoke a user's API tokens")
    revoke.add_argument("username")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--name", help="the tokens of this name (users token --name)")
    which.add_argument("--all", action="store_true", help="every token of the user")
    revoke.set_defaults(handler=revoke_command)
    disable = users_sub.add_parser("disable", help="refuse logins and end every session "
                                                   "and token now")
    disable.add_argument("username")
    disable.set_defaults(handler=disable_command)
    enable = users_sub.add_parser("enable", help="allow a disabled user to log in again")
    enable.add_argument("username")
    enable.set_defaults(handler=enable_command)


def _password() -> str:
    return os.environ.get("ORIKAESHI_PASSWORD") or getpass.getpass("password: ")


async def add_command(args: argparse.Namespace, config: Config) -> int:
    if (args.role == "client") != bool(args.client):
        print("orikaeshi users: --client is required for, and only for, role client",
              file=sys.stderr)
        return 2
    try:
        password_hash = hash_password(_password())
    except ValueError as exc:
        print(f"orikaeshi users: {exc}", file=sys.stderr)
        return 2
    try:
        async with connect(config) as conn:
            if args.client and not await conn.fetchval(
                    "SELECT true FROM clients WHERE code = $1", args.client):
                print(f"orikaeshi users: no client {args.client} (load the clients file "
                      "first: orikaeshi clients load FILE)", file=sys.stderr)
                return 2
            user = await web_sql.create_user(conn, args.username, password_hash, args.role,
                                             client=args.client, extension=args.extension,
                                             display_name=args.name)
    except asyncpg.UniqueViolationError:
        print(f"orikaeshi users: {args.username} exists", file=sys.stderr)
        return 1
    print(f"created {user.username} ({user.role})")
    return 0


async def list_command(args: argparse.Namespace, config: Config) -> int:
    async with connect(config) as conn:
        users = await web_sql.list_users(conn)
    for user in users:
        print(f"{user.username:20} {user.role:10} {user.client or '':8} {user.extension or ''}")
    return 0


async def passwd_command(args: argparse.Namespace, config: Config) -> int:
    async with connect(config) as conn:
        user_id = await _user_id(conn, args.username)
        if user_id is None:
            return 1
        try:
            await web_sql.set_password_hash(conn, user_id, hash_password(_password()))
        except ValueError as exc:
            print(f"orikaeshi users: {exc}", file=sys.stderr)
            return 2
    print("password changed")
    return 0


async def token_command(args: argparse.Namespace, config: Config) -> int:
    days = config.token_lifetime_days if args.days is None else args.days
    if days < 0:
        print("orikaeshi users: --days is 0 (never expires) or more", file=sys.stderr)
        return 2
    async with connect(config) as conn:
        user_id = await _user_id(conn, args.username)
        if user_id is None:
            return 1
        print(await web_sql.new_api_token(conn, user_id, args.name,
                                          timedelta(days=days) if days else None))
    return 0


async def revoke_command(args: argparse.Namespace, config: Config) -> int:
    async with connect(config) as conn:
        user_id = await _user_id(conn, args.username, active_only=False)
        if user_id is None:
            return 1
        count = await web_sql.revoke_token(conn, user_id, None if args.all else args.name)
    print(f"revoked {count} token{'s' if count != 1 else ''}")
    return 0 if count or args.all else 1


async def disable_command(args: argparse.Namespace, config: Config) -> int:
    async with connect(config) as conn:
        user_id = await _user_id(conn, args.username, active_only=False)
        if user_id is None:
            return 1
        await web_sql.end_credentials(conn, user_id, disable=True)
    print(f"disabled {args.username}: sessions and tokens ended")
    return 0


async def enable_command(args: argparse.Namespace, config: Config) -> int:
    async with connect(config) as conn:
        user_id = await _user_id(conn, args.username, active_only=False)
        if user_id is None:
            return 1
        await web_sql.enable_user(conn, user_id)
    print(f"enabled {args.username}")
    return 0


async def _user_id(conn: asyncpg.Connection, username: str, *,
                   active_only: bool = True) -> int | None:
    user = await web_sql.user_by_name(conn, username)
    if user is None:
        print(f"orikaeshi users: no user {username}", file=sys.stderr)
        return None
    if active_only and not await conn.fetchval("SELECT active FROM users WHERE id = $1",
                                               user.id):
        print(f"orikaeshi users: {username} is disabled (orikaeshi users enable {username})",
              file=sys.stderr)
        return None
    return user.id
