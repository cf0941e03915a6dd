"""The call flows' FastAGI routes, registered together (docs/callflows.md)."""

from __future__ import annotations

from agi.handraise import handraise
from agi.presence import presence
from agi.recording import recording
from agi.safetynet import safetynet
from agi.server import AgiServer

ROUTES = {"safetynet": safetynet, "handraise": handraise,
          "recording": recording, "presence": presence}


def add_callflow_routes(server: AgiServer) -> None:
    for path, endpoint in ROUTES.items():
        server.add_route(path, endpoint)
