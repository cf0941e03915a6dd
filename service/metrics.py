"""Metrics in Prometheus's text format (``GET /metrics``).

``prometheus_client`` writes the exposition format (escaping, histogram buckets, ``# TYPE``
lines) and is maintained by the Prometheus project itself, so it is used rather than a
hand-written renderer.  Each application has its own ``CollectorRegistry`` (tests run
several apps in one process; nothing is a module global).

Two kinds of figures:

* measured as things happen: FastAGI sessions (latency histogram per script and result,
  routing decisions per action), repeat-lookup latency, calls ended per PBX and outcome (by
  the instance that leads that PBX's ledger);
* read at scrape time from the parts that keep them: AMI events, bad and refused events,
  link state and ledger lag per PBX, spool size, records dead-lettered, delivery failures
  (from PostgreSQL), live streams, refused connections, restarted tasks, login pool use.

Served on the web port for admins (a bearer token of an admin user), and, with
``metrics_port`` set, without authentication on ``metrics_host`` (default loopback) for a
Prometheus that scrapes locally.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from agi import variables
from service.logs import get_logger
from service.routing.repeat import RepeatHistory, RepeatLookup
from service.store.db import TRANSIENT_ERRORS
from service.supervise import RESTARTS
from service.web.auth import allow

log = get_logger(__name__)

_ACTION = re.compile(re.escape(variables.ACTION) + r"=([a-z_]+)")
# FastAGI answers in about a millisecond; the buckets resolve that and the seconds of trouble.
AGI_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def decision_of(commands: list[str]) -> str | None:
    """The routing action a route session sent (``ROUTE_ACTION=queue`` in its MSet).

    >>> decision_of(['EXEC MSet "ROUTE_CLIENT=KSL,ROUTE_ACTION=closed"'])
    'closed'
    >>> decision_of(["SET VARIABLE X 1"]) is None
    True
    """
    for command in commands:
        match = _ACTION.search(command)
        if match:
            return match.group(1)
    return None


class Metrics:
    """The registry of one application, and the hooks the parts call."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.agi_seconds = Histogram(
            "orikaeshi_agi_session_seconds", "FastAGI session time, headers to close",
            ["script", "result"], buckets=AGI_BUCKETS, registry=self.registry)
        self.agi_decisions = Counter(
            "orikaeshi_agi_decisions", "Routing decisions of the route AGI", ["action"],
            registry=self.registry)
        self.repeat_seconds = Histogram(
            "orikaeshi_repeat_lookup_seconds", "Repeat-caller lookup time on a call's path",
            ["result"], buckets=AGI_BUCKETS, registry=self.registry)
        self.calls = Counter(
            "orikaeshi_calls_ended", "Calls ended, by PBX and outcome (counted by the "
            "instance leading the PBX's ledger)", ["pbx", "outcome", "direction"],
            registry=self.registry)
        self._counted: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.delivery_failures = 0
        self.sources: dict[str, Callable[[], Any]] = {}
        self.registry.register(_StateCollector(self))

    # -- hooks -------------------------------------------------------------------------------

    def agi_session(self, script: str, seconds: float, result: str,
                    commands: list[str]) -> None:
        self.agi_seconds.labels(script or "?", result).observe(seconds)
        if script == "route":
            action = decision_of(commands)
            self.agi_decisions.labels(action if action in variables.ACTIONS else
                                      "none").inc()

    def timed_lookup(self, lookup: RepeatLookup) -> RepeatLookup:
        """``lookup`` with its latency observed (also when it fails or is cancelled)."""
        histogram = self.repeat_seconds

        async def timed(client: str, caller_e164: str, now: datetime, window_s: float,
                        exclude_uniqueid: str | None = None) -> RepeatHistory:
            started = time.perf_counter()
            result = "error"
            try:
                history = await lookup(client, caller_e164, now, window_s,
                                       exclude_uniqueid=exclude_uniqueid)
                result = "ok"
                return history
            finally:
                histogram.labels(result).observe(time.perf_counter() - started)

        return timed

    async def on_written(self, records: list[Any]) -> None:
        """Ledger writer hook: count each call once when its record first shows an end."""
        for kind, row in records:
            if kind != "call" or row.get("ended_at") is None or not row.get("outcome"):
                continue
            key = (row["pbx_id"], row["linkedid"])
            if key in self._counted:
                continue
            self._counted[key] = None
            if len(self._counted) > 100_000:  # late rewrites come within minutes
                self._counted.popitem(last=False)
            self.calls.labels(row["pbx_id"], row["outcome"], row.get("direction") or "?").inc()


