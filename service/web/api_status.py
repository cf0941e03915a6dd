"""HTTP: ``GET /api/status``, the service's own state where supervisors look (the wallboard's
banner): each PBX link up or down and since when, the FastAGI listener, the spool.

A minimal version for the pages; the shape is the one ``/healthz``'s owner serves
(``{"pbx": [{"pbx_id", "host", "port", "state", "since", "last_error"}], "agi", "spool",
"alerts"}``), so the wallboard does not change when the two are unified.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from service.web.auth import allow
from service.web.http import ok


class LinkTracker:
    """When each PBX link last changed state: the AMI client only says whether it is logged
    in now, and a banner must say since when."""

    def __init__(self) -> None:
        self.states: dict[str, tuple[str, datetime]] = {}

    def observe(self, pbx_id: str, up: bool, now: datetime) -> tuple[str, datetime]:
        """The link's state and since when; a change starts a new "since".

        >>> t = LinkTracker()
        >>> a, b = datetime(2026, 1, 1, 9, tzinfo=UTC), datetime(2026, 1, 1, 9, 5, tzinfo=UTC)
        >>> t.observe("p", False, a), t.observe("p", False, b)[1] == a
        (('down', datetime.datetime(2026, 1, 1, 9, 0, tzinfo=datetime.timezone.utc)), True)
        """
        state = "up" if up else "down"
        known = self.states.get(pbx_id)
        if known is None or known[0] != state:
            known = (state, now)
            self.states[pbx_id] = known
        return known


def status_of(app: web.Application, now: datetime) -> dict[str, Any]:
    from service.appkeys import AGI, CONFIG, PBX_LINKS, PIPELINES, STARTED

    tracker = app[PBX_LINKS]
    pipelines = app.get(PIPELINES, {})
    started = datetime.fromtimestamp(app[STARTED], UTC)
    links, alerts, spooling = [], [], []
    for pbx in app[CONFIG].pbxs:
        pipeline: Any = pipelines.get(pbx.pbx_id)
        up = pipeline is not None and pipeline.client.logged_in.is_set()
        # A link never up since this process started is down since the start.
        state, since = tracker.observe(pbx.pbx_id, up, now if pbx.pbx_id in tracker.states
                                       else started)
        error = None if up else ("no AMI session (connecting or refused)"
                                 if pipeline is not None else "not held by this instance")
        links.append({"pbx_id": pbx.pbx_id, "host": pbx.ami_host, "port": pbx.ami_port,
                      "state": state, "since": since, "last_error": error})
        if state == "down":
            alerts.append({"kind": "pbx_down", "message": f"PBX {pbx.pbx_id} "
                           f"({pbx.ami_host}:{pbx.ami_port}) link down", "since": since,
                           "pbx_id": pbx.pbx_id})
        if pipeline is not None and pipeline.writer.degraded:
            spooling.append(pbx.pbx_id)
            alerts.append({"kind": "spooling", "message": f"PBX {pbx.pbx_id}: database "
                           "unreachable, call records are being spooled", "since": now,
                           "pbx_id": pbx.pbx_id})
    agi = app.get(AGI)
    return {"pbx": links,
            "agi": {"listening": agi is not None,
                    "sessions": len(agi.sessions) if agi else 0},
            "spool": {"spooling": bool(spooling), "pbx": spooling},
            "alerts": alerts}


@allow("admin", "supervisor")
async def status(request: web.Request) -> web.Response:
    from service.web.context import now

    return ok(status_of(request.app, now(request)))
