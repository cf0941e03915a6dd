"""The routing policy at its edges: midnight, overnight hours, holidays, closures, special
open days, unknown DIDs, withheld callers, repeat callers, overflow.  Pure: no sockets."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from agi import variables as v
from service.clients.schema import parse_clients
from service.routing.policy import decide
from service.routing.repeat import RepeatHistory

TOKYO = ZoneInfo("Asia/Tokyo")
CLIENTS = parse_clients("""
defaults:
  repeat: {earlier_calls: 2, window: 72h, queue: q-sup, priority: 10}
unknown_did: {queue: q-general, whisper: orikaeshi/whisper-unknown}
clients:
  DAY:
    name: Day Office
    dids: [0311110000]
    hours: {mon-fri: 09:00-18:00}
    closed_days: [12-29..01-03, 2026-08-13..2026-08-14]
    open_days: ["2026-12-29 10:00-12:00", "2026-12-30"]
    queue: q-day
    voicemail: 100@vm
    whisper: custom/whisper-day
  NIGHT:
    name: Night Desk
    dids: [0322220000]
    hours: {mon-fri: "22:00-06:00", sat: "00:00-24:00"}
    national_holidays: none
    queue: q-night
    voicemail: 200@vm
  SKILL:
    name: Legal Desk
    dids: [0333330000]
    hours: {daily: 00:00-24:00}
    queue: q-general
    skill_queue: {queue: q-legal, overflow_after: 20s}
    queue_timeout: 40s
    voicemail: 300@vm
  FWD:
    name: Forwarded Office
    dids: [0344440000]
    hours: {mon-fri: 09:00-17:00}
    closed: {action: forward, forward_to: "09012345678", prompt: custom/closed-fwd}
    queue: q-fwd
    after_timeout: hangup
