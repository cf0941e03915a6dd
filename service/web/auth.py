"""Who is asking, and may they: passwords, sessions, tokens, roles, CSRF, rate limits.

* Browser: ``POST /api/login`` sets an HttpOnly, SameSite=Strict session cookie and returns a
  CSRF token; every state-changing request made with the cookie must echo it in
  ``X-CSRF-Token``.
* API: ``Authorization: Bearer ork_...`` (``orikaeshi users token``); no CSRF (no ambient
  credential).
* Roles: admin, supervisor, operator, client.  A handler declares who may call it; a client
  user's queries are limited to its own client in SQL, and anything else is 404.
* Failed logins: counted per (address, user name) and per address in the database (shared
  by every instance), atomically, before the password is checked; past a few free attempts
  each further one waits twice as long as the one before (:func:`login_wait`).  The owner,
  from an address that has not failed, is never locked out by someone guessing at their name.
* Passwords are checked in a small thread pool (:class:`PasswordWorkers`): argon2 takes a
  fifth of a second of CPU, and on the event loop a login storm stalled call routing.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
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
# Free attempts before the waits begin: one source trying one name, one source trying any.
FREE_PER_NAME = 5
FREE_PER_ADDRESS = 30
MAX_WAIT_S = FAILURE_WINDOW.total_seconds()


FIRST_WAIT_S = 30.0


def login_wait(free: int) -> Callable[[int, float], float]:
    """The throttle rule for one key: after ``free`` failures, the next attempt waits
    30 s after the last one, then 1 min, 2, 4, 8 (capped at the 15-minute window): a guesser
    gets a few dozen tries an hour, the owner who mistyped waits half a minute.

    >>> rule = login_wait(5)
    >>> rule(4, 0.0), rule(5, 0.0), rule(5, 31.0), rule(8, 40.0), rule(50, 0.0)
    (0.0, 30.0, 0.0, 200.0, 900.0)
    """
    def wait(failures: int, since_last_s: float) -> float:
        if failures < free:
            return 0.0
        delay = min(MAX_WAIT_S, FIRST_WAIT_S * 2.0 ** min(failures - free, 20))
        return max(0.0, delay - since_last_s)

    return wait


def throttle_keys(username: str, address: str) -> tuple[str, str]:
    """(the key of this source trying this name, the key of this source)."""
    return f"p:{address[:100]}:{username[:200]}", f"a:{address[:100]}"


_PER_NAME, _PER_ADDRESS = login_wait(FREE_PER_NAME), login_wait(FREE_PER_ADDRESS)


def wait_for_key(key: str, failures: int, since_last_s: float) -> float:
    """Seconds a key must still wait: the per-name rule for ``p:`` keys, else per address."""
    rule = _PER_NAME if key.startswith("p:") else _PER_ADDRESS
    return rule(failures, since_last_s)


def _lowest_priority() -> None:
    """Run this worker thread at nice 19 (Linux: a thread id is a process id to
    ``setpriority``).  Where the loop and a hash share a core, the scheduler then gives the
    loop, which answers FastAGI, almost all of it: logins wait, calls do not."""
    import contextlib
    import os
    import threading

    if hasattr(os, "setpriority"):
        # Not permitted here: the bounded pool still limits the damage.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


class PasswordBusy(Exception):
    """More password checks are waiting than the pool may queue: try again shortly."""


class PasswordWorkers:
    """argon2 off the event loop, in a bounded pool (argon2-cffi releases the GIL), with a
    bounded queue: a flood of logins waits for its turn or is refused at once, and never
    takes the CPU time the FastAGI route needs on the loop."""

    def __init__(self, workers: int = 1, max_waiting: int = 16) -> None:
        self.workers = workers
        self.max_waiting = max_waiting
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2",
                                        initializer=_lowest_priority)
        self._in_flight = 0
        self.checked = 0
        self.refused = 0

    @property
    def full(self) -> bool:
        """No room for another check: refuse before any other work is done for it."""
        return self._in_flight >= self.workers + self.max_waiting

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.full:
            self.refused += 1
            raise PasswordBusy()
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._in_flight -= 1

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Check a password; ``None`` (no such user) is checked against a dummy hash, so the
        time taken does not tell which names exist."""
        self.checked += 1
        ok: bool = await self._run(verify_password, password_hash or _DUMMY_HASH, password)
        return ok and password_hash is not None

    async def hash(self, password: str) -> str:
        result: str = await self._run(hash_password, password)
        return result

    def close(self) -> None:
        # Not waiting: a check in progress ends on its own within a fraction of a second.
        self._pool.shutdown(wait=False, cancel_futures=True)

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


def _trusted_proxy(request: web.Request) -> bool:
    from service.appkeys import CONFIG

    config = request.app.get(CONFIG)
    return bool(config and request.remote and request.remote in config.trust_proxy)


def client_address(request: web.Request) -> str:
    """The address a request came from: the peer, or behind a proxy listed in
    ``trust_proxy`` the address that proxy appended to ``X-Forwarded-For`` (anything
    earlier in that header was written by the client and proves nothing)."""
    if _trusted_proxy(request):
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        if forwarded and len(forwarded) <= 64:
            return forwarded
    return request.remote or "?"


def secure_request(request: web.Request) -> bool:
    """Did the browser use TLS?  Directly, or at a proxy listed in ``trust_proxy`` that says
    so in ``X-Forwarded-Proto`` (from anyone else that header is ignored)."""
    if request.secure:
        return True
    return _trusted_proxy(request) and \
        request.headers.get("X-Forwarded-Proto", "").strip().lower() == "https"


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()[:200] or None
    return None


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
        bearer = bearer_token(request)
        async with pool.acquire(timeout=5) as conn:
            if bearer is not None:
                user = await web_sql.token_user(conn, bearer)
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
