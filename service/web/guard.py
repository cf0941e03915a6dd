"""HTTP connections held to account: a budget of connections, header and request timeouts.

aiohttp alone kept idle and half-sent connections for an hour (its default keep-alive
timeout is 3,630 s), with no cap on how many: 1,000 of them exhausted the process's
descriptors and FastAGI sessions went unanswered.  Here:

* every accepted connection is admitted against the :class:`~service.fdbudget.DescriptorBudget`
  (a share of the descriptors in total, and per source address) or closed at once;
* ``keepalive_timeout`` is the header timeout too: aiohttp (3.9+) arms it when the
  connection is made and closes a connection still waiting for a complete request line and
  headers when it fires, so a slowloris peer holds its socket for at most that long;
* a request whose handler (body read included) has not finished within
  ``http_request_timeout_s`` gets ``408``; long-lived handlers (the live stream) are marked
  with :func:`long_lived` and have their own limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from service.fdbudget import DescriptorBudget
from service.logs import get_logger
from service.logthrottle import Throttle

log = get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_throttle = Throttle()


def long_lived(handler: Handler) -> Handler:
    """Mark a handler that legitimately runs for long (Server-Sent Events)."""
    handler.orikaeshi_long_lived = True  # type: ignore[attr-defined]
    return handler


def request_timeout_middleware(seconds: float) -> Any:
    @web.middleware
    async def request_timeout(request: web.Request, handler: Handler) -> web.StreamResponse:
        if getattr(handler, "orikaeshi_long_lived", False):
            return await handler(request)
        try:
            async with asyncio.timeout(seconds):
                return await handler(request)
        except TimeoutError:
            raise web.HTTPRequestTimeout(
                text='{"error": "request not completed in time"}',
                content_type="application/json") from None

    return request_timeout


class _Admitted(asyncio.Protocol):
    """aiohttp's protocol behind a door: admitted against the budget, or closed at once."""

    __slots__ = ("admitted", "budget", "inner", "source", "trusted")

    def __init__(self, inner: asyncio.Protocol, budget: DescriptorBudget,
                 trusted: tuple[str, ...]) -> None:
        self.inner = inner
        self.budget = budget
        self.trusted = trusted
        self.admitted = False
        self.source = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.source = str(peer[0]) if peer else "?"
        if not self.budget.admit_http(self.source, trusted=self.source in self.trusted):
            held = _throttle.allow("http_refused")
            if held is not None:
                log.warning("http_connection_refused", source=self.source,
                            open=self.budget.http_open, limit=self.budget.http_max,
                            suppressed=held)
            transport.abort()  # type: ignore[attr-defined]
            return
        self.admitted = True
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.admitted:
            self.admitted = False
            self.budget.release_http(self.source)
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()


class GuardedRunner(web.AppRunner):
    """An AppRunner whose sites admit each connection against ``budget``."""

    def __init__(self, app: web.Application, budget: DescriptorBudget,
                 trusted: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.budget = budget
        self.trusted = trusted

    @property
    def server(self) -> Any:
        inner = super().server
        if inner is None:
            return None
        budget, trusted = self.budget, self.trusted
        return lambda: _Admitted(inner(), budget, trusted)
