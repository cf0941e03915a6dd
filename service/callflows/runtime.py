"""What the call-flow AGI routes need from the service: the database, the PBXs, the clock.

The AGI routes (agi/safetynet.py, agi/handraise.py, agi/presence.py, agi/recording.py) only
read headers and call these; the dialplan never waits on them for its own moves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.ami.adapter import AmiClient
from service.config import PbxConfig


@dataclass
class CallFlows:
    pool: asyncpg.Pool
    pbxs: Sequence[PbxConfig]
    clock: Callable[[], datetime]
    # This instance's logged-in AMI session to a PBX (by id), if it holds one.
    ami_of: Callable[[str], AmiClient | None] = lambda _pbx_id: None

    def pbx_for(self, host: str | None) -> PbxConfig:
        """The PBX whose AMI host opened the FastAGI session (the first one if none
        matches: a single-PBX site names it 127.0.0.1 in one place and ::1 in the other)."""
        return next((p for p in self.pbxs if p.ami_host == host), self.pbxs[0])
