"""The repeat lookup: the SQL that counts a caller's calls since the last call back, and the
in-memory filter that spares PostgreSQL the callers who did not call recently."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from service.callbacks.recent import FilteredRepeatLookup, RecentCallers
from service.callbacks.repeat_sql import SqlRepeatLookup
from service.ledger.notify import CallNotifier
from service.routing.repeat import RepeatHistory
from tests.waiting import eventually

NOW = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)
CALLER = "+819011112222"


async def inbound(conn: asyncpg.Connection, linkedid: str, client: str, caller: str,
                  ago: timedelta) -> None:
    await conn.execute(
        "INSERT INTO calls (pbx_id, linkedid, direction, client, caller_e164, uniqueids, "
        "started_at) VALUES ('p', $1, 'inbound', $2, $3, $4, $5)",
        linkedid, client, caller, [linkedid, linkedid + "b"], NOW - ago)


async def callback(conn: asyncpg.Connection, linkedid: str, client: str, callee: str,
                   ago: timedelta, result: str = "answered") -> None:
    answered = NOW - ago if result == "answered" else None
    await conn.execute(
        "INSERT INTO calls (pbx_id, linkedid, direction, client, callee_e164, dial_result, "
        "started_at, answered_at) VALUES ('p', $1, 'outbound', $2, $3, $4, $5, $6)",
        linkedid, client, callee, result, NOW - ago, answered)


async def test_counts_calls_in_the_window_since_the_last_call_back(pool) -> None:
    lookup = SqlRepeatLookup(pool)
    async with pool.acquire() as conn:
        await inbound(conn, "a", "KSL", CALLER, timedelta(hours=80))   # outside 72 h
        await inbound(conn, "b", "KSL", CALLER, timedelta(hours=50))
        await inbound(conn, "c", "KSL", CALLER, timedelta(hours=30))
        await inbound(conn, "d", "MDC", CALLER, timedelta(hours=20))   # another client
        await inbound(conn, "e", "KSL", "+819099999999", timedelta(hours=10))
        await inbound(conn, "now", "KSL", CALLER, timedelta(seconds=1))  # the current call
    history = await lookup("KSL", CALLER, NOW, 72 * 3600, exclude_uniqueid="nowb")
    assert history.calls == 2
    assert history.first_at == NOW - timedelta(hours=50)
    assert history.last_callback_at is None

    async with pool.acquire() as conn:
        # A busy call back is an attempt, not a call back; another client's does not count.
        await callback(conn, "o1", "KSL", CALLER, timedelta(hours=40), result="busy")
        await callback(conn, "o2", "MDC", CALLER, timedelta(hours=35))
    assert (await lookup("KSL", CALLER, NOW, 72 * 3600, "nowb")).calls == 2

    async with pool.acquire() as conn:
        await callback(conn, "o3", "KSL", CALLER, timedelta(hours=40))  # verified call back
    history = await lookup("KSL", CALLER, NOW, 72 * 3600, "nowb")
    assert history.calls == 1 and history.last_callback_at == NOW - timedelta(hours=40)

    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO callback_obligations (client, caller_e164, state, fulfilment, reason, "
            "opened_at, fulfilled_at, fulfilled_by) VALUES ('KSL', $1, 'fulfilled', "
            "'reported', 'missed', $2, $3, 'client-user')",
            CALLER, NOW - timedelta(hours=60), NOW - timedelta(hours=20))
    history = await lookup("KSL", CALLER, NOW, 72 * 3600, "nowb")
    assert history.calls == 0 and history.last_callback_at == NOW - timedelta(hours=20)


async def test_recent_callers_filter_learns_from_notifications(pool) -> None:
    real_now = datetime.now(UTC)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO calls (pbx_id, linkedid, direction, client, caller_e164, started_at) "
            "VALUES ('p', 'old', 'inbound', 'KSL', '+81311110000', $1)",
            real_now - timedelta(hours=1))
    recent = RecentCallers(lambda: 72 * 3600.0)
    runner = asyncio.create_task(recent.run(pool))
    try:
        await eventually(lambda: recent.ready)
        now = real_now.timestamp()
        assert recent.maybe_called("KSL", "+81311110000", now)
        assert not recent.maybe_called("KSL", "+81322220000", now)
        # A call recorded by any instance's ledger reaches every filter.
        await CallNotifier(pool)([["call", {
            "pbx_id": "p", "linkedid": "n1", "direction": "inbound", "client": "KSL",
            "caller_e164": "+81322220000", "started_at": now, "answered_at": None,
            "ended_at": None, "outcome": None, "escalated": False, "answered_by": None,
            "escalation_reason": None}]])
        await eventually(lambda: recent.maybe_called("KSL", "+81322220000", now + 1))

        calls: list[str] = []

        class Sql:
            async def __call__(self, client, caller, when, window, exclude=None):  # type: ignore[no-untyped-def]
                calls.append(caller)
                return RepeatHistory(calls=5)

        filtered = FilteredRepeatLookup(Sql(), recent)
        quiet = await filtered("KSL", "+81333330000", datetime.now(UTC), 72 * 3600)
        noisy = await filtered("KSL", "+81322220000", datetime.now(UTC), 72 * 3600)
        again = await filtered("KSL", "+81333330000", datetime.now(UTC), 72 * 3600)
        assert (quiet.calls, noisy.calls, again.calls) == (0, 5, 5)
        assert calls == ["+81322220000", "+81333330000"]  # the first call was noted
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert not recent.ready


async def test_filter_says_maybe_until_loaded() -> None:
    recent = RecentCallers(lambda: 3600.0)
    assert recent.maybe_called("KSL", "+81300000000", 0.0)
