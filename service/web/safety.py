"""What every HTTP response and request goes through: security headers, clean errors, a
safe request id, a safe ``next`` after login.

* Headers from OWASP's secure-headers list on *every* response (API, pages, static files,
  errors, the live stream): a Content-Security-Policy with ``frame-ancestors 'none'``,
  ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy``,
  cross-origin isolation, a restrictive ``Permissions-Policy``; ``Strict-Transport-Security``
  when the request came over TLS; API answers are not cached.
* A request the handlers could not foresee never ends as a 500 with a traceback in the
  response or as plain text: errors under ``/api/`` are one-line JSON (``error`` and the
  request id), the traceback goes to the log as one JSON line.  A NUL in the path or query
  is refused up front (PostgreSQL cannot store it).
* ``X-Request-Id`` from the client is kept only if short and plain; otherwise a new one.
* ``/login?next=...`` with a target that could leave the site (``//evil``, ``/\\evil``,
  ``/%09/evil``, ``https://evil``) is redirected to ``/login`` before the page's script
  ever reads it; :func:`safe_next` is the rule.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from service.logs import get_logger
from service.web.auth import secure_request

log = get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
PAGE_CSP_EXTRA = "frame-ancestors 'none'; base-uri 'none'; object-src 'none'; " \
                 "form-action 'self'"
HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "X-Permitted-Cross-Domain-Policies": "none",
}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_request_id(value: str | None) -> str:
    """The client's ``X-Request-Id`` if it is short and plain, else a fresh one.

    >>> safe_request_id("abc-123"), len(safe_request_id("x" * 5000)), len(safe_request_id("a\\nb"))
    ('abc-123', 12, 12)
    """
    if value and _REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex[:12]


def safe_next(value: str | None) -> str:
    """Where to go after login: a path on this site, or ``/``.

    A browser reads ``//host``, ``/\\host`` and ``/<tab>/host`` (tabs and newlines are
    dropped from URLs) as another host, so any backslash or control character, a second
    leading slash, or one made by decoding, sends the user to ``/``.

    >>> [safe_next(v) for v in ("/wallboard?x=1", "//evil", "/\\\\evil.example/",
    ...                          "/\\t/evil.example/", "/%5Cevil.example/", "/%09/evil.example/",
    ...                          "https://evil.example/", "", None, "/%2F/evil")]
    ['/wallboard?x=1', '/', '/', '/', '/', '/', '/', '/', '/', '/']
    """
    if not value or len(value) > 2000:
        return "/"
    for candidate in (value, unquote(value), unquote(unquote(value))):
        if not candidate.startswith("/") or candidate.startswith("//") or \
                _CONTROL.search(candidate):
            return "/"
    return value


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def _json_error(status: int, message: str, request_id: str | None) -> web.Response:
    return web.Response(status=status, content_type="application/json",
                        text=json.dumps({"error": message, "request_id": request_id}))


def error_middleware(request_id_of: Callable[[web.Request], str | None]) -> Any:
    @web.middleware
    async def clean_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        if "\x00" in request.path or "\x00" in request.query_string or \
                "%00" in request.query_string or "%00" in request.raw_path:
            return _json_error(400, "NUL is not allowed in a URL", request_id_of(request))
        if request.path == "/login" and "next" in request.query and \
                safe_next(request.query.get("next")) != request.query.get("next"):
            raise web.HTTPFound("/login")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if not _is_api(request) or exc.content_type == "application/json" or \
                    exc.status < 400:
                raise
            # aiohttp's own 404/405/413 are plain text; an API client reads JSON.
            return _json_error(exc.status, exc.reason, request_id_of(request))
        except Exception:
            log.exception("http_handler_failed")
            return _json_error(500, "internal error; the request id is in the log",
                               request_id_of(request))

    return clean_errors


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: runs for every response, whatever produced it."""
    headers = response.headers
    for name, value in HEADERS.items():
        headers.setdefault(name, value)
    csp = headers.get("Content-Security-Policy")
    if csp is None:
        headers["Content-Security-Policy"] = API_CSP if _is_api(request) else \
            "default-src 'self'; " + PAGE_CSP_EXTRA
    elif "frame-ancestors" not in csp:
        headers["Content-Security-Policy"] = f"{csp.rstrip('; ')}; {PAGE_CSP_EXTRA}"
    if request.path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")
    if secure_request(request):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
