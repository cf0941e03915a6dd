"""The service's own state, where people look: ``/healthz`` and ``GET /api/status`` (the
wallboard's banner) both return :func:`status`.

Shape (kept stable for the pages)::

    {"pbx":   [{"pbx_id", "host", "port", "state": "up" | "down", "since", "last_error",
                "events", "live_calls"}],
     "agi":   {"listening": "host:port" | None, "sessions", "served", "refused", "failed"},
     "spool": {"<pbx_id>": {"depth": batches waiting, "bytes": their size, "spooling": bool}},
     "reconcile": [{"pbx_id", "source", "last_pass", "last_ok", "lag_s", "error",
                    "unknown_calls", "differences", "stopped", "read_at"}],
     "alerts": [{"kind", "message", "since", "pbx_id"}]}

``since`` values are epoch seconds.  Alerts: ``pbx_down`` (the AMI link), ``spooling``
(records wait on disk for the database), ``unrouted_calls`` (inbound calls reach a queue with
no DID or routing decision: the service watches the wrong dialplan context; see
:class:`UnroutedCalls`), ``reconcile_stopped`` and ``reconcile_differences`` (continuous
reconciliation stopped reading, or left differences past the settle window; see
service/reconcile_live/health.py: read once per pass, never per request).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from service.appkeys import AGI, CONFIG, PIPELINES
from service.ledger.machine import LedgerMachine
from service.ledger.model import Call
from service.reconcile_live.worker import ReconcileWorker
from service.web.auth import allow


def missing_route_facts(call: Call) -> list[str]:
    """What a queued inbound call lacks that a correctly watched call always has.

    The DID is read when the caller's channel is created in an inbound context, the routing
    decision (``ROUTE_ACTION``, set by the route AGI or the fallback) only for channels of
    such calls; a call first seen when it joins a queue has neither.  A missing caller
    number alone is a withheld number, not a fault.
    """
    missing = []
    if not call.did:
        missing.append("DID")
    if not call.route_action:
        missing.append("routing decision")
    if missing and not call.caller_number:
        missing.append("caller number")
    return missing


@dataclass
class UnroutedAlert:
    since: float
    last_at: float
    calls: int
    queue: str
    missing: list[str]
    context: str | None


class UnroutedCalls:
    """A pipeline tap: when a caller joins a queue, look at the ledger's live call.  Calls
    without DID or routing decision raise an alert that stays until a call arrives whole
    (the configuration was fixed and the service restarted)."""

    def __init__(self, clock: Callable[[], float] = time.time, remember: int = 1000) -> None:
        self.clock = clock
        self.machines: dict[str, LedgerMachine] = {}
        self.inbound_contexts: dict[str, tuple[str, ...]] = {}
        self.alerts: dict[str, UnroutedAlert] = {}
        self._created_in: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._remember = remember

    def watch(self, pbx_id: str, machine: LedgerMachine,
              inbound_contexts: tuple[str, ...]) -> None:
        self.machines[pbx_id] = machine
        self.inbound_contexts[pbx_id] = inbound_contexts

    def __call__(self, pbx_id: str, events: list[Mapping[str, str]]) -> None:
        machine = self.machines.get(pbx_id)
        if machine is None:
            return
        for event in events:
            name = event.get("Event")
            if name == "Newchannel" and event.get("Uniqueid") == event.get("Linkedid"):
                self._created_in[(pbx_id, event.get("Linkedid", ""))] = event.get("Context", "")
                while len(self._created_in) > self._remember:
                    self._created_in.popitem(last=False)
            elif name == "QueueCallerJoin":
                # The ledger has applied the whole batch already: a short call may have
                # ended within it (it is then among the recently ended).
                linkedid = event.get("Linkedid", "")
                call = machine.calls.get(linkedid) or machine.ended.get(linkedid)
                if call is None or call.direction != "inbound":
                    continue
                self._judge(pbx_id, call, event)

    def _judge(self, pbx_id: str, call: Call, event: Mapping[str, str]) -> None:
        missing = missing_route_facts(call)
        if not missing:
            self.alerts.pop(pbx_id, None)
            return
        now = self.clock()
        context = self._created_in.get((pbx_id, call.linkedid))
        alert = self.alerts.get(pbx_id)
        if alert is None:
            self.alerts[pbx_id] = UnroutedAlert(now, now, 1, event.get("Queue", ""), missing,
                                                context)
        else:
            alert.calls += 1
            alert.last_at, alert.queue, alert.missing = now, event.get("Queue", ""), missing
            alert.context = context or alert.context

    def items(self) -> list[dict[str, Any]]:
        out = []
        for pbx_id, alert in sorted(self.alerts.items()):
            watched = ", ".join(self.inbound_contexts.get(pbx_id, ())) or "none"
            where = f" (created in [{alert.context}])" if alert.context else ""
            out.append({
                "kind": "unrouted_calls", "pbx_id": pbx_id, "since": alert.since,
                "message": (f"PBX {pbx_id}: {alert.calls} inbound call(s) reached queue "
                            f"{alert.queue or '?'} without {', '.join(alert.missing)}"
                            f"{where}: the service does not watch the context calls arrive "
                            f"in (inbound_contexts: {watched}); no call back or repeat "
                            "caller can be found for them. Run `orikaeshi dialplan check`.")})
        return out


@dataclass(frozen=True)
class SpoolCount:
    lines: int = 0
    size: int = 0
    head: bytes = b""  # the file's first bytes when counted: a spool emptied and refilled
                       # since starts with another batch


_HEAD = 256


def spool_depth(path: Path, known: SpoolCount = SpoolCount()) -> SpoolCount:
    """Batches (one line each) and bytes waiting in a spool file, counted without parsing
    them.  From an earlier count ``known`` only what was appended since is read: a spool only
    grows until it is emptied (a long outage's spool is large, and /healthz is asked often)."""
    lines, offset = known.lines, known.size
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD)
            end = handle.seek(0, 2)
            if end < offset or head[:len(known.head)] != known.head:
                lines, offset = 0, 0  # emptied (and perhaps refilled) since: count afresh
            handle.seek(offset)
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
                offset += len(chunk)
    except OSError:
        return SpoolCount()
    return SpoolCount(lines, offset, head)


