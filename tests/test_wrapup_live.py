"""After-call work per client on a real Asterisk: what `orikaeshi dialplan wrapup` writes,
included by the sample queues.conf, keeps an operator from the next call.

201 and 202 log in to q-ksl and q-wsh, both linear (201 first).  WSH has no wrap-up: two
calls one after the other both go to 201.  KSL has `wrapup: 20s`: its first call goes to
201, and the next, placed as soon as the first ends, goes to 202, since 201 is in its
after-call work.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from service.callflows.presence import change
from service.clients.schema import parse_clients
from service.config import REPO_ROOT
from tests.callflows_live import LivePbx, live_pbx
from tests.live_asterisk import asterisk_binary, live_clients
from tests.pbx_files import SAMPLE_CONFIG

pytestmark = [pytest.mark.asterisk,
              pytest.mark.skipif(asterisk_binary() is None, reason="no Asterisk binary")]

WRAPUP_S = 20
PHONES = """
[test-operators]
exten => _20[12],1,Answer()
 same => n,Wait(2)
 same => n,Hangup()
"""


async def _answered(live: LivePbx, did: str, caller: str) -> tuple[str, float]:
    """Call ``did``; (who answered, the PBX's time of the offer to them)."""
    await live.call(did, caller, wait_s=10)
    connect = await live.wait_for(lambda e: e.get("Event") == "AgentConnect"
                                  and e.get("CallerIDNum") == caller, f"{caller} answered")
    await live.rows("SELECT 1 FROM calls WHERE caller_number = $1 AND ended_at IS NOT NULL",
                    caller, want=1)
    member = str(connect.get("MemberName"))
    called = live.find(lambda e: e.get("Event") == "AgentCalled"
                       and e.get("CallerIDNum") == caller and e.get("MemberName") == member)
    assert called is not None
    return member, float(called["Timestamp"])


def _ended(live: LivePbx, caller: str) -> float:
    done = live.find(lambda e: e.get("Event") == "AgentComplete"
                     and e.get("CallerIDNum") == caller)
    assert done is not None
    return float(done["Timestamp"])


async def test_an_operator_in_after_call_work_is_not_offered_the_next_call(
        pool, tmp_path: Path) -> None:
    text = live_clients("KSL", "WSH", queue_timeout="25s").replace(
        "    queue: q-ksl\n", f"    queue: q-ksl\n    wrapup: {WRAPUP_S}s\n", 1)
    clients = tmp_path / "clients.yaml"
    clients.write_text(text, encoding="utf-8")
    directory = parse_clients(text, "live.yaml")
    # What the admin runs, into the PBX's configuration directory.
    etc = tmp_path / "asterisk" / "etc"
    etc.mkdir(parents=True)
    env = {**os.environ, "ORIKAESHI_DATA_DIR": str(tmp_path / "data")}
    wrote = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "--config", str(SAMPLE_CONFIG), "dialplan", "wrapup",
        "--clients", str(clients), "--out", str(etc / "orikaeshi-wrapup.conf"), env=env,
        cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(120):
        _, stderr = await wrote.communicate()
    assert wrote.returncode == 0, stderr.decode()
    # The sample queues.conf as shipped (its last line includes the file), WSH made linear
    # like KSL so that it shows what happens without a wrap-up.
    sample = (REPO_ROOT / "dialplan" / "queues.conf.sample").read_text()
    queues = sample.replace("[q-wsh](orikaeshi-queue)\nstrategy = leastrecent",
                            "[q-wsh](orikaeshi-queue)\nstrategy = linear")
    assert queues != sample and "#tryinclude orikaeshi-wrapup.conf" in queues
    async with live_pbx(pool, tmp_path, directory, PHONES, {}, queues=queues) as live:
        assert live.flows is not None
        async with pool.acquire() as conn:
            for operator in ("201", "202"):
                await change(live.control, conn, live.flows.pbxs[0], operator=operator,
                             action="login", reason=None, queues=["q-ksl", "q-wsh"],
                             via="api", at=live.flows.clock())
        # WSH, no wrap-up: 201 takes both.
        wsh = [await _answered(live, "0501234567", caller)
               for caller in ("09022220001", "09022220002")]
        # KSL, 20 s of wrap-up: 201 takes the first, 202 the next.
        first = await _answered(live, "0312345678", "09011110001")
        second = await _answered(live, "0312345678", "09011110002")
        offered_to_201 = [e for e in live.events if e.get("Event") == "AgentCalled"
                          and e.get("CallerIDNum") == "09011110002"
                          and e.get("MemberName") == "201"]
    assert [who for who, _ in wsh] == ["201", "201"]
    # The second KSL call came while 201 was in its after-call work (else the test shows
    # nothing: the PBX's own clock says when the first ended and the second was offered).
    assert second[1] - _ended(live, "09011110001") < WRAPUP_S
    assert (first[0], second[0]) == ("201", "202")
    assert offered_to_201 == []
