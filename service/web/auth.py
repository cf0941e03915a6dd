"""Who is asking, and may they: passwords, sessions, tokens, roles, CSRF, rate limits.

* Browser: ``POST /api/login`` sets an HttpOnly, SameSite=Strict session cookie and returns a
  CSRF token; every state-changing request made with the cookie must echo it in
  ``X-CSRF-Token``.
* API: ``Authorization: Bearer ork_...`` (``orikaeshi users token``); no CSRF (no ambient
  credential).
* Roles: admin, supervisor, operator, client.  A handler declares who may call it; a client
  user's queries are limited to its own client in SQL, and anything else is 404.
* Failed logins: counted per user name and per address in the database (shared by every
  instance), refused for a while past the limit, logged without the password.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from service.store import web_sql
from service.store.web_sql import User

ROLES = ("admin", "supervisor", "operator", "client")
STAFF = ("admin", "supervisor", "operator")
COOKIE = "orikaeshi_session"
SESSION_LIFETIME = timedelta(hours=12)
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_ADDRESS = 30

_hasher = PasswordHasher()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("a password has at least 8 characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A hash to verify against when the user does not exist, so timing does not tell.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def dummy_verify(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


def allow(*roles: str) -> Callable[[Handler], Handler]:
    """Declare which roles may call a handler (the auth middleware enforces it)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    def mark(handler: Handler) -> Handler:
        handler.orikaeshi_roles = roles  # type: ignore[attr-defined]
        return handler

    return mark


def public(handler: Handler) -> Handler:
    handler.orikaeshi_roles = None  # type: ignore[attr-defined]
    return handler


def current_user(request: web.Request) -> User:
    return request[USER]


def client_scope(request: web.Request) -> list[str] | None:
    """The clients the caller may see (None: all).  Every query takes it."""
    return current_user(request).clients


UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
USER = web.RequestKey("user", User)


def make_middleware(pool_of: Callable[[web.Application], Any]) -> Any:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None or \
                request.path.startswith("/static/"):
            return await handler(request)  # 404/405 as they are; static assets are public
        roles: tuple[str, ...] | bool | None = getattr(handler, "orikaeshi_roles", False)
        if roles is None:
            return await handler(request)  # declared public: pages' HTML, login, health
        if roles is False:
            # Deny by default: a handler nobody declared access for is a mistake.
            raise web.HTTPForbidden(text='{"error": "no access declared for this endpoint"}',
                                    content_type="application/json")
        pool = pool_of(request.app)
        user: User | None = None
        header = request.headers.get("Authorization", "")
        async with pool.acquire(timeout=5) as conn:
            if header.startswith("Bearer "):
                user = await web_sql.token_user(conn, header[7:].strip())
            elif COOKIE in request.cookies:
                found = await web_sql.session_user(conn, request.cookies[COOKIE])
                if found is not None:
                    user, csrf = found
                    if request.method in UNSAFE and not secrets.compare_digest(
                            request.headers.get("X-CSRF-Token", ""), csrf):
                        raise web.HTTPForbidden(text='{"error": "CSRF token missing or wrong"}',
                                                content_type="application/json")
        if user is None:
            if request.path.startswith("/api/"):
                raise web.HTTPUnauthorized(text='{"error": "log in first"}',
                                           content_type="application/json")
            raise web.HTTPFound(f"/login?next={request.path_qs}")
        if isinstance(roles, tuple) and user.role not in roles:
            raise web.HTTPForbidden(text='{"error": "not allowed for your role"}',
                                    content_type="application/json")
        request[USER] = user
        return await handler(request)

    return authenticate
