"""The outbound guard on a live Asterisk, shared by the live tests: the real
``outbound_guard`` FastAGI route answering with the service's own wiring
(service.compliance.guard.handset_check: real policy, real database), a handset that dials,
and the PBX as an admin installs it from the shipped samples."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import asyncpg

from agi.context import AgiContext
from agi.outbound_guard import outbound_guard
from agi.server import AgiServer
from service.ami.adapter import AmiClient
from service.ami.parser import AmiMessage
from service.clients.model import Directory
from service.compliance.guard import handset_check
from service.config import PbxConfig
from service.dialplan.render import asterisk_major, include_for, render_fallback
from service.routing.cache import RoutingCache
from tests.live_asterisk import REPO, LiveAsterisk
from tests.pbx_files import INCLUDES

GUARD = "orikaeshi-outbound-guard"


async def start_guard_agi(pool: asyncpg.Pool, directory: Directory, port: int,
                          clock: Callable[[], datetime], pbxs: Sequence[PbxConfig]
                          ) -> AgiServer:
    """The FastAGI server with the outbound_guard route, as ``orikaeshi serve`` wires it."""
    cache = RoutingCache()
    cache.directory = directory
    server = AgiServer(state=AgiContext(cache, clock=clock,
                                        check_outbound=handset_check(pool, pbxs)))
    server.add_route("outbound_guard", outbound_guard)
    await server.start("127.0.0.1", port)
    return server


async def handset_dial(control: AmiClient, events: list[AmiMessage], number: str, *,
                       handset: str = "201", handset_context: str = "test-handset",
                       callee_context: str = "test-callee") -> str:
    """Operator ``handset``'s phone (a Local channel into ``handset_context``, which dials
    what DIALLED says) dials ``number``.  Returns what happened: the guard's prompt that was
    played, or ``dialled`` when the callee's side (``callee_context``) ran."""
    start = len(events)
    answer = await control.send_action({
        "Action": "Originate", "Channel": f"Local/{handset}@{handset_context}/n",
        "Variable": f"DIALLED={number}", "Application": "Wait", "Data": "20",
        "Async": "true", "Timeout": "10000"})
    first = answer[0] if isinstance(answer, list) else answer
    assert first.response == "Success", answer
    for _ in range(200):
        for event in events[start:]:
            if event.get("Event") != "Newexten":
                continue
            if event.get("Context") == callee_context and event.get("Exten") == number:
                return "dialled"
            if event.get("Application") == "Playback" and event.get("Context") == GUARD:
                return str(event.get("AppData"))
        await asyncio.sleep(0.1)
    raise AssertionError(f"the dial of {number} neither played a prompt nor dialled")


def admin_extensions(agi_port: int, *, outside_prefix: str, outside_suffix: str,
                     site: str) -> str:
    """dialplan/extensions.conf.sample as an admin installs it: only the site's own values
    in [globals] changed (where the service listens, how the trunk is dialled), and the
    site's own contexts appended (``site``: here the test's phones and the far end)."""
    text = (REPO / "dialplan" / "extensions.conf.sample").read_text()
    for name, value in (("ORIKAESHI_AGI", f"agi://127.0.0.1:{agi_port}"),
                        ("ORIKAESHI_OUTSIDE_PREFIX", outside_prefix),
                        ("ORIKAESHI_OUTSIDE_SUFFIX", outside_suffix)):
        text, found = re.subn(rf"^{name} = .*$", f"{name} = {value}", text, flags=re.M)
        assert found == 1, f"{name} is not set once in extensions.conf.sample"
    return text + "\n" + site


def shipped_pbx(root: Path, directory: Directory, agi_port: int, site: str, *,
                outside_prefix: str = "Local/", outside_suffix: str = "@test-callee/n"
                ) -> LiveAsterisk:
    """A live Asterisk with the shipped samples and every include of extensions.conf.sample
    (tests/pbx_files.py INCLUDES), the files with a release-dependent Queue() written for
    this binary as `orikaeshi dialplan include --file` does, the fallback map rendered."""
    extra = {name: (REPO / "dialplan" / name).read_text() for name in INCLUDES
             if name != "orikaeshi.conf"}  # LiveAsterisk writes it for its release
    extra["orikaeshi-fallback.conf"] = render_fallback(directory)
    extra["features.conf"] = (REPO / "dialplan" / "features.conf.sample").read_text()
    pbx = LiveAsterisk(root, admin_extensions(agi_port, outside_prefix=outside_prefix,
                                              outside_suffix=outside_suffix, site=site),
                       queues=(REPO / "dialplan" / "queues.conf.sample").read_text(),
                       extra_files=extra)
    (pbx.etc / "safetynet.conf").write_text(include_for(extra["safetynet.conf"],
                                                        asterisk_major(pbx.version)))
    return pbx


async def fetch_when(pool: asyncpg.Pool, sql: str, *args: object, want: int = 1,
                     timeout: float = 30.0) -> list[asyncpg.Record]:
    """Poll ``sql`` until it returns ``want`` rows (the ledger writes as events arrive)."""
    rows: list[asyncpg.Record] = []
    for _ in range(int(timeout * 10)):
        async with pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        if len(rows) >= want:
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(rows)} rows, wanted {want}: {sql}")
