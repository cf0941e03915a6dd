"""Call-back obligations from real recordings, and their edges: numbers written differently,
withheld numbers, another client's call back, the calling-hours guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from service.callbacks.dialer import dial_string, place_callback
from service.callbacks.guard import check_calling_hours
from service.callbacks.worker import CallbackWorker
from service.clients.store import load_document
from service.clock import Clock
from service.config import PbxConfig
from service.messages.service import NewMessage, take_message
from service.store.callbacks_sql import obligations, report_fulfilled
from tests.conftest import trace_dir
from tests.replaying import config_for, logged_in_ami, recorded_before, replay

SAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "clients.sample.yaml"
TOKYO = ZoneInfo("Asia/Tokyo")
# Recent enough that nothing has expired (obligations expire a week after they were due).
RECENT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=8)


async def load_sample(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await load_document(conn, SAMPLE.read_text(), "clients.sample.yaml")


async def all_obligations(pool: asyncpg.Pool) -> list[dict[str, object]]:
    async with pool.acquire() as conn:
        return await obligations(conn)


async def attempts(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch("SELECT * FROM callback_attempts ORDER BY started_at")


async def test_missed_then_escalated_call_leaves_the_obligation_open(pool, tmp_path,
                                                                    service_clock: Clock) -> None:
    await load_sample(pool)
    await replay(pool, tmp_path, trace_dir("repeat_caller_escalated") / "ami.jsonl",
                 rebase_to=recorded_before(service_clock))
    assert await CallbackWorker(pool, clock=service_clock).run_once() == 2
    [owed] = await all_obligations(pool)
    # The first call was missed; the second, answered by a supervisor, fulfils nothing.
    assert (owed["state"], owed["caller_e164"], owed["client"]) == \
        ("open", "+819024682468", "KSL")
    assert owed["calls"] == 1 and owed["fulfilment"] is None
    assert owed["due_at"] - owed["opened_at"] == timedelta(hours=24)


async def test_obligations_expire_by_the_service_clock(pool, tmp_path,
                                                      service_clock: Clock) -> None:
    """Expiry reads the service's clock, not the database's: due 24 h after the missed
    call, expired a week (the default grace) after that."""
    await load_sample(pool)
    await replay(pool, tmp_path, trace_dir("repeat_caller_escalated") / "ami.jsonl",
                 rebase_to=recorded_before(service_clock))

    def later(days: float) -> CallbackWorker:
        return CallbackWorker(pool, clock=lambda: service_clock() + timedelta(days=days))

    await later(7).run_once()
    [owed] = await all_obligations(pool)
    assert owed["state"] == "open"
    await later(8.1).run_once()
    [owed] = await all_obligations(pool)
    assert owed["state"] == "expired"


async def test_answered_call_back_fulfils_verified(pool, tmp_path,
                                                  service_clock: Clock) -> None:
    await load_sample(pool)
    await replay(pool, tmp_path, trace_dir("outbound_callback_answered") / "ami.jsonl",
                 rebase_to=recorded_before(service_clock))
    await CallbackWorker(pool, clock=service_clock).run_once()
    [owed] = await all_obligations(pool)
    assert (owed["state"], owed["fulfilment"], owed["fulfilled_by"]) == \
        ("fulfilled", "verified", "201")
    [attempt] = await attempts(pool)
    assert attempt["result"] == "answered" and attempt["placed_by"] == "201"
    assert owed["fulfilled_at"] == attempt["answered_at"]


async def test_busy_call_back_is_an_attempt_not_a_fulfilment(pool, tmp_path,
                                                            service_clock: Clock) -> None:
    await load_sample(pool)
    await replay(pool, tmp_path, trace_dir("outbound_callback_busy") / "ami.jsonl",
                 rebase_to=recorded_before(service_clock))
    await CallbackWorker(pool, clock=service_clock).run_once()
    [owed] = await all_obligations(pool)
    assert owed["state"] == "open" and owed["attempts"] == 1
    [attempt] = await attempts(pool)
    assert attempt["result"] == "busy" and attempt["answered_at"] is None


async def test_the_worker_is_idempotent(pool, tmp_path,
                                       service_clock: Clock) -> None:
    await load_sample(pool)
    recording = trace_dir("outbound_callback_busy") / "ami.jsonl"
    start = recorded_before(service_clock)
    await replay(pool, tmp_path, recording, rebase_to=start)
    await CallbackWorker(pool, clock=service_clock).run_once()
    # The same calls again (e.g. a replayed spool).
    await replay(pool, tmp_path, recording, rebase_to=start)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE calls SET callbacks_seen_at = NULL")  # and looked at again
    await CallbackWorker(pool, clock=service_clock).run_once()
    [owed] = await all_obligations(pool)
    assert owed["calls"] == 1 and owed["attempts"] == 1


async def insert_call(conn: asyncpg.Connection, linkedid: str, *, direction: str = "inbound",
                      client: str = "KSL", caller: str | None = None,
                      callee: str | None = None, outcome: str | None = "abandoned",
                      dial_result: str | None = None, at: datetime) -> None:
    from service.phone import to_e164

    await conn.execute(
        """INSERT INTO calls (pbx_id, linkedid, direction, client, caller_number, caller_e164,
               callee_number, callee_e164, started_at, answered_at, ended_at, outcome,
               dial_result, placed_by)
           VALUES ('p', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, '201')""",
        linkedid, direction, client, caller, None if direction == "outbound" else
        to_e164(caller), callee, to_e164(callee), at,
        at + timedelta(seconds=5) if dial_result == "answered" else None,
        at + timedelta(seconds=30), None if direction == "outbound" else outcome, dial_result)


async def test_one_number_written_three_ways_is_one_obligation(pool) -> None:
    await load_sample(pool)
    base = RECENT
    async with pool.acquire() as conn:
        for i, written in enumerate(("03-1234-5678", "+81312345678", "0312345678")):
            await insert_call(conn, f"in{i}", caller=written, at=base + timedelta(hours=i))
    await CallbackWorker(pool).run_once()
    [owed] = await all_obligations(pool)
    assert owed["caller_e164"] == "+81312345678" and owed["calls"] == 3
    async with pool.acquire() as conn:
        await insert_call(conn, "out", direction="outbound", callee="03 1234 5678",
                          dial_result="answered", at=base + timedelta(hours=5))
    await CallbackWorker(pool).run_once()
    [owed] = await all_obligations(pool)
    assert (owed["state"], owed["fulfilment"]) == ("fulfilled", "verified")


async def test_withheld_numbers_are_recorded_as_cannot_call_back(pool) -> None:
    await load_sample(pool)
    at = RECENT
    async with pool.acquire() as conn:
        await insert_call(conn, "w1", caller="anonymous", at=at)
        await insert_call(conn, "w2", caller=None, outcome="after_hours", at=at)
    await CallbackWorker(pool).run_once()
    owed = await all_obligations(pool)
    assert [o["state"] for o in owed] == ["cannot_call_back", "cannot_call_back"]
    assert all(o["caller_e164"] is None for o in owed)


async def test_another_clients_call_back_does_not_fulfil(pool) -> None:
    await load_sample(pool)
    at = RECENT
    async with pool.acquire() as conn:
        await insert_call(conn, "k", client="KSL", caller="09011112222", at=at)
        await insert_call(conn, "m", direction="outbound", client="MDC",
                          callee="09011112222", dial_result="answered",
                          at=at + timedelta(hours=1))
        await insert_call(conn, "early", direction="outbound", client="KSL",
                          callee="09011112222", dial_result="answered",
                          at=at - timedelta(hours=1))  # before the obligation opened
    await CallbackWorker(pool).run_once()
    [owed] = await all_obligations(pool)
    assert owed["client"] == "KSL" and owed["state"] == "open" and owed["attempts"] == 0


async def test_answered_inbound_call_fulfils_nothing(pool) -> None:
    await load_sample(pool)
    at = RECENT
    async with pool.acquire() as conn:
        await insert_call(conn, "missed", caller="09011112222", at=at)
        await insert_call(conn, "again", caller="09011112222", outcome="answered",
                          at=at + timedelta(hours=1))
    await CallbackWorker(pool).run_once()
    [owed] = await all_obligations(pool)
    assert owed["state"] == "open" and owed["calls"] == 1


async def test_message_asking_for_a_call_back_and_reported_fulfilment(pool) -> None:
    await load_sample(pool)
    async with pool.acquire() as conn:
        taken = await take_message(conn, NewMessage(
            client="KSL", disposition="callback_requested", body="契約書の件で折り返し希望",
            caller_number="090-1111-2222", caller_name="田中太郎", taken_by="201"))
        info = await take_message(conn, NewMessage(
            client="KSL", disposition="info_only", body="資料は届きました",
            caller_number="09011112222"))
        # A client user of another client cannot mark it done; KSL's user can.
        assert not await report_fulfilled(conn, taken["obligation_id"], ["MDC"], "mdc-user",
                                          None)
        assert await report_fulfilled(conn, taken["obligation_id"], ["KSL"], "ksl-user",
                                      "called back at 15:00")
    assert info["obligation_id"] is None
    [owed] = await all_obligations(pool)
    assert (owed["state"], owed["fulfilment"], owed["reason"], owed["fulfilled_by"]) == \
        ("fulfilled", "reported", "message", "ksl-user")


async def test_call_back_at_21_05_local_is_refused(pool, caplog) -> None:
    await load_sample(pool)
    late = datetime(2026, 6, 10, 21, 5, tzinfo=TOKYO)
    guard = check_calling_hours("+819011112222", late, (late.time().replace(hour=8, minute=0),
                                                         late.time().replace(hour=21,
                                                                             minute=0)))
    assert not guard.allowed and "21:05" in guard.reason
    async with pool.acquire() as conn:
        result = await place_callback(None, conn, PbxConfig(), client="KSL",
                                      number="090-1111-2222", operator="201",
                                      requested_by="sup301", now=late)
        row = await conn.fetchrow("SELECT * FROM callback_requests")
    assert not result.placed and "outside the allowed calling hours" in result.reason
    assert (row["result"], row["callee_e164"], row["operator"]) == \
        ("refused", "+819011112222", "201")
    assert "21:05" in row["reason"]


async def test_call_back_inside_hours_originates_the_operator_phone(pool, tmp_path) -> None:
    await load_sample(pool)
    async with logged_in_ami() as (ami, server), pool.acquire() as conn:
        result = await place_callback(
            ami, conn, PbxConfig(phone_channel="Local/{ext}@opphone/n"), client="KSL",
            number="090-1111-2222", operator="201", requested_by="sup301",
            now=datetime(2026, 6, 10, 10, 0, tzinfo=TOKYO))
    assert result.placed, result
    [originate] = [a for a in server.actions if a.get("Action") == "Originate"]
    assert originate["Channel"] == "Local/201@opphone/n"
    assert (originate["Context"], originate["Exten"], originate["Account"]) == \
        ("orikaeshi-outbound", "09011112222", "KSL")
    assert originate["CallerID"] == '"Kasumi Law Office" <0312345678>'
    assert dial_string("+819011112222") == "09011112222"


async def test_call_back_recorded_before_the_late_missed_call_still_fulfils(pool) -> None:
    """The missed call reaches PostgreSQL after the call back (the ledger's outage spool):
    the obligation it opens is the one the call back already answered."""
    await load_sample(pool)
    at = RECENT
    async with pool.acquire() as conn:
        await insert_call(conn, "back", direction="outbound", callee="09011112222",
                          dial_result="answered", at=at + timedelta(hours=1))
    await CallbackWorker(pool).run_once()
    assert await all_obligations(pool) == []
    async with pool.acquire() as conn:  # the spool is replayed: two earlier missed calls
        await insert_call(conn, "late1", caller="090-1111-2222", at=at)
        await insert_call(conn, "late2", caller="09011112222", at=at + timedelta(minutes=30))
    await CallbackWorker(pool).run_once()
    [owed] = await all_obligations(pool)
    assert (owed["state"], owed["fulfilment"], owed["fulfilled_linkedid"], owed["calls"]) == \
        ("fulfilled", "verified", "back", 2)
    assert owed["opened_at"] == at
    # A missed call after the call back is owed a new one.
    async with pool.acquire() as conn:
        await insert_call(conn, "after", caller="09011112222", at=at + timedelta(hours=2))
    await CallbackWorker(pool).run_once()
    assert [(o["state"], o["calls"]) for o in await all_obligations(pool)] == \
        [("fulfilled", 2), ("open", 1)]


async def test_a_call_the_ledger_corrects_after_it_was_seen_is_seen_again(pool) -> None:
    """A busy call back that a better-informed record later shows answered (another
    instance's view merged into the row): the attempt is corrected and fulfils."""
    await load_sample(pool)
    at = RECENT
    async with pool.acquire() as conn:
        await insert_call(conn, "missed", caller="09011112222", at=at)
        await insert_call(conn, "back", direction="outbound", callee="09011112222",
                          dial_result="busy", at=at + timedelta(hours=1))
    await CallbackWorker(pool).run_once()
    [owed] = await all_obligations(pool)
    assert owed["state"] == "open"
    async with pool.acquire() as conn:
        await conn.execute("UPDATE calls SET voicemail_left = false WHERE linkedid = 'back'")
        unchanged = await conn.fetchval(
            "SELECT callbacks_seen_at IS NOT NULL FROM calls WHERE linkedid = 'back'")
        await conn.execute(
            "UPDATE calls SET dial_result = 'answered', answered_at = started_at + "
            "interval '4 seconds' WHERE linkedid = 'back'")
    assert unchanged  # a write that changes nothing the rules read leaves it alone
    assert await CallbackWorker(pool).run_once() == 1
    [owed] = await all_obligations(pool)
    [attempt] = await attempts(pool)
    assert (owed["state"], owed["fulfilment"], attempt["result"]) == \
        ("fulfilled", "verified", "answered")


async def test_unanswered_forward_is_missed_an_answered_one_is_not(pool) -> None:
    await load_sample(pool)
    at = RECENT
    async with pool.acquire() as conn:
        for linkedid, caller, answered in (("fw-no", "09011112222", False),
                                           ("fw-yes", "09033334444", True)):
            await insert_call(conn, linkedid, caller=caller, outcome="forwarded", at=at)
            await conn.execute("UPDATE calls SET forward_answered = $2 WHERE linkedid = $1",
                               linkedid, answered)
        # Still without its outcome (the ledger has not settled it): not looked at yet.
        await insert_call(conn, "pending", caller="09055556666", outcome=None, at=at)
    assert await CallbackWorker(pool).run_once() == 2
    [owed] = await all_obligations(pool)
    assert owed["caller_e164"] == "+819011112222"
    async with pool.acquire() as conn:
        await conn.execute("UPDATE calls SET outcome = 'timeout' WHERE linkedid = 'pending'")
    assert await CallbackWorker(pool).run_once() == 1
    assert {o["caller_e164"] for o in await all_obligations(pool)} == \
        {"+819011112222", "+819055556666"}


def test_a_number_in_several_time_zones_is_called_only_when_all_allow() -> None:
    from datetime import time

    window = (time(8), time(21))
    ny = ZoneInfo("America/New_York")
    assert check_calling_hours("+12125551234", datetime(2026, 6, 10, 9, 30, tzinfo=ny),
                               window).allowed
    assert not check_calling_hours("+12125551234", datetime(2026, 6, 10, 7, 30, tzinfo=ny),
                                   window).allowed
    # A US toll-free number may ring anywhere from Guam to Alaska: no hour is inside the
    # window everywhere, so it is refused, with where it would be too early or too late.
    refused = check_calling_hours("+18005551234", datetime(2026, 6, 10, 15, 0, tzinfo=ny),
                                  window)
    assert not refused.allowed
    assert "05:00 in Pacific/Guam" in refused.reason and "42 time zones" in refused.reason
    # A Japanese number at 07:59 and 08:00 JST, whatever zone the clock is given in.
    assert not check_calling_hours("+81312345678",
                                   datetime(2026, 6, 9, 22, 59, tzinfo=UTC), window).allowed
    assert check_calling_hours("+81312345678",
                               datetime(2026, 6, 9, 23, 0, tzinfo=UTC), window).allowed


async def test_the_service_derives_obligations_from_what_its_ledger_records(
        db_url: str, tmp_path: Path) -> None:
    """The worker runs in the service's cleanup context, on the rows the ledger writes."""
    import asyncio
    import dataclasses

    from aiohttp.test_utils import TestClient, TestServer

    from service.app import POOL, create_app, database_ctx, ledger_ctx, workers_ctx
    from service.replay.recording import load_recording
    from service.replay.server import ReplayServer

    server = ReplayServer(load_recording(trace_dir("outbound_callback_answered") / "ami.jsonl"))
    port = await server.start()
    config = dataclasses.replace(
        config_for(tmp_path), database_url=db_url, ami_lock=False,
        pbxs=(PbxConfig(pbx_id="pbx1", ami_port=port, ami_username="u", ami_secret="p"),))
    app = create_app(config, [database_ctx, ledger_ctx, workers_ctx])
    try:
        async with TestClient(TestServer(app)):
            await load_sample(app[POOL])
            owed: list[dict[str, object]] = []
            for _ in range(200):
                owed = await all_obligations(app[POOL])
                if owed and owed[0]["state"] == "fulfilled":
                    break
                await asyncio.sleep(0.05)
    finally:
        await server.close()
    [only] = owed
    assert (only["state"], only["fulfilment"], only["fulfilled_by"]) == \
        ("fulfilled", "verified", "201")
