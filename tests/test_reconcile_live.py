"""Reconciliation that runs by itself, on a real Asterisk writing its CDR (cdr_pgsql) and
queue_log (realtime, res_config_pgsql) into the test PostgreSQL.

A caller is answered by operator 201 while the service's AMI link is cut (a TCP proxy
between the ledger and Asterisk drops it after the answer): the ledger sees the call start,
not its end, and closes it ``unknown`` when the link is back.  The service's reconciliation
loop (no command) reads Asterisk's rows from the tables and settles the call ``answered`` by
201, and /healthz's reconcile_state shows no difference left.

Run when ``ASTERISK_BIN`` gives a binary built with cdr_pgsql and res_config_pgsql.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from service.ami.parser import AmiMessage
from service.ledger.pipeline import build_pipeline
from service.reconcile_live.settle import reconcile_state
from service.reconcile_live.worker import ReconcileWorker
from tests.live_asterisk import (
    NOLOAD,
    LiveAsterisk,
    _modules_dir,
    asterisk_binary,
    booted_control,
    free_port,
)
from tests.replaying import config_for
from tests.waiting import running

pytestmark = [pytest.mark.asterisk,
              pytest.mark.skipif(asterisk_binary() is None, reason="no Asterisk binary")]

EXTENSIONS = """[general]
static = yes
writeprotect = yes

[from-pstn]
exten => 0312345678,1,Set(CHANNEL(accountcode)=KSL)
 same => n,Answer()
 same => n,Queue(q-test,t,,,20)
 same => n,Hangup()

[test-operators]
exten => 201,1,Answer()
 same => n,Wait(4)
 same => n,Hangup()
"""
QUEUES = """[general]
[q-test]
strategy = ringall
timeout = 15
member => Local/201@test-operators/n,0,op201
"""


class CuttableProxy:
    """A TCP proxy to Asterisk's AMI that can drop its connections and refuse new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.open = True
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.open = False
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def pgsql_files(db_url: str) -> dict[str, str]:
    url = urlsplit(db_url)
    # The embedded server listens on a socket directory (?host=/tmp/...), which libpq takes
    # as the host too.
    host = parse_qs(url.query).get("host", [url.hostname or "127.0.0.1"])[0]
    port = url.port or 5432
    user, password, dbname = url.username or "postgres", url.password or "", url.path[1:]
    binary = asterisk_binary()
    assert binary is not None
    modules = _modules_dir(Path(binary))
    if not (modules / "cdr_pgsql.so").exists() or not (modules / "res_config_pgsql.so").exists():
        pytest.skip("this Asterisk was built without cdr_pgsql / res_config_pgsql")
    noload = "\n".join(line for line in NOLOAD.splitlines()
                       if "cdr_pgsql" not in line and "res_config_pgsql" not in line)
    return {
        "modules.conf": "[modules]\nautoload = yes\n" + noload + "\n",
        "cdr.conf": "[general]\nenable = yes\nunanswered = yes\n",
        "cdr_pgsql.conf": f"""[global]
hostname = {host}
port = {port}
dbname = {dbname}
user = {user}
password = {password}
table = cdr
timezone = UTC
encoding = UTF8
""",
        "res_pgsql.conf": f"""[general]
dbhost = {host}
dbport = {port}
dbname = {dbname}
dbuser = {user}
dbpass = {password}
requirements = warn
""",
        "extconfig.conf": "[settings]\nqueue_log => pgsql,general,queue_log\n",
        "logger.conf": """[general]
queue_log = yes
queue_log_to_file = no
queue_adaptive_realtime = yes
queue_log_realtime_use_gmt = yes
[logfiles]
messages.log => notice,warning,error
""",
    }


async def test_an_outage_call_is_settled_without_any_command(pool, db_url: str,
                                                             tmp_path: Path) -> None:
    pbx = LiveAsterisk(tmp_path / "asterisk", EXTENSIONS, queues=QUEUES,
                       extra_files=pgsql_files(db_url))
    pbx.start()
    proxy = CuttableProxy(pbx.ami_port)
    await proxy.start()
    live = dataclasses.replace(pbx.pbx_config, reconcile_source="database")
    config = dataclasses.replace(config_for(tmp_path), pbxs=(live,), reconcile_interval_s=0.3,
                                 reconcile_settle_after_s=0, reconcile_lookback_s=3600)
    events: list[AmiMessage] = []
    pipeline = build_pipeline(config, live, pool, host="127.0.0.1", port=proxy.port,
                              taps=[lambda _pbx, batch: events.extend(batch)])
    control_events: list[AmiMessage] = []
    worker = ReconcileWorker(pool, config)

    async def wait_until(check, what: str, timeout: float = 40.0) -> object:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while True:
            found = await check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"never: {what}")
            await asyncio.sleep(0.2)

    async def call_row() -> object:
        async with pool.acquire() as conn:
            return await conn.fetchrow("SELECT * FROM calls WHERE caller_number = '09011112222'")

    try:
        async with running(pipeline.run()), booted_control(pbx, control_events) as control:
            async with asyncio.timeout(30):
                await pipeline.client.logged_in.wait()
            answer = await control.send_action({
                "Action": "Originate", "Channel": "Local/0312345678@from-pstn/n",
                "CallerID": '"田中太郎" <09011112222>', "Application": "Wait", "Data": "20",
                "Async": "true", "Timeout": "10000"})
            first = answer[0] if isinstance(answer, list) else answer
            assert first.response == "Success", answer
            # The ledger sees the answer, then loses the link until the call is over.
            for _ in range(300):
                if any(e.get("Event") == "AgentConnect" for e in events):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the ledger never saw 201 answer")
            proxy.cut()
            async def quiet() -> bool:
                out = await asyncio.to_thread(pbx.cli, "core show channels count")
                return "0 active channels" in out
            await wait_until(quiet, "the call to end")
            proxy.open = True
            # The ledger reconnects, finds the call gone: unknown.
            async def closed() -> object:
                row = await call_row()
                return row if row and row["outcome"] is not None else None  # type: ignore[index]
            row = await wait_until(closed, "the ledger closing the call", timeout=60)
            assert row["outcome"] == "unknown", dict(row)  # type: ignore[index]
            async with pool.acquire() as conn:
                # Asterisk's own rows, written by cdr_pgsql (UTF-8 names intact).
                clids = await conn.fetch("SELECT clid FROM cdr WHERE src = '09011112222'")
                assert clids and all("田中太郎" in r["clid"] for r in clids), clids
                assert await conn.fetchval(
                    "SELECT count(*) FROM queue_log WHERE event = 'CONNECT'") == 1
            # Nobody runs a command: the service's loop settles it.
            async with running(worker.run()):
                async def settled() -> object:
                    row = await call_row()
                    return row if row and row["outcome"] != "unknown" else None  # type: ignore[index]
                row = await wait_until(settled, "the call settled")
    finally:
        await proxy.close()
        pbx.stop()
    assert (row["outcome"], row["answered_by"], row["settled_by"]) == \
        ("answered", "201", "reconcile")  # type: ignore[index]
    state = await reconcile_state(pool)
    assert state["unknown_calls"] == 0 and state["running"]
    assert state["pbx"]["live"]["settled"] >= 0 and state["pbx"]["live"]["error"] is None
