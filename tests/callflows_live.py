"""A live Asterisk running the shipped dialplan with the call-flow includes, the real route
and call-flow AGIs, the real ledger and a real database: shared by the call-flow live tests."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from agi.callflows import add_callflow_routes
from agi.context import AgiContext
from agi.escalate import escalate as escalate_route
from agi.route import route
from agi.server import AgiServer
from service.ami.adapter import AmiClient
from service.ami.parser import AmiMessage
from service.callbacks.repeat_sql import SqlRepeatLookup
from service.callflows.runtime import CallFlows
from service.clients.model import Directory
from service.clock import utc_now
from service.dialplan.render import asterisk_major, include_for, render_fallback
from service.routing.cache import RoutingCache
from tests.live_asterisk import (
    LIVE_VOICEMAIL,
    REPO,
    LiveAsterisk,
    extensions_head,
    free_port,
    ledger_and_control,
    silent_prompt,
)
from tests.replaying import config_for

FEATURES = """[general]
[featuremap]
[applicationmap]
orikaeshi_escalate => *9,self,Gosub(orikaeshi-escalate-menu,s,1)
orikaeshi_handraise => *8,self,Gosub(orikaeshi-handraise,s,1)
"""

# app_confbridge does not load without its file: the one the admin copies.
CONFBRIDGE = (REPO / "dialplan" / "confbridge.conf.sample").read_text(encoding="utf-8")


RELEASE_RENDERED = ("orikaeshi.conf", "safetynet.conf")


def extensions(agi_port: int, phones: str, globals_extra: str = "") -> str:
    """extensions.conf: our includes and the test's simulated phones ([test-operators])."""
    # Files with a Queue() naming the member Gosub are written for the binary's release
    # (RELEASE_RENDERED, into the PBX's etc, as `orikaeshi dialplan include --file` does).
    includes = [
        name if name in RELEASE_RENDERED else str(REPO / "dialplan" / name)
        for name in ("orikaeshi.conf", "escalation.conf", "supervisor.conf", "safetynet.conf",
                     "handraise.conf", "presence.conf", "recording.conf")
        if (REPO / "dialplan" / name).exists()]
    return extensions_head(
        agi_port, outside="test-operators", includes=[*includes, "orikaeshi-fallback.conf"],
        globals_extra="ORIKAESHI_SUPERVISORS = q-sup\nORIKAESHI_SPY_PREFIX = Local/\n"
                      + globals_extra) + phones + "\n"


@dataclass
class LivePbx:
    pbx: LiveAsterisk
    control: AmiClient
    pool: asyncpg.Pool
    events: list[AmiMessage] = field(default_factory=list)
    flows: CallFlows | None = None

    def find(self, predicate: Callable[[AmiMessage], bool]) -> AmiMessage | None:
        return next((e for e in self.events if predicate(e)), None)

    async def wait_for(self, predicate: Callable[[AmiMessage], bool], what: str,
                       timeout: float = 30.0) -> AmiMessage:
        for _ in range(int(timeout * 10)):
            found = self.find(predicate)
            if found is not None:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"never saw {what}")

    async def action(self, action: dict[str, str]) -> AmiMessage:
        answer = await self.control.send_action(action)
        first: AmiMessage = answer[0] if isinstance(answer, list) else answer
        return first

    async def call(self, did: str, number: str, *, wait_s: int = 30) -> None:
        """A caller (a Local channel whose far side waits) dials ``did``."""
        first = await self.action({
            "Action": "Originate", "Channel": f"Local/{did}@orikaeshi-inbound/n",
            "CallerID": f'"Caller {number}" <{number}>', "Async": "true",
            "Timeout": "10000", "Application": "Wait", "Data": str(wait_s)})
        assert first.response == "Success", first

    async def rows(self, sql: str, *args: Any, want: int, timeout: float = 40.0
                   ) -> list[asyncpg.Record]:
        """Poll a query until it returns ``want`` rows."""
        found: list[asyncpg.Record] = []
        for _ in range(int(timeout * 10)):
            async with self.pool.acquire() as conn:
                found = await conn.fetch(sql, *args)
            if len(found) >= want:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"{len(found)} rows, wanted {want}: {sql}")


def install_prompts(pbx: LiveAsterisk) -> None:
    """The shipped Japanese segments, and silent stand-ins for the core sounds."""
    shutil.copytree(REPO / "dialplan" / "sounds" / "orikaeshi", pbx.sounds / "orikaeshi",
                    dirs_exist_ok=True)
    for name in ("beep", "vm-intro", "vm-goodbye", "auth-thankyou", "pbx-transfer"):
        silent_prompt(pbx.sounds / f"{name}.wav")
    # Music on hold: any audio will do (a class with no files is disabled).
    shutil.copy(REPO / "dialplan" / "sounds" / "orikaeshi" / "escalation-menu.wav",
                pbx.root / "data" / "moh" / "hold.wav")


@contextlib.asynccontextmanager
async def live_pbx(pool: asyncpg.Pool, tmp_path: Path, directory: Directory, phones: str,
                   members: dict[str, str], *, queues: str | None = None,
                   globals_extra: str = "", clock: Callable[[], Any] = utc_now
                   ) -> AsyncIterator[LivePbx]:
    agi_port = free_port()
    pbx = LiveAsterisk(tmp_path / "asterisk", extensions(agi_port, phones, globals_extra),
                       queues=queues or (REPO / "dialplan" / "queues.conf.sample").read_text(),
                       voicemail=LIVE_VOICEMAIL,
                       extra_files={"orikaeshi-fallback.conf": render_fallback(directory),
                                    "features.conf": FEATURES,
                                    "confbridge.conf": CONFBRIDGE})
    install_prompts(pbx)
    # LiveAsterisk wrote orikaeshi.conf for its release; the safety net's Queue() too.
    (pbx.etc / "safetynet.conf").write_text(include_for(
        (REPO / "dialplan" / "safetynet.conf").read_text(), asterisk_major(pbx.version)))
    pbx.start()
    cache = RoutingCache()
    cache.directory = directory
    holder: dict[str, AmiClient] = {}
    # The phones are Local channels into [test-operators]; actions go through the control AMI.
    pbx_config = dataclasses.replace(pbx.pbx_config,
                                     phone_channel="Local/{ext}@test-operators/n")
    flows = CallFlows(pool, (pbx_config,), clock, ami_of=lambda _pbx_id: holder.get("ami"))
    agi = AgiServer(state=AgiContext(cache, SqlRepeatLookup(pool), repeat_timeout_s=2,
                                     callflows=flows))
    agi.add_route("route", route)
    agi.add_route("escalate", escalate_route)
    add_callflow_routes(agi)
    await agi.start("127.0.0.1", agi_port)
    events: list[AmiMessage] = []
    try:
        async with ledger_and_control(pbx, pool, config_for(tmp_path), members,
                                      events) as control:
            holder["ami"] = control
            yield LivePbx(pbx, control, pool, events, flows)
    finally:
        await agi.close()
        pbx.stop()
        with (tmp_path / "ami-events.jsonl").open("w") as dump:
            for event in events:
                dump.write(json.dumps(dict(event), ensure_ascii=False) + "\n")