""", "policy-test.yaml")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TOKYO)


def route(did: str, when: str, caller: str | None = "09011112222",
          history: RepeatHistory | None = None):  # type: ignore[no-untyped-def]
    return decide(CLIENTS, did, caller, at(when), history)


@pytest.mark.parametrize(("when", "action"), [
    ("2026-06-09T08:59:59", "closed"),   # Tuesday, a second before opening
    ("2026-06-09T09:00:00", "queue"),
    ("2026-06-09T17:59:59", "queue"),
    ("2026-06-09T18:00:00", "closed"),   # the end is exclusive
    ("2026-06-13T10:00:00", "closed"),   # Saturday
])
def test_weekday_hours_edges(when: str, action: str) -> None:
    assert route("0311110000", when).action == action


def test_national_holiday_on_a_weekday_is_closed_and_named() -> None:
    decision = route("0311110000", "2026-11-23T10:00:00")  # Monday, 勤労感謝の日
    assert decision.action == "closed"
    assert any("national holiday (Labor Thanksgiving Day)" in r for r in decision.reasons)


def test_year_end_closure_wraps_the_new_year() -> None:
    for day in ("2026-12-31", "2027-01-01", "2027-01-02", "2027-01-04"):
        decision = route("0311110000", f"{day}T10:00:00")
        expected = "queue" if day == "2027-01-04" else "closed"
        assert decision.action == expected, day
    assert "client's closed days (12-29..01-03)" in route(
        "0311110000", "2026-12-31T10:00:00").reasons[2]


def test_dated_closure() -> None:
    assert route("0311110000", "2026-08-13T10:00:00").action == "closed"
    assert route("0311110000", "2026-08-12T10:00:00").action == "queue"


def test_special_open_day_overrides_closure_with_its_own_hours() -> None:
    assert route("0311110000", "2026-12-29T11:00:00").action == "queue"
    assert route("0311110000", "2026-12-29T13:00:00").action == "closed"
    # A dated open day without hours of its own keeps its weekday's hours (Wednesday).
    assert route("0311110000", "2026-12-30T17:30:00").action == "queue"
    assert route("0311110000", "2026-12-30T18:30:00").action == "closed"


@pytest.mark.parametrize(("when", "action"), [
    ("2026-06-08T21:59:59", "closed"),   # Monday evening before the night shift
    ("2026-06-08T22:00:00", "queue"),
    ("2026-06-08T23:59:59", "queue"),
    ("2026-06-09T00:00:00", "queue"),    # midnight: Monday's 22:00-06:00 goes on
    ("2026-06-09T05:59:59", "queue"),
    ("2026-06-09T06:00:00", "closed"),
    ("2026-06-13T05:00:00", "queue"),    # Saturday early: Friday's night shift
    ("2026-06-13T23:59:59", "queue"),    # Saturday all day (00:00-24:00)
    ("2026-06-14T00:00:00", "closed"),   # Sunday: Saturday's 24:00 is not overnight
    ("2026-06-15T03:00:00", "closed"),   # Monday early: Sunday had no night shift
])
def test_overnight_hours_and_midnight(when: str, action: str) -> None:
    assert route("0322220000", when).action == action, route("0322220000", when).reasons


def test_closed_voicemail_decision_and_variables() -> None:
    decision = route("0311110000", "2026-06-09T20:00:00")
    names = dict(decision.variables())
    assert names[v.ACTION] == "closed" and names[v.VM_BOX] == "100@vm"
    assert names[v.ACCOUNTCODE] == "DAY" and names[v.CLIENT] == "DAY"
    assert v.QUEUE not in names  # nothing the dialplan does not need


def test_closed_forward() -> None:
    decision = route("0344440000", "2026-06-09T20:00:00")
    assert (decision.action, decision.forward_to) == ("forward", "09012345678")
    assert dict(decision.variables())[v.FORWARD_TO] == "09012345678"


def test_unknown_did_goes_to_the_default_route_flagged() -> None:
    decision = route("0399999999", "2026-06-09T10:00:00")
    assert (decision.client, decision.action, decision.queue) == (None, "queue", "q-general")
    assert "unknown_did" in decision.flags
    assert dict(decision.variables())[v.ROUTE_FLAGS] == "unknown_did"


@pytest.mark.parametrize("caller", [None, "", "anonymous", "<unknown>", "Private"])
def test_withheld_caller_is_routed_and_flagged_never_escalated(caller: str | None) -> None:
    many = RepeatHistory(calls=9)
    decision = route("0311110000", "2026-06-09T10:00:00", caller, many)
    assert decision.action == "queue" and decision.queue == "q-day"
    assert not decision.escalated and "withheld_caller" in decision.flags


def test_repeat_caller_is_escalated_with_count_and_since() -> None:
    first = at("2026-06-08T14:00:00")
    history = RepeatHistory(calls=2, first_at=first, last_at=at("2026-06-09T09:30:00"))
    decision = route("0311110000", "2026-06-09T10:00:00", "03-1234-5678", history)
    assert (decision.queue, decision.priority, decision.escalated) == ("q-sup", 10, True)
    variables = dict(decision.variables())
    assert variables[v.ESCALATED] == "1" and variables[v.ESCALATION_REASON] == "repeat_caller"
    assert variables[v.REPEAT_COUNT] == "3"
    assert variables[v.REPEAT_SINCE] == str(int(first.timestamp()))
    assert variables[v.ROUTE_TZ] == "Asia/Tokyo"
    assert any("found 2" in r for r in decision.reasons)


def test_one_earlier_call_is_not_enough() -> None:
    decision = route("0311110000", "2026-06-09T10:00:00", history=RepeatHistory(calls=1))
    assert not decision.escalated and decision.queue == "q-day"


def test_repeat_caller_outside_hours_still_gets_the_closed_handling() -> None:
    decision = route("0311110000", "2026-06-09T20:00:00", history=RepeatHistory(calls=5))
    assert decision.action == "closed" and not decision.escalated


def test_skill_queue_overflows_to_the_general_queue() -> None:
    variables = dict(route("0333330000", "2026-06-09T03:00:00").variables())
    assert variables[v.QUEUE] == "q-legal" and variables[v.QUEUE_TIMEOUT] == "20"
    assert variables[v.OVERFLOW_QUEUE] == "q-general" and variables[v.OVERFLOW_TIMEOUT] == "40"


def test_decision_order_sets_the_account_code_first() -> None:
    names = [n for n, _ in route("0311110000", "2026-06-09T10:00:00").variables()]
    assert names[0] == v.ACCOUNTCODE
    assert names == [n for n in v.ROUTE_ORDER if n in names]
