"""Retention of what issue 13 added: the outbound policy's evidence (outbound_decisions),
scheduled call backs that are over, and the copies of Asterisk's CDR and queue_log the
reconciler reads go with the client's purge (a dry run counts exactly that); nothing an open
call back or an unresolved difference left by reconciliation still needs is deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.clients.store import load_document
from service.retention.purge import purge
from tests.webapp import SAMPLE

NOW = datetime(2026, 12, 21, 3, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=60)      # KSL keeps 30 days
RECENT = NOW - timedelta(days=3)
OWED = "+819000000077"              # a caller KSL still owes a call back


async def _call(conn, linkedid: str, client: str, started: datetime,  # type: ignore[no-untyped-def]
                uniqueids: list[str]) -> None:
    await conn.execute(
        """INSERT INTO calls (pbx_id, linkedid, direction, client, caller_e164, uniqueids,
               started_at, ended_at, outcome)
           VALUES ('pbx1', $1, 'inbound', $2, '+819011112222', $3, $4, $5, 'abandoned')""",
        linkedid, client, uniqueids, started, started + timedelta(seconds=30))
    for uniqueid in uniqueids:  # cdr_pgsql's rows carry no PBX; the follower's do
        await conn.execute(
            "INSERT INTO cdr (pbx_id, uniqueid, start, src) VALUES ($1, $2, $3, '09011112222')",
            "" if uniqueid.endswith("1") else "pbx1", uniqueid,
            started.replace(tzinfo=None))
        await conn.execute(
            "INSERT INTO queue_log (pbx_id, time, callid, queuename, event) "
            "VALUES ('', $1, $2, 'q-ksl', 'ENTERQUEUE')", started.replace(tzinfo=None), uniqueid)


async def _decision(conn, client: str, callee: str, at: datetime) -> None:  # type: ignore[no-untyped-def]
    await conn.execute(
        """INSERT INTO outbound_decisions (decided_at, client, callee_e164, dialled, path,
               allowed, rule, reason) VALUES ($1, $2, $3, $3, 'click_to_call', true,
               'allowed', 'inside the hours')""", at, client, callee)


async def _scheduled(conn, client: str, state: str, at: datetime,  # type: ignore[no-untyped-def]
                     obligation: int | None) -> int:
    return int(await conn.fetchval(
        """INSERT INTO scheduled_callbacks (obligation_id, client, callee_e164, operator,
               requested_by, run_at, state, updated_at)
           VALUES ($1, $2, '+819011112222', '201', 'op', $3, $4, $3) RETURNING id""",
        obligation, client, at, state))


async def test_purge_keeps_what_is_still_needed(pool) -> None:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        await load_document(conn, SAMPLE.read_text().replace(
            "    retention: 730d ", "    retention: 30d ", 1), "clients.yaml")
        assert await conn.fetchval("SELECT retention_s FROM clients WHERE code = 'KSL'") == \
            30 * 86400
        await _call(conn, "A", "KSL", OLD, ["a.1", "a.2"])       # purged, with its copies
        await _call(conn, "B", "KSL", OLD, ["b.1"])              # a difference is left
        await _call(conn, "C", "KSL", OLD, ["c.1"])              # an open call back lists it
        await _call(conn, "D", "KSL", RECENT, ["d.1"])           # inside the period
        await _call(conn, "E", "MDC", OLD, ["e.1"])              # MDC keeps everything
        await _call(conn, "F", "KSL", OLD, ["f.1"])              # its difference resolved
        await conn.execute("INSERT INTO cdr (pbx_id, uniqueid, start) VALUES ('', 'x.1', $1)",
                           OLD.replace(tzinfo=None))           # no call in the ledger
        await conn.execute(
            "INSERT INTO reconcile_differences (pbx_id, kind, linkedid, detail) "
            "VALUES ('pbx1', 'unsettled', 'B', 'still unknown')")
        await conn.execute(
            "INSERT INTO reconcile_differences (pbx_id, kind, linkedid, detail, resolved_at, "
            "resolved_by, resolved_note) VALUES ('pbx1', 'missing_in_cdr', 'F', 'no CDR', "
            "$1, 'sup', 'checked')", OLD)
        owed = await conn.fetchval(
            """INSERT INTO callback_obligations (client, caller_e164, caller_number, state,
                   reason, opened_at, due_at) VALUES ('KSL', $1, '09000000077', 'open',
                   'missed', $2, $3) RETURNING id""", OWED, OLD, NOW + timedelta(days=1))
        closed = await conn.fetchval(
            """INSERT INTO callback_obligations (client, caller_e164, caller_number, state,
                   reason, opened_at, due_at, closed_at) VALUES ('KSL', '+819000000088',
                   '09000000088', 'cancelled', 'missed', $1, $1, $1) RETURNING id""", OLD)
        await conn.execute("INSERT INTO obligation_calls (pbx_id, linkedid, obligation_id) "
                           "VALUES ('pbx1', 'C', $1)", owed)
        await _decision(conn, "KSL", "+819011112222", OLD)      # purged
        await _decision(conn, "KSL", OWED, OLD)                 # the owed callee's: kept
        await _decision(conn, "KSL", "+819011112222", RECENT)   # kept
        await _decision(conn, "MDC", "+819011112222", OLD)      # kept
        gone = [await _scheduled(conn, "KSL", "cancelled", OLD, closed),
                await _scheduled(conn, "KSL", "placed", OLD, None)]
        kept = [await _scheduled(conn, "KSL", "placed", OLD, owed),
                await _scheduled(conn, "KSL", "pending", OLD, None),
                await _scheduled(conn, "KSL", "refused", RECENT, None),
                await _scheduled(conn, "MDC", "failed", OLD, None)]

        for state, at in (("sent", OLD), ("held", OLD), ("sent", RECENT)):
            await conn.execute(
                """INSERT INTO callee_messages (client, callee_e164, channel, target, subject,
                       body, requested_by, created_at, state, not_before, updated_at)
                   VALUES ('KSL', '+819011112222', 'email', 'a@example.jp', 's', 'b', 'op',
                           $1, $2, $1, $1)""", at, state)
        [dry] = await purge(conn, NOW, dry_run=True, actor="test")
        assert await conn.fetchval("SELECT count(*) FROM cdr") == 8
        [done] = await purge(conn, NOW, dry_run=False, actor="test")
        assert dry.rows == done.rows
        assert {k: done.rows[k] for k in ("outbound_decisions", "scheduled_callbacks", "cdr",
                                           "queue_log", "calls", "callee_messages")} == \
            {"outbound_decisions": 1, "scheduled_callbacks": 2, "cdr": 3, "queue_log": 3,
             "calls": 2, "callee_messages": 1}
        calls = [r["linkedid"] for r in await conn.fetch("SELECT linkedid FROM calls "
                                                         "ORDER BY linkedid")]
        assert calls == ["B", "C", "D", "E"]
        cdr = [r["uniqueid"] for r in await conn.fetch("SELECT uniqueid FROM cdr "
                                                       "ORDER BY uniqueid")]
        assert cdr == ["b.1", "c.1", "d.1", "e.1", "x.1"]
        queue = [r["callid"] for r in await conn.fetch("SELECT callid FROM queue_log "
                                                       "ORDER BY callid")]
        assert queue == ["b.1", "c.1", "d.1", "e.1"]
        assert await conn.fetchval("SELECT count(*) FROM obligation_calls") == 1
        decisions = await conn.fetch("SELECT client, callee_e164, decided_at "
                                     "FROM outbound_decisions ORDER BY id")
        assert [(d["client"], d["callee_e164"], d["decided_at"]) for d in decisions] == [
            ("KSL", OWED, OLD), ("KSL", "+819011112222", RECENT),
            ("MDC", "+819011112222", OLD)]
        left = [r["id"] for r in await conn.fetch("SELECT id FROM scheduled_callbacks "
                                                  "ORDER BY id")]
        assert left == kept and not set(gone) & set(left)
        assert await conn.fetchval("SELECT count(*) FROM reconcile_differences") == 2
        assert [tuple(r) for r in await conn.fetch(
            "SELECT state, updated_at FROM callee_messages ORDER BY id")] == \
            [("held", OLD), ("sent", RECENT)]  # still to go; inside the period
