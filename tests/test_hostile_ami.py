"""A hostile AMI peer cannot stop the ledger (issue 12, High 1).

A fake PBX (the replay server) sends crafted events first -- ``Timestamp: nan``, ``1e12``,
``inf``, a 9,000-character ``Linkedid``, a caller name far over PostgreSQL's 8000-byte NOTIFY
limit, a 20-digit queue position -- and then a real recorded call.  The ledger must keep
recording: the real call is in the ledger exactly as on a clean replay, its live-stream
notifications arrive, the bad events are counted, and nothing is left half-dead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import asyncpg

from service.ledger.ingest import event_time
from service.ledger.notify import CHANNEL, MAX_PAYLOAD_BYTES, CallNotifier, payloads
from service.ledger.pipeline import build_pipeline
from service.ledger.validate import check_event
from service.ledger.writer import LedgerWriter, is_outage
from service.replay.recording import RecordedMessage, load_recording
from service.replay.run import inbound_report
from service.replay.server import ReplayServer
from service.store.spool import Spool
from service.supervise import RESTARTS, keep_running
from tests.conftest import trace_dir
from tests.replaying import config_for, replay
from tests.waiting import eventually, running

SCENARIO = "answered_agent_hangup"


def hostile_call(uid: str, *, stamp: str | None, linkedid: str | None = None,
                 name: str = "<unknown>", number: str = "09012345678") -> list[RecordedMessage]:
    """A whole inbound call (start, queue join with a 20-digit position, hang-up)."""
    linked = linkedid or uid
    stamped = [("Timestamp", stamp)] if stamp is not None else []

    def message(*headers: tuple[str, str]) -> RecordedMessage:
        return RecordedMessage([headers[0], ("Privilege", "call,all"), *stamped,
                                *headers[1:]], t=0.5)

    return [
        message(("Event", "Newchannel"), ("Channel", f"PJSIP/trunk-{uid}"),
                ("ChannelState", "4"), ("ChannelStateDesc", "Ring"),
                ("CallerIDNum", number), ("CallerIDName", name), ("AccountCode", ""),
                ("Context", "from-pstn"), ("Exten", "0312345678"), ("Priority", "1"),
                ("Uniqueid", uid), ("Linkedid", linked)),
        message(("Event", "QueueCallerJoin"), ("Channel", f"PJSIP/trunk-{uid}"),
                ("Uniqueid", uid), ("Linkedid", linked), ("Queue", "q-ksl"),
                ("Position", "99999999999999999999"), ("Count", "1")),
        message(("Event", "Hangup"), ("Channel", f"PJSIP/trunk-{uid}"), ("Cause", "16"),
                ("Uniqueid", uid), ("Linkedid", linked)),
    ]


def hostile_recording() -> list[Any]:
    connections = load_recording(trace_dir(SCENARIO) / "ami.jsonl")
    messages = connections[0].messages
    first_event = next(i for i, m in enumerate(messages) if m.is_event)
    crafted = [
        *hostile_call("1700000000.901", stamp="nan"),
        *hostile_call("1700000000.902", stamp="1e12"),
        *hostile_call("1700000000.903", stamp="inf"),
        *hostile_call("1700000000.904", stamp="-1"),
        *hostile_call("1700000000.905", stamp=None, linkedid="9" * 9000),
        # 3,000 kanji: 9,000 bytes of caller name, and a number as long.
        *hostile_call("1700000000.906", stamp=None, name="田" * 3000, number="0" * 3000),
    ]
    messages[first_event:first_event] = crafted
    return connections


async def test_hostile_events_do_not_stop_the_ledger(pool: asyncpg.Pool, db_url: str,
                                                     tmp_path: Path) -> None:
    clean, _ = await replay(pool, tmp_path, trace_dir(SCENARIO) / "ami.jsonl", pbx_id="clean")
    assert clean and clean[-1]["outcome"] == "answered"

    notified: list[dict[str, Any]] = []
    listener = await asyncpg.connect(db_url)
    await listener.add_listener(
        CHANNEL, lambda *args: notified.append(json.loads(args[3])))
    server = ReplayServer(hostile_recording())
    port = await server.start()
    config = dataclasses.replace(config_for(tmp_path), ami_reconnect_min_s=0.05,
                                 ami_reconnect_max_s=0.2)
    pbx = dataclasses.replace(config.pbxs[0], pbx_id="pbx1", ami_port=port)
    pipeline = build_pipeline(config, pbx, pool, on_written=CallNotifier(pool))
    try:
        async with running(keep_running("ledger-pbx1", pipeline.run)):
            await server.finished.wait()
            await pipeline.client.send_action({"Action": "Ping"})
            await pipeline.client.drained()
            await pipeline.writer.flush()
            real = {row["linkedid"] for row in clean}
            await eventually(lambda: any(n.get("linkedid") in real and n.get("ended_at")
                                         for n in notified), what="the real call's NOTIFY")
            # One session all along: nothing made the AMI connection drop.
            assert pipeline.client.stats.connects == 1
    finally:
        await server.close()
        await listener.close()

    assert pipeline.fanout.rejected == 3  # the 9,000-character Linkedid call's events
    assert pipeline.fanout.repaired >= 12  # bad times, positions, over-long texts
    assert pipeline.writer.records_rejected == 0  # nothing reached PostgreSQL unstorable
    assert "ledger-pbx1" not in RESTARTS.counts

    async with pool.acquire() as conn:
        report = {r["linkedid"]: r for r in await inbound_report(conn, "pbx1")}
        longest = await conn.fetchval("SELECT max(length(linkedid)) FROM calls")
    # The real call is recorded exactly as without the attack.
    for row in clean:
        got = {k: v for k, v in report[row["linkedid"]].items() if k != "pbx"}
        assert got == {k: v for k, v in row.items() if k != "pbx"}
    # The hostile calls with repairable values are kept (never a lost record), timed by
    # when they were read; the one whose Linkedid no call can have is not.
    for uid in ("1700000000.901", "1700000000.902", "1700000000.903", "1700000000.904",
                "1700000000.906"):
        assert report[uid]["outcome"] == "short_abandon", uid
        assert report[uid]["started_at"].startswith("20"), report[uid]["started_at"]
    assert len(report["1700000000.906"]["caller_name"]) == 512
    assert longest <= 150


def test_edge_rules() -> None:
    event = {"Event": "Hangup", "Timestamp": "nan", "Uniqueid": "1.1", "Linkedid": "1.1"}
    assert check_event(event).keep and "Timestamp" not in event
    assert event_time({"Timestamp": "1e12"}, 5.0) == 5.0
    assert event_time({"Timestamp": "1795346827.5"}, 5.0) == 1795346827.5
    assert not check_event({"Event": "Newchannel", "Uniqueid": "x" * 151}).keep
    assert not check_event({"Event": "Newchannel", "Channel": "x" * 300}).keep
    event = {"Event": "QueueCallerJoin", "Position": "1" * 20, "HoldTime": "²"}
    assert check_event(event).keep and "Position" not in event and "HoldTime" not in event


def test_notify_payload_stays_under_the_limit() -> None:
    row = {"pbx_id": "pbx1", "linkedid": "1.1", "direction": "inbound", "client": "K" * 4000,
           "caller_e164": "+81" + "9" * 4000, "started_at": 1.0, "answered_at": None,
           "ended_at": None, "outcome": None, "answered_by": "a" * 4000, "escalated": True,
           "escalation_reason": "理" * 3000, "last_event_at": 1.0}
    for text in payloads([["call", row]], 0.0):
        assert len(text.encode()) < MAX_PAYLOAD_BYTES
        assert json.loads(text)["linkedid"] == "1.1"


async def test_a_record_postgres_cannot_store_is_set_aside_alone(pool: asyncpg.Pool,
                                                                tmp_path: Path) -> None:
    """Defence behind the edge: a record that still cannot be stored (here a NaN time made
    past the validator) costs only itself, never the batch or the writer."""
    good, _ = await replay(pool, tmp_path, trace_dir(SCENARIO) / "ami.jsonl", pbx_id="src")
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM calls")
    writer = LedgerWriter(pool, Spool(tmp_path / "w.spool"))
    records = [["call", {**r_row(good[0]), "linkedid": "ok-1"}],
               ["call", {**r_row(good[0]), "linkedid": "bad-1", "started_at": float("nan")}],
               ["call", {**r_row(good[0]), "linkedid": "ok-2"}]]
    writer.submit_records(records)
    await writer.flush()
    async with pool.acquire() as conn:
        ids = {r["linkedid"] for r in await conn.fetch("SELECT linkedid FROM calls")}
    assert ids == {"ok-1", "ok-2"}
    assert writer.records_rejected == 1
    assert not writer.degraded  # not mistaken for an outage: nothing waits in the spool
    dead = (tmp_path / "w.dead").read_text().splitlines()
    assert len(dead) == 1 and "bad-1" in dead[0]
    assert not is_outage(ValueError("cannot convert float NaN to integer"))
    assert is_outage(ConnectionRefusedError())


def r_row(report_row: dict[str, Any]) -> dict[str, Any]:
    """A minimal call record row (every column the writer needs)."""
    from service.store.ledger_sql import CALL_COLUMNS

    row: dict[str, Any] = dict.fromkeys(CALL_COLUMNS)
    row.update(pbx_id="pbx1", direction="inbound", started_at=1795346827.0, uniqueids=[],
               escalated=False, fallback_routed=False, voicemail_left=False, transfers=0,
               end_seen=True, caller_withheld=False)
    return row


async def test_a_loop_that_fails_is_logged_and_restarted(capsys) -> None:
    runs: list[int] = []
    again = asyncio.Event()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("boom")
        again.set()
        await asyncio.Event().wait()

    async with running(keep_running("flaky-test", flaky, min_delay=0.01, max_delay=0.02)):
        await asyncio.wait_for(again.wait(), 5)
    assert len(runs) == 2 and RESTARTS.counts["flaky-test"] == 1
    err = capsys.readouterr().err
    assert "task_failed" in err and "boom" in err and "task_restarting" in err


async def test_junk_flood_is_counted_but_logged_a_few_times(capsys) -> None:
    """50,000 junk messages: every one counted, a handful of warning lines; the session
    closing afterwards is a warning too (the ledger misses events until the reconnect)."""
    from tests.test_ami_adapter import FakeAmi, event, make_client

    junk = b"this line has no colon\r\n\r\n" * 50_000 + event("Good", N="1")

    async def send_junk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(junk)
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

    received: list[Any] = []
    async with FakeAmi(send_junk) as fake:
        client = make_client(fake.port, received, ping_interval=60)
        async with running(client.run()):
            await eventually(lambda: any(m.get("Event") == "Good" for m in received),
                             timeout=30)
            await eventually(lambda: not client.logged_in.is_set(), timeout=10,
                             what="the session to end")
    err = capsys.readouterr().err
    assert client.stats.bad_messages == 50_000
    assert 1 <= err.count("ami_bad_message") <= 20
    assert "suppressed" in err
    disconnected = [line for line in err.splitlines() if "ami_disconnected" in line]
    assert disconnected and "warning" in disconnected[0]
