"""``orikaeshi users add|list|passwd|token``."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
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
    token.set_defaults(handler=token_command)


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
    async with connect(config) as conn:
        user_id = await _user_id(conn, args.username)
        if user_id is None:
            return 1
        print(await web_sql.new_api_token(conn, user_id, args.name))
    return 0


async def _user_id(conn: asyncpg.Connection, username: str) -> int | None:
    found = await web_sql.user_for_login(conn, username)
    if found is None:
        print(f"orikaeshi users: no user {username}", file=sys.stderr)
        return None
    return found[0].id
