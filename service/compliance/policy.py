"""The outbound policy.  Pure: every outbound path (click-to-call, a scheduled call back, a
number dialled from a handset, a message sent to a callee) asks :func:`decide_outbound`.

Order of the rules, first refusal wins:

1. ``not_callable``: not a number that can be dialled;
2. ``do_not_call``: on the client's do-not-call list (a number or a prefix, with its reason,
   e.g. ``workplace``).  Never overridden;
3. ``calling_hours``: outside the client's window (08:00-21:00 by default, 貸金業法) in the
   **callee's** local time (the zone of the number from ``phonenumbers``, or the client's
   ``outbound.callee_timezone``; a number that may ring in several zones must be inside the
   window in every one);
4. ``max_attempts``: the callee already had the client's ``max_attempts_per_day`` attempts
   on the callee's local day;
5. ``min_gap``: the last attempt to the callee is more recent than ``min_gap``.

A supervisor may override 3-5, only when the client's rules say ``supervisor_override: true``
and only with a reason; the decision then says who and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.callbacks.guard import callee_zones
from service.clients.model import OutboundRules

PATHS = ("click_to_call", "scheduled", "handset", "message")
RULES = ("allowed", "not_callable", "do_not_call", "calling_hours", "max_attempts", "min_gap",
         "unavailable")
OVERRIDABLE = ("calling_hours", "max_attempts", "min_gap")


@dataclass(frozen=True)
class ContactHistory:
    """What the callee already had from this client (allowed attempts only)."""

    attempts_today: int = 0
    last_attempt_at: datetime | None = None


@dataclass(frozen=True)
class Override:
    by: str
    reason: str


@dataclass(frozen=True)
class OutboundDecision:
    allowed: bool
    rule: str               # one of RULES: "allowed" or why it was refused
    reason: str             # for people: the prompt, the worklist, the evidence
    callee_zone: str
    callee_local: datetime | None
    opens_at: datetime | None = None   # when the callee may next be dialled; None = never/now
    overridden: Override | None = None

    @property
    def evidence_rule(self) -> str:
        """The rule that decided, with an override marked (``calling_hours+override``)."""
        return f"{self.rule}+override" if self.overridden else self.rule


def zones_for(callee_e164: str, rules: OutboundRules, client_tz: str) -> list[str]:
    """The callee's zones: the client's override, else the number's, else the client's."""
    return [rules.callee_timezone] if rules.callee_timezone else callee_zones(callee_e164,
                                                                              client_tz)


def callee_day(callee_e164: str, now: datetime, rules: OutboundRules,
               client_tz: str) -> tuple[datetime, datetime]:
    """The callee's local day around ``now`` as [start, end) instants: what
    ``max_attempts_per_day`` counts in.  A number in several zones counts in its first
    (sorted) zone.  The day is 23 or 25 hours long when daylight saving changes in it.

    >>> start, end = callee_day("+12125551234", datetime(2026, 3, 8, 12, tzinfo=UTC),
    ...                         OutboundRules(), "Asia/Tokyo")
    >>> start.isoformat(), (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600
    ('2026-03-08T00:00:00-05:00', 23.0)
    """
    zone = ZoneInfo(zones_for(callee_e164, rules, client_tz)[0])
    local = now.astimezone(zone)
    start = datetime.combine(local.date(), time(0), tzinfo=zone)
    end = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    return start, end


def matches_do_not_call(callee_e164: str, rules: OutboundRules) -> str | None:
    """The reason when the number is on the list (whole number or prefix), else None."""
    for entry in rules.do_not_call:
        if (callee_e164 == entry.prefix if entry.whole_number
                else callee_e164.startswith(entry.prefix)):
            return entry.reason
    return None


def next_window_start(now: datetime, window: tuple[time, time],
                      zones: list[str]) -> datetime:
    """The first instant after ``now`` when the time is inside ``window`` in every zone
    (tried at each zone's next window start, over the next three days)."""
    start, _ = window
    candidates = []
    for zone_name in zones:
        zone = ZoneInfo(zone_name)
        local = now.astimezone(zone)
        for days in range(0, 4):
            # combine() then normalising through UTC lands on a real instant even when
            # the start falls in a daylight-saving gap.
            moment = datetime.combine(local.date() + timedelta(days=days), start,
                                      tzinfo=zone)
            if moment > now:
                candidates.append(moment)
    for moment in sorted(candidates, key=lambda m: m.astimezone(UTC)):
        if _inside_all(moment, window, zones):
            return moment
    return min(candidates, key=lambda m: m.astimezone(UTC))


def _inside_all(moment: datetime, window: tuple[time, time], zones: list[str]) -> bool:
    start, end = window
    for zone in zones:
        local = moment.astimezone(ZoneInfo(zone)).time()
        inside = start <= local < end if start < end else (local >= start or local < end)
        if not inside:
            return False
    return True


def decide_outbound(callee_e164: str | None, now: datetime, *, calling_hours: tuple[time, time],
                    client_tz: str, rules: OutboundRules, history: ContactHistory,
                    override: Override | None = None) -> OutboundDecision:
    """May the client's callee be called (or sent a message) at ``now`` (aware)?

    >>> late = decide_outbound("+819011112222", datetime(2026, 6, 10, 12, 5, tzinfo=UTC),
    ...                        calling_hours=(time(8), time(21)), client_tz="Asia/Tokyo",
    ...                        rules=OutboundRules(), history=ContactHistory())
    >>> late.allowed, late.rule, late.opens_at.isoformat()
    (False, 'calling_hours', '2026-06-11T08:00:00+09:00')
    """
    if now.tzinfo is None:
        raise ValueError("decide_outbound needs an aware datetime")
    if not callee_e164:
        return OutboundDecision(False, "not_callable", "refused: not a number that can be "
                                "called", client_tz, None)
    zones = zones_for(callee_e164, rules, client_tz)
    local = now.astimezone(ZoneInfo(zones[0]))
    dnc = matches_do_not_call(callee_e164, rules)
    if dnc is not None:
        return OutboundDecision(False, "do_not_call", f"refused: the number is on the "
                                f"client's do-not-call list ({dnc})", zones[0], local)
    refusal = _limits(callee_e164, now, calling_hours, zones, rules, history)
    if refusal is None:
        return OutboundDecision(True, "allowed", f"{local:%H:%M} in {zones[0]} is inside "
                                f"{calling_hours[0]:%H:%M}-{calling_hours[1]:%H:%M}",
                                zones[0], local)
    rule, reason, opens = refusal
    if override is not None and rules.supervisor_override and override.reason.strip():
        return OutboundDecision(True, rule, f"overridden by {override.by} "
                                f"({override.reason.strip()}): {reason}", zones[0], local,
                                opens, override)
    if override is not None and not rules.supervisor_override:
        reason += " (the client's rules allow no override)"
    return OutboundDecision(False, rule, reason, zones[0], local, opens)


def _limits(callee_e164: str, now: datetime, window: tuple[time, time], zones: list[str],
            rules: OutboundRules,
            history: ContactHistory) -> tuple[str, str, datetime | None] | None:
    for zone in zones:
        local = now.astimezone(ZoneInfo(zone))
        if not _inside_all(now, window, [zone]):
            also = f" (the number may be in {len(zones)} time zones)" if len(zones) > 1 else ""
            reason = (f"refused: {local:%H:%M} in {zone} is outside the allowed calling hours "
                      f"{window[0]:%H:%M}-{window[1]:%H:%M} (callee's local time){also}")
            return "calling_hours", reason, next_window_start(now, window, zones)
    if rules.max_attempts_per_day is not None and \
            history.attempts_today >= rules.max_attempts_per_day:
        tomorrow = datetime.combine(now.astimezone(ZoneInfo(zones[0])).date()
                                    + timedelta(days=1), window[0], tzinfo=ZoneInfo(zones[0]))
        return ("max_attempts", f"refused: {history.attempts_today} attempts today already "
                f"(the client allows {rules.max_attempts_per_day} a day)", tomorrow)
    if rules.min_gap_s is not None and history.last_attempt_at is not None:
        next_ok = history.last_attempt_at + timedelta(seconds=rules.min_gap_s)
        if next_ok > now:
            wait = int((next_ok - now).total_seconds() + 59) // 60
            return ("min_gap", f"refused: the last attempt was less than "
                    f"{_duration(rules.min_gap_s)} ago (next in {wait} min)", next_ok)
    return None


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{int(seconds)} s"
