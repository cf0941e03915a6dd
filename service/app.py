"""The service process: one aiohttp application, one event loop.

Long-lived parts (database pool, the ledger pipeline of each PBX, the FastAGI server) start in
``cleanup_ctx`` and are cancelled and awaited on shutdown.  Shared state lives in typed
``web.AppKey``s; nothing is a module global.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import web

from agi.callflows import add_callflow_routes
from agi.context import AgiContext
from agi.escalate import escalate
from agi.route import route
from agi.server import AgiServer
from agi.spy import spy
from service.appkeys import (
    AGI,
    BROADCASTER,
    CLOCK,
    CONFIG,
    DB_URL,
    OPERATOR_STATES,
    PIPELINES,
    POOL,
    REPEAT_LOOKUP,
    ROUTING,
    STARTED,
)
from service.callbacks.escalation import FeatureCodeEscalation, record_feature_code
from service.callbacks.recent import FilteredRepeatLookup, RecentCallers
from service.callbacks.repeat_sql import SqlRepeatLookup, create_lookup_pool
from service.callbacks.worker import CallbackWorker
from service.callflows.runtime import CallFlows
from service.clients.model import Directory
from service.clock import Clock, utc_now
from service.config import Config
from service.eventloop import freeze_startup_objects, loop_name
from service.ledger.notify import CallNotifier
from service.ledger.pipeline import build_pipeline, run_locked
from service.logs import get_logger
from service.messages.delivery import DeliveryWorker, SmtpSettings
from service.routing.cache import RoutingCache
from service.store.db import TRANSIENT_ERRORS, create_pool, database_url, migrate_url
from service.store.web_queries import record_spy_use
from service.web.auth import make_middleware, public
from service.web.operators import OperatorStates
from service.web.routes import setup_routes
from service.web.stream import Broadcaster

log = get_logger(__name__)


CleanupContext = Callable[[web.Application], AsyncIterator[None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def bind_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every log line of a request carries its id, method and path."""
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex[:12]
    with structlog.contextvars.bound_contextvars(request_id=request_id,
                                                 http_method=request.method,
                                                 http_path=request.path):
        response = await handler(request)
        response.headers["X-Request-Id"] = request_id
        return response


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    url = await database_url(config)
    await migrate_url(url)
    app[DB_URL] = url
    app[POOL] = await create_pool(url, max_size=20)
    yield
    await app[POOL].close()


async def ledger_ctx(app: web.Application) -> AsyncIterator[None]:
    """One AMI consumer per configured PBX, each under its advisory lock."""
    config, pool = app[CONFIG], app[POOL]
    notifier = CallNotifier(pool)
    app[PIPELINES] = {pbx.pbx_id: build_pipeline(config, pbx, pool, on_written=notifier,
                                                 taps=[app[OPERATOR_STATES]])
                      for pbx in config.pbxs}
    tasks = []
    for pbx_id, pipeline in app[PIPELINES].items():
        runner = run_locked(pipeline, pool) if config.ami_lock else pipeline.run()
        tasks.append(asyncio.create_task(runner, name=f"ledger-{pbx_id}"))
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def routing_ctx(app: web.Application) -> AsyncIterator[None]:
    """Routing data in memory, kept current from PostgreSQL."""
    cache = RoutingCache(app[CONFIG].clients_file)
    app[ROUTING] = cache
    task = asyncio.create_task(cache.run(app[POOL]), name="routing-cache")
    # Give the first load a moment, so the first calls are routed rather than sent to the
    # dialplan's fallback; routing works without it (fallback) if the database is slow.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(3):
            await cache.changed.wait()
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def max_repeat_window(directory: Directory | None) -> float:
    windows = [c.repeat.window_s for c in (directory.clients.values() if directory else ())
               if c.repeat.enabled]
    return max(windows, default=72 * 3600.0)


async def agi_ctx(app: web.Application) -> AsyncIterator[None]:
    """The FastAGI server with its routes (one module per agi_network_script)."""
    config = app[CONFIG]
    # The repeat lookup has connections of its own, so a busy ledger never delays a call;
    # and it only asks PostgreSQL about callers who called recently at all.
    lookup_pool = await create_lookup_pool(app[DB_URL])
    routing = app[ROUTING]
    recent = RecentCallers(lambda: max_repeat_window(routing.directory), clock=app[CLOCK])
    recent_task = asyncio.create_task(recent.run(app[POOL]), name="recent-callers")
    lookup = app.get(REPEAT_LOOKUP) or FilteredRepeatLookup(SqlRepeatLookup(lookup_pool), recent)

    async def record_escalation(request: FeatureCodeEscalation) -> None:
        await record_feature_code(app[POOL], config.pbxs, request)

    async def record_spy(supervisor: str, operator: str, mode: str) -> None:
        try:
            async with app[POOL].acquire(timeout=2) as conn:
                await record_spy_use(conn, supervisor=supervisor, phone=supervisor,
                                     operator=operator, mode=mode, result="feature_code")
        except TRANSIENT_ERRORS as exc:
            log.warning("spy_audit_not_saved", error=str(exc) or type(exc).__name__)

    context = AgiContext(routing, lookup, clock=app[CLOCK], record_escalation=record_escalation,
                         record_spy=record_spy,
                         callflows=CallFlows(app[POOL], config.pbxs, app[CLOCK]))
    server = AgiServer(state=context, header_timeout=config.agi_header_timeout_s,
                       command_timeout=config.agi_command_timeout_s,
                       max_sessions=config.agi_max_sessions)
    server.add_route("route", route)
    server.add_route("escalate", escalate)
    server.add_route("spy", spy)
    add_callflow_routes(server)
    await server.start(config.agi_host, config.agi_port)
    app[AGI] = server
    yield
    await server.close()
    recent_task.cancel()
    await asyncio.gather(recent_task, return_exceptions=True)
    await lookup_pool.close()