class StatusWatch:
    """What :func:`status` needs beyond the running parts: the unrouted-calls tap, where the
    FastAGI server listens, and since when each condition has been seen."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.unrouted = UnroutedCalls(clock)
        self.agi_listening: str | None = None
        self._since: dict[str, float] = {}
        self._spools: dict[Path, SpoolCount] = {}

    def spool(self, path: Path, spooling: bool) -> tuple[int, int]:
        """Batches and bytes in the spool at ``path`` (:func:`spool_depth`, reading only what
        was appended since the last request)."""
        if not spooling:
            self._spools.pop(path, None)
            return 0, 0
        counted = spool_depth(path, self._spools.get(path, SpoolCount()))
        self._spools[path] = counted
        return counted.lines, counted.size

    def since(self, key: str, active: bool) -> float | None:
        """When ``key`` was first seen active (this process's view); forgotten when not."""
        if not active:
            self._since.pop(key, None)
            return None
        return self._since.setdefault(key, self.clock())


STATUS_WATCH = web.AppKey("status_watch", StatusWatch)
RECONCILE_WORKER = web.AppKey("reconcile_worker", ReconcileWorker)


def status(app: web.Application) -> dict[str, Any]:
    """PBX links, the FastAGI listener, the spool and the alerts, as one dict."""
    config = app[CONFIG]
    pipelines = app.get(PIPELINES, {})
    watch = app.get(STATUS_WATCH) or StatusWatch()
    pbxs: list[dict[str, Any]] = []
    spool: dict[str, dict[str, Any]] = {}
    alerts: list[dict[str, Any]] = []
    for pbx in config.pbxs:
        pipeline = pipelines.get(pbx.pbx_id)
        client = pipeline.client if pipeline is not None else None
        up = client is not None and client.logged_in.is_set()
        entry = {
            "pbx_id": pbx.pbx_id,
            "host": client.host if client else pbx.ami_host,
            "port": client.port if client else pbx.ami_port,
            "state": "up" if up else "down",
            "since": client.link_since if client else None,
            "last_error": client.last_error if client else "not started",
            "events": client.stats.events if client else 0,
            "live_calls": len(pipeline.machine.calls) if pipeline else 0,
        }
        pbxs.append(entry)
        if not up:
            why = f": {entry['last_error']}" if entry["last_error"] else ""
            alerts.append({"kind": "pbx_down", "pbx_id": pbx.pbx_id,
                           "since": entry["since"] or watch.since(f"down:{pbx.pbx_id}", True),
                           "message": f"PBX {pbx.pbx_id} ({entry['host']}:{entry['port']}) "
                                      f"is not connected{why}. Calls are still routed; the "
                                      "ledger will resynchronise when it is back."})
        else:
            watch.since(f"down:{pbx.pbx_id}", False)
        if pipeline is not None:
            spooling = pipeline.writer.degraded
            depth, size = watch.spool(pipeline.writer.spool.path, spooling)
            spool[pbx.pbx_id] = {"depth": depth, "bytes": size, "spooling": spooling}
            since = watch.since(f"spool:{pbx.pbx_id}", spooling)
            if spooling:
                alerts.append({"kind": "spooling", "pbx_id": pbx.pbx_id, "since": since,
                               "message": f"PBX {pbx.pbx_id}: the database is not reachable; "
                                          f"{depth} batch(es) of call records are kept on "
                                          "disk and will be written when it is back."})
    alerts += watch.unrouted.items()
    reconcile: list[dict[str, Any]] = []
    worker = app.get(RECONCILE_WORKER)
    if worker is not None:
        reconcile, reconcile_alerts = worker.view()
        alerts += reconcile_alerts
    agi = app.get(AGI)
    agi_state: dict[str, Any] = {"listening": None, "sessions": 0, "served": 0,
                                 "refused": 0, "failed": 0}
    # The AGI server is a panoramisk Application, a dict: with no route called yet it may be
    # empty, hence falsy, which once made this say "agi": null while the port listened.
    if agi is not None:
        agi_state = {"listening": watch.agi_listening, "sessions": len(agi.sessions),
                     "served": agi.served, "refused": agi.refused, "failed": agi.failed}
    return {"pbx": pbxs, "agi": agi_state, "spool": spool, "reconcile": reconcile,
            "alerts": alerts}


@allow("admin", "supervisor")
async def api_status(request: web.Request) -> web.Response:
    """The service's state for the wallboard's banner (the same as /healthz's)."""
    return web.json_response(status(request.app))
