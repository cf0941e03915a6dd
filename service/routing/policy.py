"""The routing policy: where a call goes, and why.  Pure: no I/O, the clock is an argument.

``decide`` answers for the route AGI and for ``orikaeshi route explain`` alike, so what an
admin is told is exactly what the AGI did.  Every decision carries its reasons in plain words
("open: mon 09:00-18:00", "closed: national holiday (Labour Thanksgiving Day)", "repeat
caller: 3 earlier calls in 72h since the last call back").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from agi import variables as v
from service.clients.model import Client, DayRule, Directory, Span
from service.phone import is_withheld, to_e164
from service.routing.repeat import RepeatHistory

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Decision:
    client: str | None
    action: str                       # queue | closed | forward
    queue: str | None = None
    priority: int = 0
    queue_timeout_s: int | None = None
    overflow_queue: str | None = None
    overflow_timeout_s: int | None = None
    whisper: str = ""
    greeting: str = ""
    closed_prompt: str = ""
    voicemail_box: str = ""
    forward_to: str | None = None
    after_timeout: str = "voicemail"
    escalated: bool = False
    escalation_reason: str | None = None
    repeat_count: int | None = None        # this call's number in the caller's streak
    repeat_since: datetime | None = None   # first call of the streak (no call back since)
    timezone: str = "Asia/Tokyo"
    home_queue: str | None = None          # escalated and nobody answers: back to this queue
    home_wait_s: int | None = None
    supervisor_wait_s: int | None = None
    record_policy: str = "none"            # all | none | on_demand (MixMonitor)
    record_notice: str = ""                # prompt telling the caller it is recorded
    flags: tuple[str, ...] = ()
    reasons: tuple[str, ...] = field(default=())

    def variables(self) -> list[tuple[str, str]]:
        """``(name, value)`` to set on the caller's channel, in ``ROUTE_ORDER``.

        Empty values are not sent: a variable that was never set reads as empty in the
        dialplan, and every command is a round trip to Asterisk.
        """
        values: dict[str, object] = {
            v.ACCOUNTCODE: self.client or "", v.CLIENT: self.client or "",
            v.ACTION: self.action, v.QUEUE: self.queue or "",
            # 0 is app_queue's own default priority: not sent.
            v.PRIORITY: self.priority if self.action == "queue" and self.priority else "",
            v.QUEUE_TIMEOUT: self.queue_timeout_s or "",
            v.OVERFLOW_QUEUE: self.overflow_queue or "",
            v.OVERFLOW_TIMEOUT: self.overflow_timeout_s or "",
            v.WHISPER: self.whisper, v.GREETING: self.greeting,
            v.CLOSED_PROMPT: self.closed_prompt, v.VM_BOX: self.voicemail_box,
            # The dialplan leaves for voicemail unless told "hangup".
            v.FORWARD_TO: self.forward_to or "",
            v.AFTER_TIMEOUT: "" if self.after_timeout == "voicemail" else self.after_timeout,
            v.ESCALATED: "1" if self.escalated else "",
            v.ESCALATION_REASON: self.escalation_reason or "",
            v.REPEAT_COUNT: self.repeat_count or "",
            v.REPEAT_SINCE: int(self.repeat_since.timestamp()) if self.repeat_since else "",
            v.ROUTE_TZ: self.timezone if self.repeat_since else "",
            v.ROUTE_FLAGS: ",".join(self.flags),
            v.HOME_QUEUE: self.home_queue if self.action == "queue" and self.home_queue else "",
            v.HOME_WAIT: self.home_wait_s if self.action == "queue" and self.home_queue else "",
            v.SUP_WAIT: self.supervisor_wait_s if self.action == "queue" and self.home_queue
            else "",
            v.RECORD_POLICY: self.record_policy
            if self.action == "queue" and self.record_policy != "none" else "",
            v.RECORD_NOTICE: self.record_notice if self.action == "queue" else "",
        }
        return [(name, str(values[name])) for name in v.ROUTE_ORDER if values.get(name) != ""]


def recording_notice(client: Client) -> str:
    """The prompt that tells the client's callers they are recorded ("" when not told).

    >>> from service.clients.model import Client
    >>> recording_notice(Client("K", "K", (), "q", recording="all", recording_notice=True))
    'orikaeshi/recording-notice'
    >>> recording_notice(Client("K", "K", (), "q", recording="none", recording_notice=True))
    ''
    """
    if client.recording == "none" or not client.recording_notice:
        return ""
    return "orikaeshi/recording-notice" + ("-en" if client.language == "en" else "")


@lru_cache(maxsize=64)
def _holiday_calendar(country: str, year: int) -> dict[date, str]:
    try:
        calendar = holidays.country_holidays(country, years=year, language="en_US")
    except (NotImplementedError, KeyError):
        calendar = holidays.country_holidays(country, years=year)
    return dict(calendar.items())


def national_holiday(country: str | None, day: date) -> str | None:
    return None if country is None else _holiday_calendar(country, day.year).get(day)


def _fmt(t: time, until_midnight: bool = False) -> str:
    return "24:00" if until_midnight else f"{t.hour:02d}:{t.minute:02d}"


def _in_range(now: time, start: time, end: time, until_midnight: bool) -> bool:
    if until_midnight:
        return now >= start
    if end <= start:  # overnight, the part before midnight
        return now >= start
    return start <= now < end


def _day_status(client: Client, day: date) -> tuple[bool | None, str, DayRule | None]:
    """(True: special open day, False: closed all day, None: usual hours), reason, rule."""
    for rule in client.open_days:
        if rule.matches(day):
            return True, f"special open day ({rule.text})", rule
    for rule in client.closed_days:
        if rule.matches(day):
            return False, f"client's closed days ({rule.text})", rule
    holiday = national_holiday(client.national_holidays, day)
    if holiday:
        return False, f"national holiday ({holiday})", None
    return None, "", None


def is_open(client: Client, moment: datetime) -> tuple[bool, str]:
    """Open at ``moment``?  With the rule that decided.  An aware ``moment`` is taken to the
    client's time zone first (the AGI's clock is UTC); a naive one is the client's local time.
    """
    local = moment.astimezone(ZoneInfo(client.timezone)) if moment.tzinfo else moment
    day, now = local.date(), local.time()
    status, why, rule = _day_status(client, day)
    if status is True and rule is not None:
        ranges = rule.hours or tuple((s.start, s.end, s.until_midnight) for s in client.hours
                                     if s.weekday == day.weekday())
        for start, end, midnight in ranges:
            if _in_range(now, start, end, midnight):
                return True, f"open: {why} {_fmt(start)}-{_fmt(end, midnight)}"
        return False, f"closed: {why}, outside its hours"
    # A span that began yesterday evening runs on past midnight, unless yesterday was closed.
    yesterday = day - timedelta(days=1)
    if _day_status(client, yesterday)[0] is not False:
        for span in client.hours:
            if (span.weekday == yesterday.weekday() and span.overnight and now < span.end):
                return True, (f"open: {WEEKDAY_NAMES[span.weekday]} {_fmt(span.start)}-"
                              f"{_fmt(span.end)} (overnight)")
    if status is False:
        return False, f"closed: {why}"
    today: list[Span] = [s for s in client.hours if s.weekday == day.weekday()]
    for span in today:
        if _in_range(now, span.start, span.end, span.until_midnight):
            return True, (f"open: {WEEKDAY_NAMES[span.weekday]} {_fmt(span.start)}-"
                          f"{_fmt(span.end, span.until_midnight)}")
    if not today:
        return False, f"closed: no hours on {WEEKDAY_NAMES[day.weekday()]}"
    spans = ", ".join(f"{_fmt(s.start)}-{_fmt(s.end, s.until_midnight)}" for s in today)
    return False, f"closed: outside {WEEKDAY_NAMES[day.weekday()]} hours ({spans})"


def repeat_applies(client: Client, caller_number: str | None) -> bool:
    """Whether the repeat-caller rule can apply (a rule, and a number to count by)."""
    return client.repeat.enabled and to_e164(caller_number) is not None


def decide(directory: Directory, did: str, caller_number: str | None, now: datetime,
           history: RepeatHistory | None = None, *, flags: tuple[str, ...] = (),
           opening: tuple[bool, str] | None = None) -> Decision:
    """Where a call to ``did`` from ``caller_number`` at ``now`` (aware) goes.

    ``opening`` is ``is_open(client, now)`` when the caller already asked it (the route does,
    to know whether to look the caller's history up)."""
    reasons: list[str] = []
    flag_list = list(flags)
    if is_withheld(caller_number):
        flag_list.append("withheld_caller")
        reasons.append("caller number withheld: no repeat check, no call back possible")
    client = directory.client_for(did)
    if client is None:
        route = directory.unknown_did
        flag_list.append("unknown_did")
        reasons.append(f"DID {did!r} belongs to no client: default route, flagged")
        return Decision(client=None, action="queue", queue=route.queue,
                        queue_timeout_s=route.queue_timeout_s, whisper=route.whisper,
                        greeting=route.greeting, voicemail_box=route.voicemail,
                        flags=tuple(flag_list), reasons=tuple(reasons))
    local = now.astimezone(ZoneInfo(client.timezone))
    reasons.append(f"client {client.code} ({client.name}) owns DID {did}")
    reasons.append(f"local time {local:%a %Y-%m-%d %H:%M} {client.timezone}")
    open_now, why = opening if opening is not None else is_open(client, local)
    reasons.append(why)
    base = Decision(client=client.code, action="queue", whisper=client.whisper,
                    voicemail_box=client.voicemail, timezone=client.timezone,
                    after_timeout=client.after_timeout, home_queue=client.queue,
                    home_wait_s=client.queue_timeout_s,
                    supervisor_wait_s=client.supervisor_wait,
                    record_policy=client.recording, record_notice=recording_notice(client))

    def done(**changes: object) -> Decision:
        return replace(base, flags=tuple(flag_list), reasons=tuple(reasons),
                       **changes)  # type: ignore[arg-type]

    if not open_now:
        if client.closed_action == "forward" and client.forward_to:
            reasons.append(f"closed: forwarded to {client.forward_to}")
            return done(action="forward", forward_to=client.forward_to,
                        closed_prompt=client.closed_prompt)
        voicemail = client.closed_action == "voicemail"
        reasons.append("closed: message then voicemail" if voicemail else "closed: message only")
        return done(action="closed", closed_prompt=client.closed_prompt,
                    voicemail_box=client.voicemail if voicemail else "")
    rule = client.repeat
    if history is not None and repeat_applies(client, caller_number):
        window_h = rule.window_s / 3600
        since = "the last call back" if history.last_callback_at else f"the last {window_h:g}h"
        reasons.append(f"repeat rule: escalate at {rule.earlier_calls} earlier calls within "
                       f"{window_h:g}h since the last call back; found {history.calls} "
                       f"since {since}")
        if history.calls >= rule.earlier_calls:
            reasons.append(f"escalated: repeat caller, call number {history.calls + 1}, "
                           f"to {rule.queue} at priority {rule.priority}; no supervisor in "
                           f"{client.supervisor_wait}s: back to {client.queue}, first")
            return done(queue=rule.queue, priority=rule.priority,
                        queue_timeout_s=client.supervisor_wait, greeting=client.greeting,
                        escalated=True, escalation_reason="repeat_caller",
                        repeat_count=history.calls + 1, repeat_since=history.first_at)
    elif "repeat_check_unavailable" in flag_list:
        reasons.append("repeat check unavailable (database slow or away): routed normally")
    if client.skill_queue and client.overflow_after_s:
        reasons.append(f"skill queue {client.skill_queue} for {client.overflow_after_s}s, "
                       f"then {client.queue} for {client.queue_timeout_s}s")
        return done(queue=client.skill_queue, priority=client.priority,
                    queue_timeout_s=client.overflow_after_s, overflow_queue=client.queue,
                    overflow_timeout_s=client.queue_timeout_s, greeting=client.greeting)
    reasons.append(f"queue {client.queue} for {client.queue_timeout_s}s, then "
                   f"{client.after_timeout}")
    return done(queue=client.queue, priority=client.priority,
                queue_timeout_s=client.queue_timeout_s, greeting=client.greeting)
