"""The outbound policy: calling hours in the callee's time across zones and daylight-saving
changes, contact limits, do-not-call, supervisor override; its evidence in PostgreSQL; the
worklist's "before the click" and click-to-call over HTTP with the app's clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app, database_ctx, web_ctx
from service.callbacks.dialer import place_callback
from service.clients.model import DoNotCall, OutboundRules
from service.clients.schema import ClientsFileError, parse_clients
from service.clients.store import load_document
from service.clock import Clock
from service.compliance.guard import check_outbound
from service.compliance.policy import (
    ContactHistory,
    Override,
    callee_day,
    decide_outbound,
)
from service.config import PbxConfig
from tests.webapp import SAMPLE, seed, web_config

WINDOW = (time(8), time(21))
TOKYO = ZoneInfo("Asia/Tokyo")


def decide(number: str, at: datetime, rules: OutboundRules | None = None,
           history: ContactHistory | None = None, override: Override | None = None,
           client_tz: str = "Asia/Tokyo"):  # type: ignore[no-untyped-def]
    return decide_outbound(number, at, calling_hours=WINDOW, client_tz=client_tz,
                           rules=rules or OutboundRules(), history=history or ContactHistory(),
                           override=override)


def test_tokyo_window_edges() -> None:
    day = datetime(2026, 6, 10, tzinfo=TOKYO)
    assert decide("+819011112222", day.replace(hour=7, minute=59)).rule == "calling_hours"
    assert decide("+819011112222", day.replace(hour=8)).allowed
    assert decide("+819011112222", day.replace(hour=20, minute=59)).allowed
    late = decide("+819011112222", day.replace(hour=21))
    assert (late.allowed, late.rule) == (False, "calling_hours")
    assert late.opens_at == datetime(2026, 6, 11, 8, tzinfo=TOKYO)
    assert "21:00 in Asia/Tokyo" in late.reason


def test_callee_time_not_the_operators_across_a_spring_forward() -> None:
    """New York moves to daylight time on 2026-03-08: 12:30 UTC is 07:30 the day before
    (refused) and 08:30 that day (allowed); the Tokyo operator's clock says 21:30 both times."""
    before = decide("+12125551234", datetime(2026, 3, 7, 12, 30, tzinfo=UTC))
    after = decide("+12125551234", datetime(2026, 3, 8, 12, 30, tzinfo=UTC))
    assert (before.allowed, before.callee_zone) == (False, "America/New_York")
    assert "07:30 in America/New_York" in before.reason
    assert after.allowed and after.callee_local is not None
    assert after.callee_local.utcoffset() == timedelta(hours=-4)
    # Refused at local midnight of the change: opens at 08:00 EDT, 12:00 UTC (not 13:00).
    night = decide("+12125551234", datetime(2026, 3, 8, 5, 0, tzinfo=UTC))
    assert night.opens_at is not None
    assert night.opens_at.astimezone(UTC) == datetime(2026, 3, 8, 12, tzinfo=UTC)
    # That day has 23 hours: attempts are counted in the callee's real day.
    start, end = callee_day("+12125551234", datetime(2026, 3, 8, 15, tzinfo=UTC),
                            OutboundRules(), "Asia/Tokyo")
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)


def test_fall_back_in_london() -> None:
    """London leaves summer time on 2026-10-25: 07:30 UTC is 08:30 BST on the 24th, 07:30
    GMT on the 25th."""
    assert decide("+442071234567", datetime(2026, 10, 24, 7, 30, tzinfo=UTC)).allowed
    back = decide("+442071234567", datetime(2026, 10, 25, 7, 30, tzinfo=UTC))
    assert not back.allowed and back.opens_at is not None
    assert back.opens_at.astimezone(UTC) == datetime(2026, 10, 25, 8, tzinfo=UTC)
    # 20:30 UTC on the 25th is 20:30 GMT: still inside (it was 21:30 BST the day before).
    assert decide("+442071234567", datetime(2026, 10, 25, 20, 30, tzinfo=UTC)).allowed
    assert not decide("+442071234567", datetime(2026, 10, 24, 20, 30, tzinfo=UTC)).allowed


