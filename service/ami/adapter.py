"""The one place where panoramisk's AMI client is hardened.

panoramisk 1.4 is used for what it does well (building actions with ids, collecting the
responses of list actions such as ``CoreShowChannels``); its traps are fixed here at the root:

* each TCP read was decoded on its own with ``errors='ignore'`` -> framing on bytes, strict
  UTF-8 per message (:mod:`service.ami.parser`);
* its ping never checked the answer -> a ping that is not answered within ``ping_timeout``
  aborts the connection, which is then re-established with exponential backoff;
* actions sent while disconnected never resolved -> they fail at once with
  :class:`AmiNotConnected`, and every action has a timeout;
* an exception in an event callback closed the connection -> handlers run in a consumer task
  that logs and goes on;
* events were dispatched as they were parsed -> they go through one bounded FIFO, in order,
  with the socket paused while the FIFO is full;
* pending actions were silently re-sent after a reconnect (a second Originate!) -> they fail
  with :class:`AmiConnectionLost` and the caller decides.

Resynchronisation after every login (``snapshot_actions``, e.g. ``CoreShowChannels``) is placed
at its position in the stream: Asterisk's answer describes the PBX at the moment it was
written, so events read before the answer are handled before the snapshot and events read
after it, after.  (Handling the snapshot first would close calls whose hang-up is still
queued, and miss those created just before it.)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from panoramisk import actions as pk_actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from service.ami.parser import AmiMessage, AmiParser, BadMessage, Banner
from service.logs import get_logger
from service.logthrottle import Throttle

log = get_logger(__name__)

EventHandler = Callable[[list[AmiMessage]], Awaitable[None] | None]
SnapshotHandler = Callable[[str, list[AmiMessage]], Awaitable[None] | None]


class AmiError(Exception):
    """Base class of AMI adapter errors."""


class AmiNotConnected(AmiError):
    """An action was sent while there is no logged-in AMI session."""


class AmiConnectionLost(AmiError):
    """The session ended before the action got its answer."""


class AmiActionTimeout(AmiError):
    """No answer within the action's timeout."""


class AmiLoginFailed(AmiError):
    """Asterisk refused the credentials."""


class AmiActionError(AmiError):
    """Asterisk answered ``Response: Error``."""


def check_action(action: Mapping[str, Any]) -> None:
    """Refuse header injection: no key or value may hold CR or LF.

    >>> check_action({"Action": "Ping"})
    >>> check_action({"Action": "Originate", "CallerID": "x\\r\\nAction: Command"})
    Traceback (most recent call last):
    ...
    ValueError: AMI header 'CallerID' holds CR/LF
    """
    for key, value in action.items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in [key, *values]:
            text = str(item)
            if "\r" in text or "\n" in text:
                raise ValueError(f"AMI header {key!r} holds CR/LF")


def backoff_delay(failures: int, low: float, high: float) -> float:
    """Seconds before reconnect attempt ``failures``: doubling from ``low`` up to ``high``,
    jittered by 20 % so that several instances do not knock in step.  The exponent is capped:
    a PBX away for days must not overflow a float."""
    return min(high, low * 2 ** min(max(failures - 1, 0), 30)) * random.uniform(0.8, 1.2)


def _describe(exc: Exception, host: str, port: int) -> str:
    """One line an admin can act on: what failed, and where."""
    if isinstance(exc, TimeoutError):
        return f"no answer from {host}:{port} in time"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {host}:{port} (Asterisk down, or AMI off/elsewhere)"
    return str(exc) or type(exc).__name__


@dataclass
class AmiStats:
    connects: int = 0
    events: int = 0
    bad_messages: int = 0
    handler_errors: int = 0
    paused: int = 0


