"""The reconciler's state for /healthz and GET /api/status, without a query per request.

The worker reads it from the database once per pass (:func:`read_health`: the small
``reconcile_runs`` rows, where each pass stores the calls still ``unknown`` after the settle
window that it counted through the partial index ``calls_unknown``, and the differences left
per PBX); :func:`service.status.status` turns the last reading into a dict and alerts with
:func:`reconcile_view`, a pure function of that reading, the worker's own state and the
clock.  Several instances: each reads the same rows, whichever instance ran the pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True)
class PbxReading:
    last_pass: datetime | None     # the last pass, succeeded or not
    last_ok: datetime | None       # the last pass that succeeded
    error: str | None              # why the last pass failed (None: it succeeded)
    unknown_calls: int             # still unknown after the settle window (last pass)
    differences: int               # left in reconcile_differences, not resolved
    oldest: datetime | None        # the oldest difference's first_seen


@dataclass(frozen=True)
class Reading:
    read_at: datetime
    pbxs: dict[str, PbxReading]


async def read_health(conn: asyncpg.Connection, pbx_ids: list[str], now: datetime
                      ) -> Reading:
    """One reading of every reconciled PBX (two small queries; no scan of the ledger)."""
    runs = {r["pbx_id"]: r for r in await conn.fetch(
        "SELECT pbx_id, ran_at, ok_at, error, unknown_calls FROM reconcile_runs "
        "WHERE pbx_id = ANY ($1)", pbx_ids)}
    left = {r["pbx_id"]: r for r in await conn.fetch(
        """SELECT pbx_id, count(*) AS n, min(first_seen) AS oldest
           FROM reconcile_differences WHERE pbx_id = ANY ($1) AND resolved_at IS NULL
           GROUP BY pbx_id""",
        pbx_ids)}
    pbxs = {}
    for pbx_id in pbx_ids:
        run, diff = runs.get(pbx_id), left.get(pbx_id)
        pbxs[pbx_id] = PbxReading(
            last_pass=run["ran_at"] if run else None, last_ok=run["ok_at"] if run else None,
            error=run["error"] if run else None,
            unknown_calls=int(run["unknown_calls"]) if run else 0,
            differences=int(diff["n"]) if diff else 0, oldest=diff["oldest"] if diff else None)
    return Reading(now, pbxs)


def stall_after_s(interval_s: float) -> float:
    """How long without a successful pass before the reconciler counts as stopped: three
    missed passes, and a minute for a slow one.

    >>> stall_after_s(60.0)
    240.0
    """
    return 3 * interval_s + 60.0


def reconcile_view(reading: Reading | None, sources: dict[str, str], *, running: bool,
                   started_at: datetime, now: datetime, interval_s: float,
                   settle_after_s: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each reconciled PBX's state and the alerts, from the worker's last reading.

    ``sources``: PBX → ``reconcile_source`` (PBXs with ``off`` are left out by the caller).
    ``running``: the worker's loop is alive.  Alerts:

    * ``reconcile_stopped``: the loop ended, or no pass has succeeded for
      :func:`stall_after_s` (since the last success, or since the worker started);
    * ``reconcile_differences``: a difference first seen longer ago than the settle window
      is left (judged at the request's time from the oldest one's ``first_seen``: a pass
      only judges calls over for that long, and a difference that outlived another window
      will not settle by itself: someone must look at /reconcile).

    >>> from datetime import UTC, timedelta
    >>> t0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    >>> ok = PbxReading(t0, t0, None, 2, 1, t0)
    >>> def kinds(now, running=True):
    ...     pbxs, alerts = reconcile_view(Reading(t0, {"p1": ok}), {"p1": "database"},
    ...         running=running, started_at=t0, now=now, interval_s=60, settle_after_s=120)
    ...     return pbxs[0]["lag_s"], sorted(a["kind"] for a in alerts)
    >>> kinds(t0 + timedelta(seconds=90))      # a difference younger than the window
    (90.0, [])
    >>> kinds(t0 + timedelta(seconds=150))
    (150.0, ['reconcile_differences'])
    >>> kinds(t0 + timedelta(seconds=300))     # no pass for 5 minutes
    (300.0, ['reconcile_differences', 'reconcile_stopped'])
    >>> kinds(t0 + timedelta(seconds=10), running=False)[1]
    ['reconcile_stopped']
    """
    pbxs: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    limit = stall_after_s(interval_s)
    for pbx_id, source in sorted(sources.items()):
        got = reading.pbxs.get(pbx_id) if reading else None
        last_ok = got.last_ok if got else None
        lag = (now - (last_ok or started_at)).total_seconds()
        stopped = not running or lag > limit
        pbxs.append({
            "pbx_id": pbx_id, "source": source,
            "last_pass": got.last_pass.isoformat() if got and got.last_pass else None,
            "last_ok": last_ok.isoformat() if last_ok else None,
            "lag_s": round(lag, 1) if last_ok else None, "error": got.error if got else None,
            "unknown_calls": got.unknown_calls if got else 0,
            "differences": got.differences if got else 0,
            "stopped": stopped,
            "read_at": reading.read_at.isoformat() if reading else None})
        if stopped:
            why = "its loop ended" if not running else (
                f"no pass succeeded for {int(lag)} s" if last_ok else
                f"no pass has succeeded since the service started {int(lag)} s ago")
            error = f" (last error: {got.error})" if got and got.error else ""
            alerts.append({"kind": "reconcile_stopped", "pbx_id": pbx_id,
                           "since": (last_ok or started_at).timestamp(),
                           "message": f"PBX {pbx_id}: reconciliation with Asterisk's records "
                                      f"({source}) stopped reading: {why}{error}. Unknown "
                                      "calls are not being settled."})
        if got and got.oldest is not None and \
                (now - got.oldest).total_seconds() >= settle_after_s:
            alerts.append({"kind": "reconcile_differences", "pbx_id": pbx_id,
                           "since": got.oldest.timestamp(), "count": got.differences,
                           "message": f"PBX {pbx_id}: {got.differences} difference(s) between "
                                      "the ledger and Asterisk's records are left, the oldest "
                                      f"first seen {int((now - got.oldest).total_seconds())} s "
                                      "ago; see /reconcile."})
    return pbxs, alerts
