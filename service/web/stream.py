"""The live stream: Server-Sent Events of call, ring and alert changes, on every instance.

Each instance LISTENs on ``orikaeshi_calls`` (the ledger writer of whichever instance holds
the PBX notifies after each commit) and fans the messages out to its connected pages.  Every
page has a bounded queue: a page that cannot keep up gets ``event: resync`` (reload your
state) instead of growing this process's memory.  A client user only receives its client's
events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import asyncpg
from aiohttp import web

from service.ledger.notify import CHANNEL
from service.logs import get_logger
from service.store.db import TRANSIENT_ERRORS, listening
from service.web.auth import STAFF, allow, client_scope, current_user
from service.web.guard import long_lived

log = get_logger(__name__)

QUEUE_SIZE = 256
KEEPALIVE_S = 15.0


class Subscriber:
    __slots__ = ("clients", "lagging", "queue", "user_id")

    def __init__(self, clients: list[str] | None, user_id: int | None = None) -> None:
        self.clients = clients
        self.user_id = user_id
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.lagging = False

    def offer(self, event: dict[str, Any]) -> None:
        if self.clients is not None and event.get("client") not in self.clients:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagging = True


_SHUTDOWN: dict[str, Any] = {"kind": "shutdown"}


class Broadcaster:
    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.received = 0
        self.listening = asyncio.Event()
        self.closing = False

    async def shutdown(self, app: web.Application) -> None:
        """``on_shutdown``: end every open stream now, rather than after the server's
        shutdown timeout (pages reconnect to another instance, or to this one restarted)."""
        self.closing = True
        for subscriber in list(self.subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                subscriber.queue.put_nowait(_SHUTDOWN)
            if subscriber.queue.full():
                subscriber.queue.get_nowait()
                subscriber.queue.put_nowait(_SHUTDOWN)

    def streams_of(self, user_id: int) -> int:
        return sum(1 for s in self.subscribers if s.user_id == user_id)

    def publish(self, event: dict[str, Any]) -> None:
        self.received += 1
        for subscriber in list(self.subscribers):
            subscriber.offer(event)

    def _on_notify(self, *args: object) -> None:
        try:
            event = json.loads(str(args[3]))
        except ValueError:
            return
        if isinstance(event, dict):
            self.publish(event)
            if event.get("kind") == "call" and event.get("escalated") and \
                    not event.get("ended_at"):
                self.publish({**event, "kind": "alert", "alert": "escalation"})

    async def run(self, pool: asyncpg.Pool) -> None:
        while True:
            try:
                async with listening(pool, CHANNEL, self._on_notify) as conn:
                    closed = asyncio.Event()
                    conn.add_termination_listener(lambda _conn, done=closed: done.set())
                    self.listening.set()
                    # Pages reload their state after a gap in the stream.
                    self.publish({"kind": "resync"})
                    await closed.wait()
            except TRANSIENT_ERRORS as exc:
                log.warning("stream_listen_failed", error=str(exc) or type(exc).__name__)
            finally:
                self.listening.clear()
            await asyncio.sleep(1.0)


def _too_many(message: str) -> web.HTTPTooManyRequests:
    return web.HTTPTooManyRequests(text=json.dumps({"error": message}),
                                   content_type="application/json",
                                   headers={"Retry-After": "10"})


@long_lived
@allow(*STAFF, "client")
async def stream(request: web.Request) -> web.StreamResponse:
    """The live stream.  Each user may hold ``stream_max_per_user`` of them (a page per
    screen), the instance ``stream_max_total``: a user opening hundreds gets 429, never the
    descriptors routing needs."""
    from service.appkeys import BROADCASTER, CONFIG

    broadcaster: Broadcaster = request.app[BROADCASTER]
    config = request.app[CONFIG]
    user = current_user(request)
    if len(broadcaster.subscribers) >= config.stream_max_total:
        raise _too_many("too many live streams on this instance")
    if broadcaster.streams_of(user.id) >= config.stream_max_per_user:
        raise _too_many(f"at most {config.stream_max_per_user} live streams per user")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    if broadcaster.closing:
        raise web.HTTPServiceUnavailable()
    # Counted before the first await, so concurrent opens cannot all pass the caps.
    subscriber = Subscriber(client_scope(request), user.id)
    broadcaster.subscribers.add(subscriber)
    try:
        await response.prepare(request)
        await response.write(b"event: hello\ndata: {}\n\n")
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE_S):
                    event = await subscriber.queue.get()
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if event is _SHUTDOWN:
                break
            if subscriber.lagging:
                subscriber.lagging = False
                while not subscriber.queue.empty():
                    subscriber.queue.get_nowait()
                event = {"kind": "resync"}
            data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
            await response.write(f"event: {event.get('kind', 'call')}\ndata: {data}\n\n"
                                 .encode())
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        broadcaster.subscribers.discard(subscriber)
    return response
