"""The FastAGI server: panoramisk's ``Application``, hardened at the root.

panoramisk 1.4's traps, fixed here once for every route:

* its header loop (``while b'\\n\\n' not in buffer: buffer += await reader.read(100)``)
  spins forever when Asterisk closes early: reads return ``b''`` for ever -> the headers are
  read with ``readuntil`` under a timeout and a size limit, and EOF ends the session;
* ``add_route`` wraps plain functions with ``asyncio.coroutine``, gone in Python 3.11 -> plain
  functions are awaited through a small wrapper;
* ``send_command`` waits for a reply without a timeout and mis-reads multi-line ``520``
  replies and ``HANGUP`` lines -> every command has a timeout, ``520`` is read to its end,
  ``HANGUP`` is recorded and the real reply read after it;
* timeouts are kept by one watchdog for all sessions (a deadline per session, checked a few
  times a second) rather than a timer per command: thousands of commands a second cost no
  timer churn, and a session past its deadline is aborted all the same;
* no limit on concurrent sessions, no graceful shutdown -> both, here;
* no access control: anyone reaching the port could write audit and escalation rows -> only
  addresses in ``allow`` (the PBXs; default loopback) are served, each with at most
  ``max_per_source`` sessions at once, and every session is admitted against the process's
  descriptor budget (:mod:`service.fdbudget`) so that HTTP can never take the last sockets.

Routes receive an :class:`AgiRequest` and should only read headers, call a pure policy and
set variables.  A route that raises is logged; the session is closed, and the dialplan's
fallback takes the call (see dialplan/orikaeshi.conf): a call is never left hanging.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from panoramisk.fast_agi import Application, Request

from agi.protocol import (
    AgiProtocolError,
    AgiReply,
    is_multiline_start,
    parse_headers,
    parse_reply,
    quote,
)
from service.fdbudget import DescriptorBudget
from service.logs import get_logger
from service.logthrottle import Throttle

log = get_logger(__name__)

Route = Callable[["AgiRequest"], Awaitable[None] | None]
# Told of every session that was served: (script, seconds, answered|ended|failed, the first
# commands sent); the metrics hang here.
SessionObserver = Callable[[str, float, str, list[str]], None]


class AgiError(Exception):
    """The session cannot go on (timeout, EOF, a reply that is not AGI)."""


class AgiHangup(AgiError):
    """The channel hung up (``HANGUP`` or ``511``)."""


class AgiRequest(Request):
    """One FastAGI session: its headers and the commands a route sends."""

    def __init__(self, app: AgiServer, headers: dict[str, str],
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 watch: _Watch) -> None:
        super().__init__(app, headers, reader, writer, encoding="utf-8")
        self.command_timeout = app.command_timeout
        self.watch = watch
        self.hung_up = False
        self.commands = 0

    @property
    def state(self) -> Any:
        """What the server was given to share with routes (routing directory, lookups)."""
        return self.app.state

    @property
    def peer_host(self) -> str | None:
        """The address the session came from: which PBX asks (several PBXs, one service)."""
        peer = self.writer.get_extra_info("peername")
        return str(peer[0]) if peer else None

    async def send_command(self, command: str) -> AgiReply:
        """Send one command line and read its reply (within ``command_timeout``)."""
        if "\n" in command or "\r" in command:
            raise ValueError("an AGI command is one line; quote arguments with agi.quote")
        self.writer.write(command.encode("utf-8") + b"\n")
        self.commands += 1
        if len(self.watch.sent) < 4:
            self.watch.sent.append(command)
        self.watch.expect_within(self.command_timeout, command)
        line = await self._line()
        while line == "HANGUP":
            self.hung_up = True
            line = await self._line()
        if is_multiline_start(line):
            usage = [line]
            while True:
                more = await self._line()
                usage.append(more)
                if more[:4] == line[:3] + " ":
                    break
            self.watch.idle()
            reply = parse_reply(line)
            return AgiReply(reply.code, text="\n".join(usage))
        self.watch.idle()
        try:
            reply = parse_reply(line)
        except AgiProtocolError as exc:
            raise AgiError(str(exc)) from exc
        if reply.code == 511:
            self.hung_up = True
            raise AgiHangup(reply.text)
        return reply

    async def set_variable(self, name: str, value: object) -> AgiReply:
        return await self.send_command(f"SET VARIABLE {name} {quote(value)}")

    async def _line(self) -> str:
        try:
            raw = await self.reader.readuntil(b"\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if self.watch.expired:
                raise TimeoutError(self.watch.expired) from exc
            raise AgiHangup("Asterisk closed the session") from exc
        except asyncio.LimitOverrunError as exc:
            raise AgiError("reply line too long") from exc
        return raw.decode("utf-8", "replace").rstrip("\r\n")


class _Watch:
    """One session's deadlines, kept by the server's watchdog."""

    __slots__ = ("deadline", "expired", "script", "sent", "session_deadline", "waiting_for",
                 "writer")

    def __init__(self, writer: asyncio.StreamWriter, session_timeout: float) -> None:
        now = time.monotonic()
        self.writer = writer
        self.session_deadline = now + session_timeout
        self.deadline = float("inf")
        self.waiting_for = ""
        self.expired: str | None = None
        # For the session observer (metrics): the script, and the first commands sent.
        self.script = ""
        self.sent: list[str] = []

    def expect_within(self, seconds: float, what: str) -> None:
        self.deadline = time.monotonic() + seconds
        self.waiting_for = what

    def idle(self) -> None:
        self.deadline = float("inf")

    def check(self, now: float) -> None:
        if self.expired is None and (now > self.deadline or now > self.session_deadline):
            self.expired = (f"no answer to {self.waiting_for[:60]!r} in time"
                            if now > self.deadline else "session took too long")
            self.writer.transport.abort()


class AgiServer(Application):
    """panoramisk's FastAGI ``Application`` with timeouts, limits and a clean shutdown."""

    def __init__(self, *, state: Any = None, header_timeout: float = 5.0,
                 command_timeout: float = 5.0, session_timeout: float = 30.0,
                 max_sessions: int = 500, max_header_bytes: int = 16384,
                 allow: tuple[str, ...] | None = None, max_per_source: int = 0,
                 budget: DescriptorBudget | None = None,
                 observe: SessionObserver | None = None) -> None:
        super().__init__(default_encoding="utf-8", loop=asyncio.get_running_loop())
        self.state = state
        self.header_timeout = header_timeout
        self.command_timeout = command_timeout
        self.session_timeout = session_timeout
        self.max_sessions = max_sessions
        self.max_header_bytes = max_header_bytes
        self.sessions: set[asyncio.Task[Any]] = set()
        self._watches: set[_Watch] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self.refused = 0
        self.refused_source = 0
        self.failed = 0
        # None: any address (tests); else the PBXs' addresses or networks.
        self.allow = None if allow is None else tuple(
            ipaddress.ip_network(item, strict=False) for item in allow)
        self.max_per_source = max_per_source or max_sessions
        self.budget = budget
        self.observe = observe
        self._by_source: Counter[str] = Counter()
        self._throttle = Throttle()
        self.served = 0
        self._server: asyncio.Server | None = None

    def add_route(self, path: str, endpoint: Route) -> None:
        """Register a route; a plain function works too (panoramisk's fails on 3.11)."""
        if not callable(endpoint):
            raise TypeError(f"route {path!r} is not callable")
        if path in self._route:
            raise ValueError(f"a route {path!r} already exists")
        if inspect.iscoroutinefunction(endpoint):
            self._route[path] = endpoint
            return

        async def call(request: AgiRequest) -> None:
            result = endpoint(request)
            if inspect.isawaitable(result):
                await result

        self._route[path] = call

    async def start(self, host: str, port: int) -> int:
        # asyncio's default backlog (100) overflows when a PBX starts many calls at once: the
        # kernel then drops connections Asterisk believes open, and those calls wait ~13 s
        # before the dialplan's fallback.  Room for every session the cap allows.
        self._server = await asyncio.start_server(
            self.handler, host, port, limit=self.max_header_bytes, reuse_address=True,
            backlog=max(100, self.max_sessions))
        self._watchdog = asyncio.create_task(self._watch_deadlines(), name="agi-watchdog")
        bound: int = self._server.sockets[0].getsockname()[1]
        log.info("agi_listening", host=host, port=bound)
        return bound

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting, let sessions in flight finish for ``grace`` seconds, then cancel."""
        if self._server is not None:
            self._server.close()
        if self.sessions:
            _, pending = await asyncio.wait(list(self.sessions), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None
        if self._server is not None:
            await self._server.wait_closed()

    async def _watch_deadlines(self) -> None:
        tick = max(0.02, min(self.header_timeout, self.command_timeout) / 5)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for watch in list(self._watches):
                watch.check(now)

    async def handler(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if peer else "?"
        if not self.allowed(source):
            # Not a PBX: closed before a byte is read (no headers, no route, no database).
            self.refused_source += 1
            self._log_refusal("agi_refused_source", source=source)
            writer.transport.abort()
            return
        if self._by_source[source] >= self.max_per_source:
            self.refused += 1
            self._log_refusal("agi_refused_source_busy", source=source,
                              sessions=self._by_source[source])
            writer.transport.abort()
            return
        if self.budget is not None and not self.budget.admit_agi():
            self.refused += 1
            self._log_refusal("agi_refused_descriptors", open=self.budget.agi_open)
            writer.transport.abort()
            return
        try:
            await self._admitted(task, reader, writer, source)
        finally:
            if self.budget is not None:
                self.budget.release_agi()

    def allowed(self, source: str) -> bool:
        """Is ``source`` one of the PBX addresses in ``allow``?

        >>> s = AgiServer.__new__(AgiServer)
        >>> s.allow = (ipaddress.ip_network("127.0.0.1/32"),)
        >>> s.allowed("127.0.0.1"), s.allowed("127.0.0.2"), s.allowed("nonsense")
        (True, False, False)
        """
        if self.allow is None:
            return True
        try:
            address = ipaddress.ip_address(source.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.allow)

    def _log_refusal(self, event: str, **fields: object) -> None:
        held = self._throttle.allow(event)
        if held is not None:
            log.warning(event, suppressed=held, **fields)

    async def _admitted(self, task: asyncio.Task[Any], reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter, source: str) -> None:
        if len(self.sessions) >= self.max_sessions:
            # Closing at once makes Asterisk's AGI() return at once, and the dialplan's
            # fallback queues the call: far better than a caller waiting on a full server.
            self.refused += 1
            self._log_refusal("agi_refused_busy", sessions=len(self.sessions))
            writer.close()
            return
        self.sessions.add(task)
        self._by_source[source] += 1
        watch = _Watch(writer, self.session_timeout)
        self._watches.add(watch)
        started = time.perf_counter()
        result = "answered"
        try:
            await self._session(reader, writer, watch)
        except (AgiError, TimeoutError, ConnectionError) as exc:
            result = "ended"
            log.info("agi_session_ended", reason=type(exc).__name__, detail=str(exc)[:200])
        except Exception:
            result = "failed"
            self.failed += 1
            log.exception("agi_route_failed")
        finally:
            if self.observe is not None:
                self.observe(watch.script, time.perf_counter() - started, result, watch.sent)
            self._watches.discard(watch)
            self.sessions.discard(task)
            self._by_source[source] -= 1
            if self._by_source[source] <= 0:
                del self._by_source[source]
            self.served += 1
            # The transport flushes and closes on its own; nothing to wait for.
            writer.close()
            log.debug("agi_session_closed", ms=round((time.perf_counter() - started) * 1000, 2))

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       watch: _Watch) -> None:
        watch.expect_within(self.header_timeout, "the agi_* headers")
        try:
            block = await reader.readuntil(b"\n\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if watch.expired:
                raise AgiError(f"no complete headers within {self.header_timeout}s") from None
            partial = len(getattr(exc, "partial", b""))
            raise AgiError(f"closed before the headers ended ({partial} bytes)") from None
        except asyncio.LimitOverrunError:
            raise AgiError(f"headers larger than {self.max_header_bytes} bytes") from None
        watch.idle()
        headers = parse_headers(block[:-2])
        script = headers.get("agi_network_script", "")
        watch.script = script
        structlog.contextvars.bind_contextvars(agi_script=script,
                                               uniqueid=headers.get("agi_uniqueid"))
        route = self._route.get(script)
        if route is None:
            log.warning("agi_no_route", script=script)
            return
        await route(AgiRequest(self, headers, reader, writer, watch))
