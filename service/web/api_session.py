"""HTTP: logging in and out, and who am I."""

from __future__ import annotations

import math

from aiohttp import web

from service.logs import get_logger
from service.store import web_sql
from service.web.auth import (
    COOKIE,
    FAILURE_WINDOW,
    ROLES,
    SESSION_LIFETIME,
    PasswordBusy,
    PasswordWorkers,
    allow,
    bearer_token,
    client_address,
    current_user,
    public,
    secure_request,
    throttle_keys,
    wait_for_key,
)
from service.web.context import config, pool
from service.web.http import dumps, json_body, text_field
from service.web.http import ok as ok_response

log = get_logger(__name__)


def _json_error(cls: type[web.HTTPException], message: str, **headers: str) -> web.HTTPException:
    return cls(text=dumps({"error": message}), content_type="application/json",
               headers=headers or None)


def _passwords(request: web.Request) -> PasswordWorkers:
    from service.appkeys import PASSWORDS

    return request.app[PASSWORDS]


@public
async def login(request: web.Request) -> web.Response:
    """Log in with ``{"username", "password"}`` as JSON.

    JSON only: a form or text/plain body is what a foreign page can make a browser send
    without asking (login CSRF: the victim logged in as the attacker), so it is refused.
    The attempt is counted before the password is checked (see ``service.web.auth``)."""
    if request.content_type != "application/json":
        raise _json_error(web.HTTPUnsupportedMediaType, "send the login as application/json")
    data = await json_body(request, limit=4096)
    username = text_field(data, "username", max_length=200) or ""
    password = text_field(data, "password", max_length=1000) or ""
    address = client_address(request)
    if _passwords(request).full:
        # A flood: refused before it costs the database (or the loop) anything more.
        _passwords(request).refused += 1
        raise _json_error(web.HTTPServiceUnavailable, "busy; try again in a moment",
                          **{"Retry-After": "1"})
    pair, source = throttle_keys(username, address)
    async with pool(request).acquire() as conn:
        wait = await web_sql.reserve_login_attempt(conn, [pair, source], FAILURE_WINDOW,
                                                   wait_for_key)
        found = None if wait else await web_sql.user_for_login(conn, username)
    if wait:
        log.warning("login_rate_limited", username=username, address=address,
                    retry_after_s=round(wait, 1))
        raise _json_error(web.HTTPTooManyRequests, "too many failed logins; try again later",
                          **{"Retry-After": str(max(1, math.ceil(wait)))})
    try:
        ok = await _passwords(request).verify(found[1] if found else None, password)
    except PasswordBusy:
        async with pool(request).acquire() as conn:
            await web_sql.give_back_login_attempt(conn, [], [pair, source])
        raise _json_error(web.HTTPServiceUnavailable, "busy; try again in a moment",
                          **{"Retry-After": "1"}) from None
    if not ok or found is None:
        log.warning("login_failed", username=username, address=address)  # no password
        raise _json_error(web.HTTPUnauthorized, "wrong user name or password")
    user = found[0]
    async with pool(request).acquire() as conn:
        await web_sql.give_back_login_attempt(conn, [pair], [source])
        token, csrf = await web_sql.new_session(conn, user.id, SESSION_LIFETIME)
    log.info("login", username=user.username, role=user.role)
    response = ok_response({"user": _me(user), "csrf_token": csrf})
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                        max_age=int(SESSION_LIFETIME.total_seconds()),
                        secure=secure_request(request))
    return response


@allow(*ROLES)
async def logout(request: web.Request) -> web.Response:
    """End the session; with a bearer token, that token stops working."""
    token = request.cookies.get(COOKIE)
    bearer = bearer_token(request)
    async with pool(request).acquire() as conn:
        if bearer:
            await web_sql.revoke_token_value(conn, bearer)
        elif token:
            await web_sql.end_session(conn, token)
    response = ok_response({"logged_out": True})
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
    async with pool(request).acquire() as conn:
        if token:  # the page needs its CSRF token again after a reload
            found = await web_sql.session_user(conn, token)
            if found is not None:
                body["csrf_token"] = found[1]
        # The zone the pages show times in: a client user reads its client's time, staff
        # the answering company's (company_timezone).
        zone = await conn.fetchval("SELECT timezone FROM clients WHERE code = $1",
                                   user.client) if user.client else None
    body["timezone"] = zone or config(request).company_timezone
    return ok_response(body)