def test_a_number_in_several_zones_needs_every_one_inside() -> None:
    """A US toll-free number may ring from Guam to Hawaii to New York."""
    at = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)   # 10:00 New York, 04:00 Honolulu
    assert decide("+12125551234", at).allowed
    wide = decide("+18005551234", at)
    assert not wide.allowed and "time zones" in wide.reason


def test_client_override_of_the_callee_zone() -> None:
    """A client whose Japanese-numbered callees live abroad judges them in its own zone."""
    at = datetime(2026, 6, 10, 13, 0, tzinfo=UTC)   # 22:00 in Tokyo
    abroad = OutboundRules(callee_timezone="Europe/Berlin")  # 15:00 in Berlin
    assert not decide("+819011112222", at).allowed
    allowed = decide("+819011112222", at, abroad)
    assert allowed.allowed and allowed.callee_zone == "Europe/Berlin"


def test_limits_do_not_call_and_override() -> None:
    at = datetime(2026, 6, 10, 10, 0, tzinfo=TOKYO)
    limited = OutboundRules(max_attempts_per_day=3, min_gap_s=7200,
                            do_not_call=(DoNotCall("+81312340000", "workplace"),
                                         DoNotCall("+8150", "IP phones", whole_number=False)))
    assert decide("+819011112222", at, limited, ContactHistory(2, at - timedelta(hours=3))
                  ).allowed
    third = decide("+819011112222", at, limited, ContactHistory(3, at - timedelta(hours=3)))
    assert (third.rule, third.opens_at) == ("max_attempts",
                                            datetime(2026, 6, 11, 8, tzinfo=TOKYO))
    gap = decide("+819011112222", at, limited, ContactHistory(1, at - timedelta(minutes=30)))
    assert gap.rule == "min_gap" and gap.opens_at == at + timedelta(minutes=90)
    assert "next in 90 min" in gap.reason
    assert decide("+81312340000", at, limited).rule == "do_not_call"
    assert decide("+815012345678", at, limited).reason.endswith("(IP phones)")
    assert decide("+81312340001", at, limited).allowed
    # Override: only where the rules allow, only with a reason, never for do-not-call.
    late = at.replace(hour=22)
    asked = Override("sup301", "the patient asked to be called after work")
    assert not decide("+819011112222", late, limited, override=asked).allowed
    lenient = OutboundRules(supervisor_override=True,
                            do_not_call=(DoNotCall("+81312340000", "workplace"),))
    passed = decide("+819011112222", late, lenient, override=asked)
    assert passed.allowed and passed.overridden == asked
    assert passed.evidence_rule == "calling_hours+override"
    assert not decide("+819011112222", late, lenient, override=Override("sup301", " ")).allowed
    assert decide("+81312340000", at, lenient, override=asked).rule == "do_not_call"


def test_clients_file_outbound_rules() -> None:
    directory = parse_clients(SAMPLE.read_text().replace(
        "    notes: Lawyers return calls after court hours. Never give legal advice.\n",
        "    notes: Lawyers return calls after court hours. Never give legal advice.\n"
        "    outbound:\n      max_attempts_per_day: 3\n      min_gap: 2h\n"
        "      supervisor_override: yes\n      callee_timezone: Asia/Tokyo\n"
        "      do_not_call:\n        - {number: 03-1234-0000, reason: workplace}\n"
        "        - {prefix: '050', reason: IP phones}\n"), "c.yaml")
    rules = directory.clients["KSL"].outbound
    assert (rules.max_attempts_per_day, rules.min_gap_s, rules.supervisor_override) == \
        (3, 7200.0, True)
    assert rules.do_not_call == (DoNotCall("+81312340000", "workplace"),
                                 DoNotCall("+8150", "IP phones", False))
    assert directory.clients["MDC"].outbound == OutboundRules()
    with pytest.raises(ClientsFileError) as bad:
        parse_clients(SAMPLE.read_text().replace(
            "    plan_calls: 300\n",
            "    plan_calls: 300\n    outbound:\n      max_attempts_per_day: 0\n"
            "      do_not_call: [{number: 'abc', reason: x}, {prefix: '050'}]\n"), "c.yaml")
    text = "\n".join(bad.value.errors)
    assert "max_attempts_per_day: '0' is not a whole number from 1 to 1000" in text
    assert "'abc' is not a phone number" in text
    assert "every entry needs a reason" in text


