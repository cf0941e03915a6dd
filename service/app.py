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
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from agi.callflows import add_callflow_routes
from agi.context import AgiContext
from agi.escalate import escalate
from agi.outbound_guard import outbound_guard
from agi.route import route
from agi.server import AgiServer
from agi.spy import spy
from service.ami.adapter import AmiClient
from service.appkeys import (
    AGI,
    BROADCASTER,
    CLOCK,
    CONFIG,
    DB_URL,
    FD_BUDGET,
    METRICS,
    OPERATOR_STATES,
    PASSWORDS,
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
from service.clients.startup import check_clients_file
from service.clock import Clock, utc_now
from service.compliance.guard import handset_check
from service.compliance.scheduler import ScheduledCallbacks
from service.config import Config, PbxConfig
from service.eventloop import freeze_startup_objects, loop_name
from service.fdbudget import DescriptorBudget
from service.ledger.notify import CallNotifier
from service.ledger.pipeline import LedgerPipeline, build_pipeline, run_locked
from service.logs import get_logger
from service.messages.delivery import DeliveryWorker, SmtpSettings
from service.metrics import Metrics, chain, metrics_ctx, metrics_endpoint
from service.reconcile_live.worker import ReconcileWorker
from service.routing.cache import RoutingCache
from service.status import RECONCILE_WORKER, STATUS_WATCH, StatusWatch, status
from service.store.db import TRANSIENT_ERRORS, create_pool, database_url, migrate_url
from service.store.web_queries import record_spy_use
from service.supervise import keep_running
from service.web.auth import PasswordWorkers, make_middleware, public
from service.web.guard import GuardedRunner, request_timeout_middleware
from service.web.operators import OperatorStates
from service.web.routes import setup_routes
from service.web.safety import add_security_headers, error_middleware, safe_request_id
from service.web.stream import Broadcaster

log = get_logger(__name__)


CleanupContext = Callable[[web.Application], AsyncIterator[None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def bind_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every log line of a request carries its id, method and path."""
    request_id = safe_request_id(request.headers.get("X-Request-Id"))
    with structlog.contextvars.bound_contextvars(request_id=request_id,
                                                 http_method=request.method,
                                                 http_path=request.path):
        response = await handler(request)
        response.headers["X-Request-Id"] = request_id
        return response


def redact_url(url: str) -> str:
    """The URL without its password, for messages.

    >>> redact_url("postgresql://u:secret@db:5432/x")
    'postgresql://u:***@db:5432/x'
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _request_id(request: web.Request) -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    url = await database_url(config)
    try:
        await migrate_url(url)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # One clear line from the command line (service/cli.py), not a traceback.
        raise ConnectionError(f"cannot use the database at {redact_url(url)}: "
                              f"{type(exc).__name__}: {exc}") from exc
    app[DB_URL] = url
    app[POOL] = await create_pool(url, max_size=20)
    yield
    await app[POOL].close()


async def ledger_ctx(app: web.Application) -> AsyncIterator[None]:
    """One AMI consumer per configured PBX, each under its advisory lock."""
    config, pool = app[CONFIG], app[POOL]
    notifier = chain(CallNotifier(pool), app[METRICS].on_written)
    unrouted = app[STATUS_WATCH].unrouted
    app[PIPELINES] = {pbx.pbx_id: build_pipeline(config, pbx, pool, on_written=notifier,
                                                 taps=[app[OPERATOR_STATES], unrouted])
                      for pbx in config.pbxs}
    for pbx in config.pbxs:
        unrouted.watch(pbx.pbx_id, app[PIPELINES][pbx.pbx_id].machine, pbx.inbound_contexts)
    tasks = []
    for pbx_id, pipeline in app[PIPELINES].items():
        def runner(p: LedgerPipeline = pipeline) -> Coroutine[Any, Any, None]:
            return run_locked(p, pool) if config.ami_lock else p.run()
        tasks.append(asyncio.create_task(keep_running(f"ledger-{pbx_id}", runner),
                                         name=f"ledger-{pbx_id}"))
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def routing_ctx(app: web.Application) -> AsyncIterator[None]:
    """Routing data in memory, kept current from PostgreSQL."""
    cache = RoutingCache(app[CONFIG].clients_file)
    app[ROUTING] = cache
    task = asyncio.create_task(keep_running("routing-cache", lambda: cache.run(app[POOL])),
                               name="routing-cache")
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


def _logged_in_ami(app: web.Application, pbx_id: str) -> AmiClient | None:
    """This instance's logged-in AMI session to a PBX (the call flows' AGI routes act over
    it: ringing supervisors, presence feature codes), or None where it holds none."""
    pipeline = app.get(PIPELINES, {}).get(pbx_id)
    client: AmiClient | None = pipeline.client if pipeline is not None else None
    return client if client is not None and client.logged_in.is_set() else None


async def agi_ctx(app: web.Application) -> AsyncIterator[None]:
    """The FastAGI server with its routes (one module per agi_network_script)."""
    config = app[CONFIG]
    # The repeat lookup has connections of its own, so a busy ledger never delays a call;
    # and it only asks PostgreSQL about callers who called recently at all.
    lookup_pool = await create_lookup_pool(app[DB_URL])
    routing = app[ROUTING]
    recent = RecentCallers(lambda: max_repeat_window(routing.directory), clock=app[CLOCK])
    recent_task = asyncio.create_task(
        keep_running("recent-callers", lambda: recent.run(app[POOL])), name="recent-callers")
    lookup = app[METRICS].timed_lookup(
        app.get(REPEAT_LOOKUP) or FilteredRepeatLookup(SqlRepeatLookup(lookup_pool), recent))

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
                         check_outbound=handset_check(app[POOL], config.pbxs),
                         callflows=CallFlows(app[POOL], config.pbxs, app[CLOCK],
                                             ami_of=lambda pbx_id: _logged_in_ami(app, pbx_id)))
    server = AgiServer(state=context, header_timeout=config.agi_header_timeout_s,
                       command_timeout=config.agi_command_timeout_s,
                       max_sessions=config.agi_max_sessions, allow=config.agi_allow,
                       max_per_source=config.agi_max_per_source, budget=app[FD_BUDGET],
                       observe=app[METRICS].agi_session)
    server.add_route("route", route)
    server.add_route("escalate", escalate)
    server.add_route("spy", spy)
    server.add_route("outbound_guard", outbound_guard)
    add_callflow_routes(server)
    port = await server.start(config.agi_host, config.agi_port)
    app[AGI] = server
    app[STATUS_WATCH].agi_listening = f"{config.agi_host}:{port}"
    yield
    await server.close()
    recent_task.cancel()
    await asyncio.gather(recent_task, return_exceptions=True)
    await lookup_pool.close()


async def web_ctx(app: web.Application) -> AsyncIterator[None]:
    """The live stream's listener, and operators' states saved for every instance."""
    broadcaster = app[BROADCASTER]
    states = app[OPERATOR_STATES]
    tasks = [asyncio.create_task(keep_running("stream-listener",
                                              lambda: broadcaster.run(app[POOL])),
                                 name="stream-listener"),
             asyncio.create_task(keep_running("operator-states", lambda: states.run(app[POOL])),
                                 name="operator-states")]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def smtp_settings(config: Config) -> SmtpSettings:
    return SmtpSettings(host=config.smtp_host, port=config.smtp_port,
                        sender=config.smtp_sender, username=config.smtp_username or None,
                        password=config.smtp_password or None, starttls=config.smtp_starttls)


async def workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """Call-back obligations from the ledger, and delivery of messages to clients."""
    config = app[CONFIG]
    smtp = smtp_settings(config)
    callbacks = CallbackWorker(app[POOL], expire_grace_s=config.callback_expire_after_s,
                               clock=app[CLOCK])
    deliveries = DeliveryWorker(app[POOL], smtp, max_attempts=config.delivery_max_attempts,
                                http_timeout_s=config.delivery_http_timeout_s)
    tasks = [asyncio.create_task(keep_running("callback-worker", callbacks.run),
                                 name="callback-worker"),
             asyncio.create_task(keep_running("deliveries", deliveries.run), name="deliveries")]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def reconcile_ctx(app: web.Application) -> AsyncIterator[None]:
    """Reconciliation that runs by itself (PBXs with ``reconcile_source`` set)."""
    worker = ReconcileWorker(app[POOL], app[CONFIG], clock=app[CLOCK])
    app[RECONCILE_WORKER] = worker  # /healthz shows its state (service/status.py)
    task = asyncio.create_task(worker.run(), name="reconcile")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# Alerts that make /healthz answer 503 (a PBX link down does too, from its state).
# Reconciliation stopped or differences left: the books no longer keep themselves.
_UNHEALTHY = ("unrouted_calls", "reconcile_stopped", "reconcile_differences")


@public
async def health(request: web.Request) -> web.Response:
    """Liveness and what an admin needs to see at a glance: :func:`service.status.status`
    (each PBX link, the FastAGI listener, the spool, alerts), the database, the routing
    version."""
    app = request.app
    db_ok = True
    try:
        async with app[POOL].acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")
    except TRANSIENT_ERRORS:
        db_ok = False
    state = status(app)
    # Calls recorded without DID or routing decision are a broken deployment, not a quiet
    # day: /healthz says so (503) as for a PBX that is away.
    ok = db_ok and all(p["state"] == "up" for p in state["pbx"]) and \
        not any(a["kind"] in _UNHEALTHY for a in state["alerts"])
    routing = app.get(ROUTING)
    directory = routing.directory if routing else None
    return web.json_response({"ok": ok, "database": db_ok, **state,
                              "routing_version": directory.version if directory else None,
                              "event_loop": loop_name(),
                              "uptime_s": round(time.time() - app[STARTED], 1)},
                             status=200 if ok else 503)


async def _close_passwords(app: web.Application) -> None:
    app[PASSWORDS].close()
async def reports_ctx(app: web.Application) -> AsyncIterator[None]:
    """The monthly report on the 1st, pushes of missed calls / voicemails / messages,
    reminders of overdue call backs (service/reports/schedule.py); sent by the delivery
    worker of ``workers_ctx``."""
    from service.reports.schedule import ReportWorker

    config = app[CONFIG]
    worker = ReportWorker(app[POOL], clock=app[CLOCK], interval_s=config.report_interval_s,
                          company=config.company_name, font=config.report_font)
    task = asyncio.create_task(worker.run(), name="report-worker")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)




async def clients_file_ctx(app: web.Application) -> AsyncIterator[None]:
    """Say whether the configured clients file is the loaded version (or load it)."""
    config = app[CONFIG]
    await check_clients_file(app[POOL], config.clients_file, load=config.clients_file_load)
    yield


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Scheduled call backs, placed at their time under the outbound policy."""
    config = app[CONFIG]

    def ami() -> tuple[PbxConfig, AmiClient | None]:
        pbx = config.pbxs[0]
        pipeline = app.get(PIPELINES, {}).get(pbx.pbx_id)
        client = pipeline.client if pipeline is not None else None
        return pbx, client if client is not None and client.logged_in.is_set() else None

    worker = ScheduledCallbacks(app[POOL], ami, clock=app[CLOCK])
    task = asyncio.create_task(worker.run(), name="scheduled-callbacks")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

async def callee_messages_ctx(app: web.Application) -> AsyncIterator[None]:
    """Messages to callees, sent when the policy allows (held outside the window)."""
    from service.compliance.callee_messages import CalleeMessageWorker

    config = app[CONFIG]
    worker = CalleeMessageWorker(app[POOL], smtp_settings(config), clock=app[CLOCK],
                                 fax_gateway=config.fax_gateway)
    task = asyncio.create_task(keep_running("callee-messages", worker.run),
                               name="callee-messages")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# Contexts contributed by each area, in start order (areas append theirs here).
CLEANUP_CONTEXTS: list[CleanupContext] = [database_ctx, web_ctx, ledger_ctx, routing_ctx,
                                           agi_ctx, workers_ctx, metrics_ctx, reports_ctx,
                                           reconcile_ctx, clients_file_ctx, scheduler_ctx,
                                           callee_messages_ctx]


def create_app(config: Config, contexts: list[CleanupContext] | None = None,
               clock: Clock = utc_now) -> web.Application:
    app = web.Application(middlewares=[bind_request, error_middleware(_request_id),
                                       request_timeout_middleware(config.http_request_timeout_s),
                                       make_middleware(lambda a: a[POOL])],
                          client_max_size=1024 * 1024)
    app[CONFIG] = config
    app[CLOCK] = clock
    app.on_response_prepare.append(add_security_headers)
    app[METRICS] = Metrics()
    app[METRICS].sources["app"] = lambda: app
    app[FD_BUDGET] = DescriptorBudget(reserve=config.fd_reserve,
                                      http_share=config.http_fd_share,
                                      per_source=config.http_max_per_source)
    app[STARTED] = time.time()
    app[BROADCASTER] = Broadcaster()
    app.on_shutdown.append(app[BROADCASTER].shutdown)
    app[OPERATOR_STATES] = OperatorStates()
    app[STATUS_WATCH] = StatusWatch()
    app[PASSWORDS] = PasswordWorkers(config.login_workers, config.login_queue)
    app.on_cleanup.append(_close_passwords)
    for context in contexts if contexts is not None else CLEANUP_CONTEXTS:
        app.cleanup_ctx.append(context)
    app.router.add_get("/healthz", health)
    app.router.add_get("/metrics", metrics_endpoint)
    setup_routes(app)
    return app


async def serve(config: Config) -> None:
    """Run until SIGINT/SIGTERM, then shut every part down in reverse order."""
    app = create_app(config)
    # keepalive_timeout is also the header timeout (service/web/guard.py).
    runner = GuardedRunner(app, app[FD_BUDGET], config.trust_proxy, access_log=None,
                           keepalive_timeout=config.http_header_timeout_s)
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