class HardenedAMIProtocol(AMIProtocol):
    """panoramisk's protocol with byte framing and no event dispatch of its own."""

    def __init__(self, client: AmiClient) -> None:
        super().__init__()
        self.client = client
        self.parser = AmiParser(client.max_message_bytes)
        loop = asyncio.get_running_loop()
        self.banner: asyncio.Future[str] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.factory = self.client
        self.encoding = "utf-8"

    def data_received(self, data: bytes) -> None:
        events: list[AmiMessage] = []
        for item in self.parser.feed(data):
            if isinstance(item, AmiMessage):
                action_id = item.get("ActionID")
                if action_id is not None and action_id in self.client._snapshots:
                    if self._collect_snapshot(action_id, item):
                        # Everything read before the answer goes first (see module doc).
                        if events:
                            self.client._enqueue(events)
                            events = []
                        self.client._enqueue_snapshot(action_id)
                elif action_id is not None and action_id in self.responses:
                    self._handle_response(action_id, item)
                elif "Event" in item:
                    events.append(item)
                # else: a response to an action of an earlier session; nothing waits for it.
            elif isinstance(item, Banner):
                self.version = item.version
                if not self.banner.done():
                    self.banner.set_result(item.version)
            elif isinstance(item, BadMessage):
                self.client.stats.bad_messages += 1
                # A peer sending junk by the thousand must not flood the log: a few lines a
                # minute, each saying how many were held back (all are counted).
                held = self.client.throttle.allow("ami_bad_message")
                if held is not None:
                    log.warning("ami_bad_message", pbx=self.client.pbx_id, reason=item.reason,
                                sample=item.sample[:80].decode("utf-8", "replace"),
                                suppressed=held)
        if events:
            self.client._enqueue(events)

    def _collect_snapshot(self, action_id: str, item: AmiMessage) -> bool:
        """Gather a list answer; True when its last message arrived."""
        _, messages = self.client._snapshots[action_id]
        messages.append(item)
        if item.get("Response") == "Error":
            return True
        return item.get("EventList", "").lower() == "complete" or (
            "Event" in item and item["Event"].endswith("Complete"))

    def _handle_response(self, action_id: str, item: AmiMessage) -> None:
        action = self.responses[action_id]
        message = Message(dict(item))
        if action.add_message(message):
            self.responses.pop(action_id, None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for action in list(self.responses.values()):
            if not action.future.done():
                action.future.set_exception(AmiConnectionLost("AMI connection lost"))
        self.responses.clear()
        if not self.banner.done():
            self.banner.set_exception(AmiConnectionLost("closed before the banner"))
        if not self.lost.done():
            self.lost.set_result(None)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()


class AmiClient:
    """One supervised AMI session to one PBX, re-established for as long as ``run`` runs.

    Events go to ``on_events`` in batches, in wire order, from a single consumer task; an
    exception aborts only its batch (a handler that must isolate single events does so
    itself).  After every login each of ``snapshot_actions`` is sent and its complete answer
    goes to ``on_snapshot(action_name, messages)`` at its place in the event order.
    """

    def __init__(
        self,
        pbx_id: str,
        host: str,
        port: int,
        username: str,
        secret: str,
        on_events: EventHandler,
        on_snapshot: SnapshotHandler | None = None,
        snapshot_actions: tuple[str, ...] = (),
        *,
        connect_timeout: float = 5.0,
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
        action_timeout: float = 10.0,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        queue_max: int = 20000,
        max_message_bytes: int = 256 * 1024,
    ) -> None:
        self.pbx_id = pbx_id
        self.host, self.port = host, port
        self.username, self.secret = username, secret
        self.on_events = on_events
        self.on_snapshot = on_snapshot
        self.snapshot_actions = snapshot_actions
        self.connect_timeout = connect_timeout
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.action_timeout = action_timeout
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self.queue_max = queue_max
        self.max_message_bytes = max_message_bytes
        self.stats = AmiStats()
        self.throttle = Throttle()
        self.protocol: HardenedAMIProtocol | None = None
        self.logged_in = asyncio.Event()
        # The link as /healthz shows it: since when it is up (logged in) or down (epoch s,
        # None before the first attempt ended), and the last reason it went down or failed.
        self.link_since: float | None = None
        self.last_error: str | None = None
        self._link_up = False
        self._queue: deque[list[AmiMessage] | _Snapshot] = deque()
        self._snapshots: dict[str, tuple[str, list[AmiMessage]]] = {}
        self._queued_events = 0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._paused = False
        self._snapshot_seq = 0

    # -- public API --------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep a session up until cancelled.  Never returns otherwise."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._consume(), name=f"ami-consume-{self.pbx_id}")
            await self._supervise()

    async def send_action(self, action: Mapping[str, Any], timeout: float | None = None,
                          as_list: bool = False) -> Any:
        """Send one action and wait for its answer: the response Message, or with
        ``as_list`` every message up to the list's ``...Complete`` event.

        panoramisk guesses "a list follows" from the response text (it waits for ever after
        ``QueueAdd``'s "Added interface to queue"); here the caller says so.
        """
        check_action(action)
        protocol = self.protocol
        if protocol is None or protocol.closed or not self._transport_ok(protocol):
            raise AmiNotConnected(f"no AMI session to {self.pbx_id}")
        if not self.logged_in.is_set() and str(action.get("Action", "")).lower() != "login":
            raise AmiNotConnected(f"AMI session to {self.pbx_id} is not logged in")
        pk_action = pk_actions.Action(dict(action), as_list=as_list)
        future = protocol.send(pk_action, as_list=as_list)
        try:
            async with asyncio.timeout(timeout or self.action_timeout):
                return await future
        except TimeoutError:
            protocol.responses.pop(pk_action.id, None)
            raise AmiActionTimeout(f"{action.get('Action')} not answered by {self.pbx_id} "
                                   f"within {timeout or self.action_timeout}s") from None

    async def drained(self) -> None:
        """Wait until every event received so far has been handled."""
        while self._queue or not self._idle.is_set():
            await self._idle.wait()
            await asyncio.sleep(0)

    # -- connection supervision --------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await self._session()
                self.last_error = "the PBX closed the AMI connection"
                # The PBX closed the session (restart, network): events are being missed
                # until the reconnect, so an operator must see it.
                log.warning("ami_disconnected", pbx=self.pbx_id)
            except (OSError, TimeoutError, AmiError) as exc:
                self.last_error = _describe(exc, self.host, self.port)
                log.warning("ami_session_ended", pbx=self.pbx_id, error=self.last_error)
            finally:
                self.logged_in.clear()
                self._set_link(False)
                self.protocol = None
                self._resume_reading()
            if time.monotonic() - started > 30:
                failures = 0
            failures += 1
            delay = backoff_delay(failures, self.reconnect_min, self.reconnect_max)
            log.info("ami_reconnect_in", pbx=self.pbx_id, seconds=round(delay, 2))
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        # asyncio.timeout, never wait_for, here and in every loop of the service: on 3.11
        # wait_for drops a cancellation that arrives as the awaited step completes, and the
        # reconnect loop then outlives its shutdown (seen as a test hung in teardown).
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            transport, protocol = await loop.create_connection(
                lambda: HardenedAMIProtocol(self), self.host, self.port)
        self.protocol = protocol
        try:
            async with asyncio.timeout(self.connect_timeout):
                version = await protocol.banner
            login = await self.send_action(
                {"Action": "Login", "Username": self.username, "Secret": self.secret,
                 "Events": "on"}, timeout=self.connect_timeout)
            if getattr(login, "response", "") != "Success":
                raise AmiLoginFailed(f"{self.pbx_id}: login as {self.username!r} refused by "
                                     f"{self.host}:{self.port}: "
                                     f"{getattr(login, 'message', login)}")
            self.stats.connects += 1
            self.logged_in.set()
            self._set_link(True)
            log.info("ami_logged_in", pbx=self.pbx_id, version=version)
            for name in self.snapshot_actions:
                self._snapshot_seq += 1
                action_id = f"orikaeshi-snapshot-{self._snapshot_seq}"
                self._snapshots[action_id] = (name, [])
                message = {"Action": name, "ActionID": action_id}
                protocol.send(pk_actions.Action(message, as_list=True), as_list=True)
                protocol.responses.pop(action_id, None)  # answered in stream order instead
            async with asyncio.TaskGroup() as group:
                pinger = group.create_task(self._ping_loop(protocol))
                await protocol.lost
                pinger.cancel()
        finally:
            self._snapshots.clear()
            protocol.banner.cancel()  # no one waits for it any more (no-op once it came)
            if not protocol.closed:
                transport.abort()

    async def _ping_loop(self, protocol: HardenedAMIProtocol) -> None:
        while not protocol.closed:
            await asyncio.sleep(self.ping_interval)
            try:
                await self.send_action({"Action": "Ping"}, timeout=self.ping_timeout)
            except AmiActionTimeout:
                log.warning("ami_ping_unanswered", pbx=self.pbx_id, timeout=self.ping_timeout)
                protocol.transport.abort()
                return
            except AmiError:
                return

    def _set_link(self, up: bool) -> None:
        if up != self._link_up or self.link_since is None:
            self._link_up = up
            self.link_since = time.time()

    @staticmethod
    def _transport_ok(protocol: HardenedAMIProtocol) -> bool:
        transport = getattr(protocol, "transport", None)
        return transport is not None and not transport.is_closing()

    # -- ordered, bounded event FIFO -----------------------------------------------------------

    def _enqueue(self, events: list[AmiMessage]) -> None:
        self._queue.append(events)
        self._queued_events += len(events)
        self.stats.events += len(events)
        self._idle.clear()
        self._wakeup.set()
        if self._queued_events > self.queue_max and not self._paused and self.protocol:
            self._paused = True
            self.stats.paused += 1
            self.protocol.transport.pause_reading()

    def _enqueue_snapshot(self, action_id: str) -> None:
        name, messages = self._snapshots.pop(action_id)
        self._queue.append(_Snapshot(name, messages))
        self._idle.clear()
        self._wakeup.set()

    def _resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            protocol = self.protocol
            if protocol is not None and not protocol.closed:
                with contextlib.suppress(RuntimeError):
                    protocol.transport.resume_reading()

    async def _consume(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            item = self._queue.popleft()
            try:
                if isinstance(item, _Snapshot):
                    if self.on_snapshot is None:
                        continue
                    result = self.on_snapshot(item.action, item.messages)
                else:
                    self._queued_events -= len(item)
                    if self._paused and self._queued_events <= self.queue_max // 2:
                        self._resume_reading()
                    result = self.on_events(item)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.stats.handler_errors += 1
                log.exception("ami_handler_failed", pbx=self.pbx_id,
                              item=getattr(item, "action", "events"))


@dataclass(frozen=True)
class _Snapshot:
    """Queue marker: the complete answer of a snapshot action, at its stream position."""

    action: str
    messages: list[AmiMessage]
