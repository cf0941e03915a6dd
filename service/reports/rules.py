"""The monthly report's rules, as pure functions: the month in a client's time zone, the
service level, what counts towards the plan and the overage.  No SQL, no clock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class ReportError(ValueError):
    """The report cannot be made as asked (bad month, unknown client...)."""


@dataclass(frozen=True)
class Period:
    """A calendar month in one time zone: ``[start, end)`` as instants, local midnights."""

    month: str          # "2026-11"
    timezone: str
    first_day: date
    start: datetime     # aware, UTC
    end: datetime

    @property
    def days(self) -> list[date]:
        count = (self.next_month_first_day - self.first_day).days
        return [self.first_day + timedelta(days=i) for i in range(count)]

    @property
    def next_month_first_day(self) -> date:
        return next_month(self.first_day)


def next_month(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def parse_month(text: str) -> date:
    """``2026-11`` -> date(2026, 11, 1); ReportError for anything else."""
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise ReportError(f"{text!r} is not a month (YYYY-MM)")
    return date(int(match.group(1)), int(match.group(2)), 1)


def month_period(month: str, timezone: str) -> Period:
    """The month ``YYYY-MM`` in ``timezone``: from local midnight of its first day to local
    midnight of the next month's first day (so a month is 720 h ± a DST change).

    >>> p = month_period("2026-11", "Asia/Tokyo")
    >>> p.start.isoformat(), p.end.isoformat()
    ('2026-10-31T15:00:00+00:00', '2026-11-30T15:00:00+00:00')
    """
    first = parse_month(month)
    zone = ZoneInfo(timezone)
    start = datetime.combine(first, time(0), zone).astimezone(UTC)
    end = datetime.combine(next_month(first), time(0), zone).astimezone(UTC)
    return Period(f"{first:%Y-%m}", timezone, first, start, end)


def previous_month(now: datetime, timezone: str) -> str:
    """The month before the one ``now`` falls in, in the client's calendar (what the 1st's
    report covers).

    >>> previous_month(datetime(2026, 11, 30, 15, 30, tzinfo=UTC), "Asia/Tokyo")
    '2026-11'
    """
    local = now.astimezone(ZoneInfo(timezone)).date()
    last_of_previous = local.replace(day=1) - timedelta(days=1)
    return f"{last_of_previous:%Y-%m}"


def service_level(answered_within: int, offered: int) -> float | None:
    """Percentage of offered calls answered within the threshold, one decimal; None when
    nothing was offered (0 % would claim a failure that did not happen).

    >>> service_level(8, 10), service_level(0, 0)
    (80.0, None)
    """
    if offered <= 0:
        return None
    return round(100.0 * answered_within / offered, 1)


SERVICE_LEVEL_DEFINITION = {
    "ja": "サービスレベル = しきい値 {threshold} 秒以内に応答した通話 ÷ 着信数（5 秒以内の"
          "短時間放棄を除く）。待ち時間は着信キューに入ってから応答までの時間です。",
    "en": "Service level = calls answered within {threshold} s ÷ calls offered, short "
          "abandons (caller hung up within the short-abandon threshold) excluded. The wait "
          "is from joining the queue to being answered.",
}


def plan_usage(plan_calls: int | None, counts: str, offered: int, answered: int,
               overage_price: int | None, outbound: int | None = None) -> dict[str, object]:
    """Plan usage: which calls count (``answered`` or ``offered``), how many, how many over
    the plan and what they cost (JPY, whole yen).  Without a plan nothing is over.
    ``outbound``: the outbound calls that count too (``plan_outbound``: answered ones, or
    every one placed when the plan counts offered calls); None when the plan leaves them out.

    >>> plan_usage(300, "answered", 350, 310, 150)["overage_amount"]
    1500
    >>> plan_usage(300, "offered", 350, 310, 150)["overage_calls"]
    50
    >>> used = plan_usage(300, "answered", 350, 290, 150, outbound=25)
    >>> used["counted_calls"], used["counted_outbound_calls"], used["overage_amount"]
    (315, 25, 2250)
    """
    if counts not in ("answered", "offered"):
        raise ReportError(f"plan_counts must be answered or offered, not {counts!r}")
    counted = (answered if counts == "answered" else offered) + (outbound or 0)
    over = max(0, counted - plan_calls) if plan_calls is not None else 0
    return {"plan_calls": plan_calls, "counts": counts, "counted_calls": counted,
            "counts_outbound": outbound is not None, "counted_outbound_calls": outbound or 0,
            "overage_calls": over, "overage_price": overage_price,
            "overage_amount": over * overage_price if overage_price is not None else None}


def mean(total: float, count: int) -> float | None:
    """An average rounded to 0.1 s, None for no samples.

    >>> mean(10.0, 4), mean(0.0, 0)
    (2.5, None)
    """
    return None if count == 0 else round(total / count, 1)


MISSED_FOR_PUSH = frozenset({"abandoned", "short_abandon", "ivr_hangup", "timeout", "no_agents",
                             "queue_full", "exit_key", "after_hours"})


def push_kind(outcome: str | None, forward_answered: bool | None, caller_e164: str | None,
              voicemail_left: bool) -> str | None:
    """What an ended inbound call pushes to its client: ``voicemail`` (a voicemail was
    left, whatever the number), ``missed_call`` (missed, with a number to call back), or
    None.  ``unknown`` calls wait for reconciliation, as call backs do.

    >>> push_kind("timeout", None, "+81312345678", True), push_kind("abandoned", None, None, False)
    ('voicemail', None)
    """
    if voicemail_left:
        return "voicemail"
    missed = outcome in MISSED_FOR_PUSH or (outcome == "forwarded" and forward_answered is False)
    return "missed_call" if missed and caller_e164 else None


def digest_cutoff(mode: str, oldest: datetime, now: datetime, *, every_s: float | None,
                  daily_at: time | None, timezone: str) -> datetime | None:
    """When a client's unsent pushes are due, the instant up to which they go now (items
    at or before it), or None when nothing is due yet.

    * ``immediate``: everything, now.
    * ``digest``: once the oldest unsent item is ``every_s`` old, everything up to now.
    * ``daily``: at ``daily_at`` local time, everything from before that moment today.

    >>> at = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    >>> digest_cutoff("digest", at, at + timedelta(minutes=29), every_s=1800, daily_at=None,
    ...               timezone="UTC") is None
    True
    """
    if mode == "immediate":
        return now
    if mode == "digest":
        return now if now - oldest >= timedelta(seconds=every_s or 3600) else None
    if mode == "daily":
        zone = ZoneInfo(timezone)
        local = now.astimezone(zone)
        slot = datetime.combine(local.date(), daily_at or time(8, 0), zone)
        if local < slot:
            slot -= timedelta(days=1)
        return slot.astimezone(UTC) if oldest < slot else None
    return None


def report_due(now: datetime, timezone: str, catch_up_days: int = 7) -> str | None:
    """The month whose report is due at ``now`` in the client's calendar: the previous
    month, from local midnight of the 1st, for ``catch_up_days`` days (a service that was
    down on the 1st still sends it; one installed mid-month does not send old months).

    >>> report_due(datetime(2026, 11, 30, 15, 0, 30, tzinfo=UTC), "Asia/Tokyo")
    '2026-11'
    >>> report_due(datetime(2026, 11, 30, 14, 59, tzinfo=UTC), "Asia/Tokyo") is None
    True
    """
    local = now.astimezone(ZoneInfo(timezone))
    if local.day > catch_up_days:
        return None
    return previous_month(now, timezone)
