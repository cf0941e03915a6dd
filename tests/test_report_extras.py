"""The monthly report's outbound usage (issue 13: plans count outbound calls too), 手上げ
(hold and help seconds) and complaints (a client sees only the count) for one month in the
client's time zone, recomputed here from the rows put into a real PostgreSQL, with rows on
both sides of the month's local edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from service.clients.store import load_document
from service.reports.monthly import monthly_report
from service.reports.render import figure_rows, to_csv

TOKYO = ZoneInfo("Asia/Tokyo")
CLIENTS = """
clients:
  KSL:
    name: Kasumi Law Office
    dids: [0312345678]
    hours: {mon-fri: 09:00-18:00}
    queue: q-ksl
    voicemail: 1001@lab
    plan_calls: 3
    plan_counts: answered
    plan_outbound: true
    overage_price: 200
  MDC:
    name: Midori Clinic
    dids: [0663330001]
    hours: {mon-sat: 08:30-19:00}
    queue: q-mdc
    voicemail: 1002@lab
    plan_calls: 3
"""
START = datetime(2026, 11, 1, tzinfo=TOKYO)       # 2026-10-31 15:00 UTC
END = datetime(2026, 12, 1, tzinfo=TOKYO)


async def seed(conn) -> None:  # type: ignore[no-untyped-def]
    await load_document(conn, CLIENTS, "clients.yaml")
    # Outbound calls: 2 answered (60 s and 30 s talk) and 1 busy in November; one answered
    # a second before November began in Tokyo (still October there) is not counted.
    for i, (at, answered, talk) in enumerate((
            (START + timedelta(days=2), True, 60), (START + timedelta(days=3), True, 30),
            (START + timedelta(days=4), False, 0), (START - timedelta(seconds=1), True, 45))):
        await conn.execute(
            """INSERT INTO calls (pbx_id, linkedid, direction, client, caller_number,
                   uniqueids, started_at, answered_at, ended_at, dial_result)
               VALUES ('pbx1', $1, 'outbound', $2, '201', $3, $4, $5, $6, $7)""",
            f"out.{i}", "KSL", [f"out.{i}"], at, at + timedelta(seconds=5) if answered else None,
            at + timedelta(seconds=5 + talk), "answered" if answered else "busy")
    for allowed, rule, override in ((True, "allowed", None), (True, "allowed", "sup"),
                                    (False, "calling_hours", None), (False, "do_not_call", None)):
        await conn.execute(
            """INSERT INTO outbound_decisions (decided_at, client, callee_e164, dialled, path,
                   allowed, rule, reason, override_by, override_reason)
               VALUES ($1, 'KSL', '+819011112222', '09011112222', 'click_to_call', $2, $3,
                       'r', $4, $5)""",
            START + timedelta(days=5), allowed, rule, override, "asked" if override else None)
    for state, sent in (("sent", START + timedelta(days=6)), ("sent", END + timedelta(hours=1)),
                        ("held", None)):
        await conn.execute(
            """INSERT INTO callee_messages (client, callee_e164, channel, target, subject, body,
                   requested_by, created_at, state, not_before, sent_at, updated_at)
               VALUES ('KSL', '+819011112222', 'email', 'a@b.jp', 's', 'b', 'op', $1, $2, $1,
                       $3, $1)""", START + timedelta(days=6), state, sent)
    for held, hold_s, help_s in ((START + timedelta(days=7), 95.5, 60.0),
                                 (START + timedelta(days=8), 20.0, None),
                                 (END + timedelta(seconds=1), 500.0, 400.0)):
        await conn.execute(
            """INSERT INTO handraises (pbx_id, client, operator, caller_channel, via, held_at,
                   ended_at, resolution, hold_s, help_s)
               VALUES ('pbx1', 'KSL', '201', 'PJSIP/trunk-1', 'api', $1, $2, 'taken_over',
                       $3, $4)""", held, held + timedelta(seconds=hold_s), hold_s, help_s)
    for at, client in ((START + timedelta(days=9), "KSL"), (START + timedelta(days=10), "KSL"),
                       (START + timedelta(days=10), "MDC"), (END, "KSL")):
        await conn.execute(
            """INSERT INTO complaints (client, category, body, created_by, created_at)
               VALUES ($1, 'operator_attitude', '担当者の口調について', 'sup', $2)""",
            client, at)
    # KSL answered two inbound calls in November: with the two answered outbound calls, four
    # count towards a plan of three.
    for i in range(2):
        at = START + timedelta(days=11, minutes=i)
        await conn.execute(
            """INSERT INTO calls (pbx_id, linkedid, direction, client, caller_number, uniqueids,
                   started_at, answered_at, ended_at, outcome, wait_s, talk_s, answered_by)
               VALUES ('pbx1', $1, 'inbound', 'KSL', '09011112222', $2, $3, $4, $5,
                       'answered', 3, 40, '201')""",
            f"in.{i}", [f"in.{i}"], at, at + timedelta(seconds=3), at + timedelta(seconds=43))


async def test_outbound_handraises_and_complaints_in_the_month(pool) -> None:
    async with pool.acquire() as conn:
        await seed(conn)
        ksl = await monthly_report(conn, "KSL", "2026-11", now=datetime(2026, 12, 1, tzinfo=UTC))
        mdc = await monthly_report(conn, "MDC", "2026-11", now=datetime(2026, 12, 1, tzinfo=UTC))
    assert ksl["outbound"] == {"calls": 3, "answered": 2, "talk_s": 90, "allowed": 2,
                               "refused": 2, "overridden": 1, "messages_sent": 1}
    assert ksl["handraises"] == {"count": 2, "hold_s": 115.5, "hold_avg_s": 57.8,
                                 "hold_max_s": 95.5, "help_s": 60.0}
    assert (ksl["complaints"], mdc["complaints"]) == (2, 1)
    assert ksl["plan"]["counted_calls"] == 4 and ksl["plan"]["counted_outbound_calls"] == 2
    assert (ksl["plan"]["overage_calls"], ksl["plan"]["overage_amount"]) == (1, 200)
    # A plan without plan_outbound leaves outbound calls out.
    assert mdc["plan"]["counts_outbound"] is False and mdc["outbound"]["calls"] == 0
    rows = {(section, name): value for section, name, value in figure_rows(ksl, "ja")}
    assert rows[("発信", "発信数")] == 3 and rows[("苦情", "苦情件数")] == 2
    assert rows[("ご契約プラン", "カウント対象")] == "応答した着信＋発信"
    english = to_csv(ksl, "en").decode("utf-8-sig")
    assert "Hand raises (caller on hold),Average hold (s),57.8" in english
    # Complaints are a count only: no text, no operator names on the client's report.
    assert "担当者の口調" not in to_csv(ksl, "ja").decode("utf-8-sig")