LIMITED = SAMPLE.read_text().replace(
    "    plan_calls: 300\n",
    "    plan_calls: 300\n    outbound:\n      max_attempts_per_day: 1\n"
    "      supervisor_override: true\n"
    "      do_not_call: [{number: 090-0000-0003, reason: workplace}]\n")


async def test_attempts_count_in_the_callees_day_and_race_safely(pool) -> None:
    async with pool.acquire() as conn:
        _, directory = await load_document(conn, LIMITED, "limited.yaml")
    ksl = directory.clients["KSL"]
    evening = datetime(2026, 6, 10, 20, 30, tzinfo=TOKYO)

    async def attempt(at: datetime) -> bool:
        async with pool.acquire() as conn:
            checked = await check_outbound(conn, ksl, "09011112222", path="handset", now=at,
                                           requested_by="201", operator="201")
        return checked.decision.allowed

    # Five operators at once, a limit of one a day: exactly one dials.
    results = await asyncio.gather(*(attempt(evening) for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    # Next morning is another day for the callee.
    assert await attempt(evening + timedelta(hours=12)) is True
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT allowed, rule FROM outbound_decisions ORDER BY id")
    assert sum(r["allowed"] for r in rows) == 2
    assert {r["rule"] for r in rows if not r["allowed"]} == {"max_attempts"}


async def test_a_failed_originate_is_not_an_attempt(pool) -> None:
    async with pool.acquire() as conn:
        await load_document(conn, LIMITED, "limited.yaml")
        morning = datetime(2026, 6, 10, 10, tzinfo=TOKYO)
        first = await place_callback(None, conn, PbxConfig(), client="KSL",
                                     number="09011112222", operator="201",
                                     requested_by="sup301", now=morning, path="scheduled")
        assert first.reason == "no AMI session to the PBX"
        # Nobody rang: the limit of one is still free for the handset.
        rows = await conn.fetch("SELECT path, allowed, result FROM outbound_decisions")
        assert [tuple(r) for r in rows] == [("scheduled", True, "failed")]


@pytest.fixture
async def api(db_url: str, pool, tmp_path: Path, service_clock: Clock
              ) -> AsyncIterator[tuple[TestClient, dict[str, str], dict[str, list[int]]]]:
    seeded = await seed(pool)
    async with pool.acquire() as conn:
        await load_document(conn, LIMITED, "limited.yaml")
    # 22:30 in Tokyo on the clock's day (today, or a year on).
    day = service_clock().astimezone(TOKYO).date()
    late = datetime.combine(day, time(22, 30), tzinfo=TOKYO)
    app = create_app(web_config(tmp_path, db_url), [database_ctx, web_ctx],
                     clock=lambda: late)
    async with TestClient(TestServer(app)) as client:
        yield client, seeded.tokens, seeded.obligations


async def test_worklist_shows_the_refusal_before_the_click(api, pool) -> None:
    client, tokens, obligations = api
    headers = {"Authorization": f"Bearer {tokens['op']}"}
    response = await client.get("/api/obligations?client=KSL&state=open", headers=headers)
    items = (await response.json())["items"]
    assert items and all(i["contact_allowed"] is False for i in items)
    dnc = next(i for i in items if i["caller_e164"] == "+819000000003")
    assert dnc["refusal_rule"] == "do_not_call" and "workplace" in dnc["refusal_reason"]
    other = next(i for i in items if i["caller_e164"] == "+819000000001")
    assert other["refusal_rule"] == "calling_hours"
    # In the callee's time, with its offset: 08:00 the next morning in Tokyo.
    opens = datetime.fromisoformat(other["opens_at"])
    assert opens.utcoffset() == timedelta(hours=9) and opens.time() == time(8, 0)
    # The click is refused the same way, and recorded.
    ob = obligations["KSL"][1]
    response = await client.post(f"/api/obligations/{ob}/call", headers=headers,
                                 json={"operator": "201"})
    assert response.status == 409
    assert "outside the allowed calling hours" in (await response.json())["reason"]
    # An operator cannot override; a supervisor can (the client allows it), with a reason.
    response = await client.post(f"/api/obligations/{ob}/call", headers=headers,
                                 json={"operator": "201", "override_reason": "asked"})
    assert response.status == 400
    sup = {"Authorization": f"Bearer {tokens['sup']}"}
    response = await client.post(f"/api/obligations/{ob}/call", headers=sup,
                                 json={"operator": "201",
                                       "override_reason": "the caller asked for 22:30"})
    assert "no AMI session" in (await response.json())["reason"]  # allowed, no PBX here
    # Do-not-call is never overridden.
    dnc_ob = obligations["KSL"][3]
    response = await client.post(f"/api/obligations/{dnc_ob}/call", headers=sup,
                                 json={"operator": "201", "override_reason": "urgent"})
    assert response.status == 409 and "do-not-call" in (await response.json())["reason"]
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT path, requested_by, allowed, rule, override_by, "
                                "override_reason FROM outbound_decisions ORDER BY id")
    assert [tuple(r) for r in rows] == [
        ("click_to_call", "op", False, "calling_hours", None, None),
        ("click_to_call", "sup", True, "calling_hours", "sup",
         "the caller asked for 22:30"),
        ("click_to_call", "sup", False, "do_not_call", None, None),
    ]
    # Scheduling: a time without its offset is refused; with it, the row waits for its time.
    response = await client.post(f"/api/obligations/{ob}/schedule", headers=headers,
                                 json={"operator": "201", "at": "2026-12-02T09:30:00"})
    assert response.status == 400 and "offset" in (await response.json())["error"]
    # 09:30 the next morning in Tokyo (a time after the clock's, inside the hours).
    response = await client.post(f"/api/obligations/{ob}/schedule", headers=headers,
                                 json={"operator": "201",
                                       "at": (opens + timedelta(minutes=90)).isoformat()})
    assert response.status == 201
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM scheduled_callbacks")
    assert (row["state"], row["requested_by"], row["obligation_id"]) == ("pending", "op", ob)


async def test_handset_guard_fails_closed_when_the_database_is_away() -> None:
    """The outbound_guard route over a real socket: a check that cannot reach PostgreSQL (or
    is too slow) refuses the dial with the "cannot check" prompt; a bad number too."""
    import asyncpg

    from agi.context import AgiContext
    from agi.outbound_guard import outbound_guard
    from agi.server import AgiServer
    from service.routing.cache import RoutingCache
    from tests.agi_peer import agi_session, route_headers
    from tests.live_asterisk import free_port

    async def database_away(dial, at):  # type: ignore[no-untyped-def]
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    cache = RoutingCache()
    cache.directory = parse_clients(SAMPLE.read_text(), "c.yaml")
    server = AgiServer(state=AgiContext(cache, check_outbound=database_away))
    server.add_route("outbound_guard", outbound_guard)
    port = free_port()
    await server.start("127.0.0.1", port)
    try:
        headers = [(k, v) for k, v in route_headers("09011112222", "201",
                                                    script="outbound_guard")
                   if k not in ("agi_arg_1", "agi_channel")]
        sent = await agi_session(port, [*headers, ("agi_channel", "PJSIP/201-00000001"),
                                        ("agi_arg_1", "09011112222"), ("agi_arg_2", "KSL")])
        bad = await agi_session(port, [*headers, ("agi_arg_1", "0901;Dial(x)")])
    finally:
        await server.close()
    for commands in (sent, bad):
        assert commands == ['EXEC MSet "OUTBOUND_ALLOWED=0,OUTBOUND_RULE=unavailable,'
                            'OUTBOUND_PROMPT=orikaeshi/outbound-guard-unavailable"']


async def test_outbound_usage_per_client_and_month(pool) -> None:
    """The client's month in its own time zone: a call at 23:30 UTC on 31 October is
    November in Tokyo."""
    from datetime import date

    from service.store.outbound_usage_sql import outbound_usage

    async with pool.acquire() as conn:
        _, directory = await load_document(conn, LIMITED, "limited.yaml")
        for i, (at, result) in enumerate((
                (datetime(2026, 10, 31, 23, 30, tzinfo=UTC), "answered"),   # Nov in Tokyo
                (datetime(2026, 11, 15, 3, 0, tzinfo=UTC), "busy"),
                (datetime(2026, 11, 30, 15, 30, tzinfo=UTC), "answered"),   # Dec in Tokyo
                (datetime(2026, 10, 31, 14, 0, tzinfo=UTC), "answered"))):  # Oct in Tokyo
            await conn.execute(
                """INSERT INTO calls (pbx_id, linkedid, direction, client, callee_number,
                       callee_e164, started_at, answered_at, ended_at, dial_result)
                   VALUES ('pbx1', $1, 'outbound', 'KSL', '09011112222', '+819011112222',
                           $2::timestamptz,
                           CASE WHEN $3 = 'answered' THEN $2::timestamptz + interval '5 s' END,
                           $2::timestamptz + interval '65 s', $3::text)""",
                f"out{i}", at, result)
        ksl = directory.clients["KSL"]
        nov = datetime(2026, 11, 10, 10, tzinfo=TOKYO)
        for number in ("09011112222", "09011112222", "09000000003"):
            await check_outbound(conn, ksl, number, path="handset", now=nov,
                                 requested_by="201", operator="201")
        usage = await outbound_usage(conn, "KSL", date(2026, 11, 1), date(2026, 12, 1))
        other = await outbound_usage(conn, "MDC", date(2026, 11, 1), date(2026, 12, 1))
    assert {k: usage[k] for k in ("calls", "answered", "talk_s", "allowed", "refused")} == \
        {"calls": 2, "answered": 1, "talk_s": 60, "allowed": 1, "refused": 2}
    assert usage["refused_by_rule"] == {"do_not_call": 1, "max_attempts": 1}
    assert usage["decisions_by_path"] == {"handset": 3}
    assert usage["from"] == "2026-11-01T00:00:00+09:00"
    assert (other["calls"], other["allowed"], other["refused"]) == (0, 0, 0)


def test_guard_include_uses_only_the_contract_names_and_ships_its_prompts() -> None:
    from agi.outbound_guard import PROMPTS
    from service.dialplan.check import check_variables

    conf = (SAMPLE.parents[1] / "dialplan" / "outbound-guard.conf").read_text()
    assert check_variables(conf, must_read=("OUTBOUND_ALLOWED", "OUTBOUND_PROMPT",
                                            "OUTBOUND_RULE")) == []
    sounds = SAMPLE.parents[1] / "dialplan" / "sounds"
    for prompt in set(PROMPTS.values()):
        assert (sounds / f"{prompt}.wav").stat().st_size > 10_000, prompt


async def test_scheduled_call_backs_under_the_policy(pool) -> None:
    """A call back scheduled for 22:30 Tokyo is refused then and moved to 08:00 the next
    morning, where it is placed (the Originate reaches the PBX); one to a do-not-call number
    is refused for good; without a PBX session it is tried again a minute later."""
    from service.compliance.scheduler import ScheduledCallbacks, schedule
    from tests.replaying import logged_in_ami

    async with pool.acquire() as conn:
        await load_document(conn, LIMITED, "limited.yaml")
        late = datetime(2026, 6, 10, 22, 30, tzinfo=TOKYO)
        kept = await schedule(conn, obligation_id=None, client="KSL",
                              callee_e164="+819011112222", operator="201",
                              requested_by="sup", run_at=late)
        barred = await schedule(conn, obligation_id=None, client="KSL",
                                callee_e164="+819000000003", operator="201",
                                requested_by="sup", run_at=late)
    now = {"at": late}
    pbx = PbxConfig(phone_channel="Local/{ext}@opphone/n")
    async with logged_in_ami() as (ami, server):
        ami_now: dict[str, object] = {"ami": ami}
        worker = ScheduledCallbacks(pool, lambda: (pbx, ami_now["ami"]),  # type: ignore[arg-type,return-value]
                                    clock=lambda: now["at"])
        assert await worker.run_once() == 2
        async with pool.acquire() as conn:
            rows = {r["id"]: r for r in await conn.fetch("SELECT * FROM scheduled_callbacks")}
        assert rows[kept]["state"] == "pending"
        assert rows[kept]["run_at"] == datetime(2026, 6, 11, 8, tzinfo=TOKYO)
        assert rows[kept]["last_reason"].startswith("moved to 2026-06-11T08:00:00+09:00")
        assert (rows[barred]["state"], "workplace" in rows[barred]["last_reason"]) == \
            ("refused", True)
        assert await worker.run_once() == 0  # nothing due before 08:00
        now["at"] = datetime(2026, 6, 11, 8, 0, 30, tzinfo=TOKYO)
        ami_now["ami"] = None  # the PBX away: tried again a minute later
        assert await worker.run_once() == 1
        async with pool.acquire() as conn:
            retry = await conn.fetchrow("SELECT * FROM scheduled_callbacks WHERE id = $1", kept)
        assert (retry["state"], retry["run_at"]) == ("pending", now["at"] + timedelta(minutes=1))
        ami_now["ami"] = ami
        now["at"] += timedelta(minutes=1)
        assert await worker.run_once() == 1
        originates = [a for a in server.actions if a.get("Action") == "Originate"]
    assert [o["Exten"] for o in originates] == ["09011112222"]
    async with pool.acquire() as conn:
        state = await conn.fetchval("SELECT state FROM scheduled_callbacks WHERE id = $1", kept)
        decisions = await conn.fetch("SELECT path, allowed, rule, result FROM outbound_decisions "
                                     "ORDER BY id")
    assert state == "placed"
    assert [tuple(d) for d in decisions] == [
        ("scheduled", False, "calling_hours", None), ("scheduled", False, "do_not_call", None),
        ("scheduled", True, "allowed", "failed"), ("scheduled", True, "allowed", "originated")]


async def test_a_placed_call_back_is_confirmed_once_by_the_handset_guard(pool) -> None:
    """Click-to-call decided (and counted) before its Originate; the guard in the outbound
    context confirms that decision once. A repeated, stale or other callee's id is decided
    afresh (and with a limit of one a day, refused)."""
    from service.store.compliance_sql import set_result

    async with pool.acquire() as conn:
        _, directory = await load_document(conn, LIMITED, "limited.yaml")
        ksl = directory.clients["KSL"]
        at = datetime(2026, 6, 10, 10, tzinfo=TOKYO)
        clicked = await check_outbound(conn, ksl, "09011112222", path="click_to_call", now=at,
                                       requested_by="sup", operator="201")
        await set_result(conn, clicked.decision_id, "originated")

        async def handset(number: str, decision: int, when: datetime) -> tuple[bool, str]:
            checked = await check_outbound(conn, ksl, number, path="handset", now=when,
                                           requested_by="201", operator="201",
                                           placed_decision=decision)
            return checked.decision.allowed, checked.decision.rule

        other = await check_outbound(conn, ksl, "09033334444", path="click_to_call", now=at,
                                     requested_by="sup", operator="201")
        await set_result(conn, other.decision_id, "originated")
        # Another callee's id does not let this number through: decided afresh (limit hit).
        assert await handset("09011112222", other.decision_id, at) == (False, "max_attempts")
        assert await handset("09011112222", clicked.decision_id, at) == (True, "allowed")
        # Used once: a second call with the same id is a new attempt, over the limit.
        assert await handset("09011112222", clicked.decision_id, at) == (False, "max_attempts")
        # Stale (over five minutes): decided afresh.
        assert await handset("09033334444", other.decision_id,
                             at + timedelta(minutes=6)) == (False, "max_attempts")
        rows = await conn.fetch("SELECT path, allowed, result FROM outbound_decisions "
                                "ORDER BY id")
    assert [tuple(r) for r in rows] == [
        ("click_to_call", True, "dialled"), ("click_to_call", True, "originated"),
        ("handset", False, None), ("handset", False, None), ("handset", False, None)]