async def web_ctx(app: web.Application) -> AsyncIterator[None]:
    """The live stream's listener, and operators' states saved for every instance."""
    broadcaster = app[BROADCASTER]
    states = app[OPERATOR_STATES]
    tasks = [asyncio.create_task(broadcaster.run(app[POOL]), name="stream-listener"),
             asyncio.create_task(states.run(app[POOL]), name="operator-states")]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """Call-back obligations from the ledger, and delivery of messages to clients."""
    config = app[CONFIG]
    smtp = SmtpSettings(host=config.smtp_host, port=config.smtp_port,
                        sender=config.smtp_sender, username=config.smtp_username or None,
                        password=config.smtp_password or None, starttls=config.smtp_starttls)
    callbacks = CallbackWorker(app[POOL], expire_grace_s=config.callback_expire_after_s,
                               clock=app[CLOCK])
    deliveries = DeliveryWorker(app[POOL], smtp, max_attempts=config.delivery_max_attempts,
                                http_timeout_s=config.delivery_http_timeout_s)
    tasks = [asyncio.create_task(callbacks.run(), name="callback-worker"),
             asyncio.create_task(deliveries.run(), name="deliveries")]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@public
async def health(request: web.Request) -> web.Response:
    """Liveness and what an admin needs to see at a glance."""
    app = request.app
    db_ok = True
    try:
        async with app[POOL].acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")
    except TRANSIENT_ERRORS:
        db_ok = False
    pbxs = {
        pbx_id: {
            "ami_logged_in": p.client.logged_in.is_set(),
            "ami_connects": p.client.stats.connects,
            "events": p.client.stats.events,
            "bad_messages": p.client.stats.bad_messages,
            "live_calls": len(p.machine.calls),
            "spooling": p.writer.degraded,
        }
        for pbx_id, p in app.get(PIPELINES, {}).items()
    }
    ok = db_ok and all(p["ami_logged_in"] for p in pbxs.values())
    routing = app.get(ROUTING)
    directory = routing.directory if routing else None
    agi = app.get(AGI)
    extra = {
        "routing_version": directory.version if directory else None,
        "agi": {"sessions": len(agi.sessions), "served": agi.served, "refused": agi.refused,
                "failed": agi.failed} if agi else None,
    }
    return web.json_response({"ok": ok, "database": db_ok, "pbx": pbxs, **extra,
                              "event_loop": loop_name(),
                              "uptime_s": round(time.time() - app[STARTED], 1)},
                             status=200 if ok else 503)


# Contexts contributed by each area, in start order (areas append theirs here).
CLEANUP_CONTEXTS: list[CleanupContext] = [database_ctx, web_ctx, ledger_ctx, routing_ctx,
                                           agi_ctx, workers_ctx]


def create_app(config: Config, contexts: list[CleanupContext] | None = None,
               clock: Clock = utc_now) -> web.Application:
    app = web.Application(middlewares=[bind_request, make_middleware(lambda a: a[POOL])],
                          client_max_size=1024 * 1024)
    app[CONFIG] = config
    app[CLOCK] = clock
    app[STARTED] = time.time()
    app[BROADCASTER] = Broadcaster()
    app.on_shutdown.append(app[BROADCASTER].shutdown)
    app[OPERATOR_STATES] = OperatorStates()
    for context in contexts if contexts is not None else CLEANUP_CONTEXTS:
        app.cleanup_ctx.append(context)
    app.router.add_get("/healthz", health)
    setup_routes(app)
    return app


async def serve(config: Config) -> None:
    """Run until SIGINT/SIGTERM, then shut every part down in reverse order."""
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.web_host, config.web_port)
    await site.start()
    freeze_startup_objects()
    log.info("serving", web=f"http://{config.web_host}:{config.web_port}/", loop=loop_name())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting_down")
        await runner.cleanup()
