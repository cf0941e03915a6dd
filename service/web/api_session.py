"""HTTP: logging in and out, and who am I."""

from __future__ import annotations

from aiohttp import web

from service.logs import get_logger
from service.store import web_sql
from service.web.auth import (
    COOKIE,
    FAILURE_WINDOW,
    MAX_FAILURES_PER_ADDRESS,
    MAX_FAILURES_PER_USER,
    ROLES,
    SESSION_LIFETIME,
    allow,
    current_user,
    dummy_verify,
    public,
    verify_password,
)
from service.web.context import pool
from service.web.http import dumps, json_body, ok, text_field

log = get_logger(__name__)


def _address(request: web.Request) -> str:
    return request.remote or "?"


@public
async def login(request: web.Request) -> web.Response:
    data = await json_body(request, limit=4096)
    username = text_field(data, "username", max_length=200) or ""
    password = text_field(data, "password", max_length=1000) or ""
    address = _address(request)
    async with pool(request).acquire() as conn:
        by_user, by_address = await web_sql.recent_failures(conn, username, address,
                                                            FAILURE_WINDOW)
        if by_user >= MAX_FAILURES_PER_USER or by_address >= MAX_FAILURES_PER_ADDRESS:
            log.warning("login_rate_limited", username=username, address=address)
            raise web.HTTPTooManyRequests(
                text=dumps({"error": "too many failed logins; try again later"}),
                content_type="application/json",
                headers={"Retry-After": str(int(FAILURE_WINDOW.total_seconds()))})
        found = await web_sql.user_for_login(conn, username)
        if found is None:
            dummy_verify(password)
        if found is None or not verify_password(found[1], password):
            await web_sql.note_failure(conn, username, address)
            log.warning("login_failed", username=username, address=address)  # no password
            raise web.HTTPUnauthorized(text=dumps({"error": "wrong user name or password"}),
                                       content_type="application/json")
        user = found[0]
        token, csrf = await web_sql.new_session(conn, user.id, SESSION_LIFETIME)
    log.info("login", username=user.username, role=user.role)
    response = ok({"user": _me(user), "csrf_token": csrf})
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                        max_age=int(SESSION_LIFETIME.total_seconds()),
                        secure=request.secure)
    return response


@allow(*ROLES)
async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(COOKIE)
    if token:
        async with pool(request).acquire() as conn:
            await web_sql.end_session(conn, token)
    response = ok({"logged_out": True})
    response.del_cookie(COOKIE, path="/")
    return response


def _me(user: web_sql.User) -> dict[str, object]:
    return {"username": user.username, "display_name": user.display_name, "role": user.role,
            "client": user.client, "extension": user.extension}


@allow(*ROLES)
async def me(request: web.Request) -> web.Response:
    user = current_user(request)
    body = _me(user)
    token = request.cookies.get(COOKIE)
    if token:  # the page needs its CSRF token again after a reload
        async with pool(request).acquire() as conn:
            found = await web_sql.session_user(conn, token)
        if found is not None:
            body["csrf_token"] = found[1]
    return ok(body)