def chain(*hooks: Callable[[list[Any]], Awaitable[None]]
          ) -> Callable[[list[Any]], Awaitable[None]]:
    """Several ``on_written`` hooks as one, in order."""
    async def each(records: list[Any]) -> None:
        for hook in hooks:
            await hook(records)

    return each


class _StateCollector(Collector):
    """Figures read from the running parts at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        app = self.metrics.sources.get("app")
        state = app() if app else None
        yield from _pbx_metrics(state)
        yield from _service_metrics(state, self.metrics)


def _pbx_metrics(app: Any) -> Iterator[Any]:
    from service.appkeys import PIPELINES

    pipelines = app.get(PIPELINES, {}) if app is not None else {}
    families: dict[str, Any] = {
        "events": CounterMetricFamily("orikaeshi_ami_events", "AMI events read", labels=["pbx"]),
        "bad": CounterMetricFamily("orikaeshi_ami_bad_messages",
                                   "AMI messages that could not be parsed", labels=["pbx"]),
        "refused": CounterMetricFamily("orikaeshi_ami_events_refused",
                                       "AMI events refused at the ledger's edge",
                                       labels=["pbx"]),
        "repaired": CounterMetricFamily("orikaeshi_ami_events_repaired",
                                        "AMI events with a value removed or cut at the edge",
                                        labels=["pbx"]),
        "connects": CounterMetricFamily("orikaeshi_ami_connects", "AMI logins",
                                        labels=["pbx"]),
        "up": GaugeMetricFamily("orikaeshi_ami_up", "1 while logged in to the PBX's AMI",
                                labels=["pbx"]),
        "lag": GaugeMetricFamily("orikaeshi_ledger_lag_seconds",
                                 "Newest applied event's age when applied", labels=["pbx"]),
        "live": GaugeMetricFamily("orikaeshi_live_calls", "Calls in progress",
                                  labels=["pbx"]),
        "spool": GaugeMetricFamily("orikaeshi_spool_bytes",
                                   "Ledger records waiting in the spool for the database",
                                   labels=["pbx"]),
        "dead": CounterMetricFamily("orikaeshi_ledger_records_dead_lettered",
                                    "Records PostgreSQL refused, kept aside", labels=["pbx"]),
        "written": CounterMetricFamily("orikaeshi_ledger_records_written",
                                       "Ledger records committed", labels=["pbx"]),
    }
    for pbx_id, p in pipelines.items():
        stats = p.client.stats
        families["events"].add_metric([pbx_id], stats.events)
        families["bad"].add_metric([pbx_id], stats.bad_messages)
        families["refused"].add_metric([pbx_id], p.fanout.rejected)
        families["repaired"].add_metric([pbx_id], p.fanout.repaired)
        families["connects"].add_metric([pbx_id], stats.connects)
        families["up"].add_metric([pbx_id], 1 if p.client.logged_in.is_set() else 0)
        families["lag"].add_metric([pbx_id], p.ingest.lag_s)
        families["live"].add_metric([pbx_id], len(p.machine.calls))
        families["spool"].add_metric([pbx_id], _size(p.writer.spool.path))
        families["dead"].add_metric([pbx_id], p.writer.records_rejected)
        families["written"].add_metric([pbx_id], p.writer.records_written)
    yield from families.values()


def _size(path: Any) -> int:
    try:
        return int(path.stat().st_size)
    except OSError:
        return 0


def _service_metrics(app: Any, metrics: Metrics) -> Iterator[Any]:
    from service.appkeys import AGI, BROADCASTER, FD_BUDGET, PASSWORDS

    streams = GaugeMetricFamily("orikaeshi_live_streams", "Open live streams (SSE)")
    streams.add_metric([], len(app[BROADCASTER].subscribers) if app is not None else 0)
    yield streams
    failures = GaugeMetricFamily("orikaeshi_message_deliveries_failed",
                                 "受電報告 deliveries given up on (state failed)")
    failures.add_metric([], metrics.delivery_failures)
    yield failures
    restarts = CounterMetricFamily("orikaeshi_task_restarts",
                                   "Service loops restarted after ending", labels=["task"])
    for name, count in RESTARTS.counts.items():
        restarts.add_metric([name], count)
    yield restarts
    if app is None:
        return
    budget = app.get(FD_BUDGET)
    if budget is not None:
        conns = GaugeMetricFamily("orikaeshi_connections_open", "Open connections",
                                  labels=["kind"])
        conns.add_metric(["http"], budget.http_open)
        conns.add_metric(["agi"], budget.agi_open)
        yield conns
        refused = CounterMetricFamily("orikaeshi_connections_refused",
                                      "Connections refused by the descriptor budget",
                                      labels=["kind"])
        refused.add_metric(["http"], budget.http_refused)
        refused.add_metric(["agi"], budget.agi_refused)
        yield refused
    agi = app.get(AGI)
    if agi is not None:
        agi_refused = CounterMetricFamily("orikaeshi_agi_refused",
                                          "FastAGI sessions refused", labels=["why"])
        agi_refused.add_metric(["not_a_pbx"], agi.refused_source)
        agi_refused.add_metric(["busy"], agi.refused)
        yield agi_refused
    passwords = app.get(PASSWORDS)
    if passwords is not None:
        checks = CounterMetricFamily("orikaeshi_password_checks",
                                     "argon2 password checks", labels=["result"])
        checks.add_metric(["checked"], passwords.checked)
        checks.add_metric(["refused_busy"], passwords.refused)
        yield checks


async def refresh_from_database(app: web.Application, metrics: Metrics) -> None:
    """The figures PostgreSQL keeps (read once per scrape, one small query)."""
    from service.appkeys import POOL

    pool = app.get(POOL)
    if pool is None:
        return
    try:
        async with pool.acquire(timeout=2) as conn:
            metrics.delivery_failures = int(await conn.fetchval(
                "SELECT count(*) FROM message_deliveries WHERE state = 'failed'") or 0)
    except TRANSIENT_ERRORS as exc:
        log.warning("metrics_database_unavailable", error=str(exc) or type(exc).__name__)


async def exposition(app: web.Application, metrics: Metrics) -> web.Response:
    await refresh_from_database(app, metrics)
    response = web.Response(body=generate_latest(metrics.registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


@allow("admin")
async def metrics_endpoint(request: web.Request) -> web.Response:
    """``GET /metrics`` on the web port: admins only (a Prometheus scrape job uses an admin
    user's bearer token)."""
    from service.appkeys import METRICS

    return await exposition(request.app, request.app[METRICS])


async def metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """With ``metrics_port`` set: ``/metrics`` without authentication on its own port
    (``metrics_host``, loopback by default), for a Prometheus on the same host."""
    from service.appkeys import CONFIG, METRICS

    config = app[CONFIG]
    if not config.metrics_port:
        yield
        return
    metrics = app[METRICS]

    async def scrape(request: web.Request) -> web.Response:
        return await exposition(app, metrics)

    side = web.Application()
    side.router.add_get("/metrics", scrape)
    runner = web.AppRunner(side, access_log=None, keepalive_timeout=config.http_header_timeout_s)
    await runner.setup()
    site = web.TCPSite(runner, config.metrics_host, config.metrics_port)
    await site.start()
    log.info("metrics_listening", host=config.metrics_host, port=config.metrics_port)
    try:
        yield
    finally:
        await runner.cleanup()
