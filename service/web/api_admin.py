"""HTTP: users (admin only)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from service.store import web_sql
from service.web.auth import ROLES, allow, hash_password
from service.web.context import pool
from service.web.http import bad_request, conflict, json_body, ok, text_field


@allow("admin")
async def list_users(request: web.Request) -> web.Response:
    async with pool(request).acquire() as conn:
        users = await web_sql.list_users(conn)
    return ok({"items": [{"id": u.id, "username": u.username, "role": u.role,
                          "client": u.client, "extension": u.extension,
                          "display_name": u.display_name} for u in users]})


@allow("admin")
async def create_user(request: web.Request) -> web.Response:
    data = await json_body(request)
    username = text_field(data, "username", max_length=100) or ""
    role = text_field(data, "role", max_length=20)
    if role not in ROLES:
        raise bad_request(f"role must be one of {', '.join(ROLES)}")
    client = text_field(data, "client", required=role == "client", max_length=20)
    if role != "client" and client:
        raise bad_request("only client users belong to a client")
    try:
        password_hash = hash_password(text_field(data, "password", max_length=1000) or "")
    except ValueError as exc:
        raise bad_request(str(exc)) from exc
    try:
        async with pool(request).acquire() as conn:
            user = await web_sql.create_user(
                conn, username, password_hash, str(role), client=client,
                extension=text_field(data, "extension", required=False, max_length=20),
                display_name=text_field(data, "display_name", required=False,
                                        max_length=200) or "")
    except asyncpg.UniqueViolationError as exc:
        raise conflict(f"user {username!r} exists") from exc
    return ok({"id": user.id, "username": user.username, "role": user.role}, status=201)
