"""The validated clients document as plain, immutable data (what routing reads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time


@dataclass(frozen=True)
class Span:
    """Open from ``start`` on ``weekday`` (0 = Monday) until ``end``; an end at or before the
    start runs past midnight into the next day (22:00-06:00)."""

    weekday: int
    start: time
    end: time  # time(0, 0) with ``until_midnight`` means 24:00

    until_midnight: bool = False

    @property
    def overnight(self) -> bool:
        return not self.until_midnight and self.end <= self.start


@dataclass(frozen=True)
class DayRule:
    """A calendar day or range, once (2026-08-13) or every year (12-29..01-03)."""

    first_month: int
    first_day: int
    last_month: int
    last_day: int
    year: int | None = None       # a fixed year for dated rules
    last_year: int | None = None  # a dated range may cross into the next year
    hours: tuple[tuple[time, time, bool], ...] = ()  # open days: their own hours
    text: str = ""

    def matches(self, day: date) -> bool:
        if self.year is not None:
            first = date(self.year, self.first_month, self.first_day)
            last = date(self.last_year or self.year, self.last_month, self.last_day)
            return first <= day <= last
        key = (day.month, day.day)
        first_key = (self.first_month, self.first_day)
        last_key = (self.last_month, self.last_day)
        if first_key <= last_key:
            return first_key <= key <= last_key
        return key >= first_key or key <= last_key  # wraps the year end: 12-29..01-03


@dataclass(frozen=True)
class RepeatRule:
    """Escalate when the caller's earlier calls (since the last call back) reach
    ``earlier_calls`` inside ``window_s``."""

    earlier_calls: int = 2
    window_s: float = 72 * 3600
    queue: str = "q-sup"
    priority: int = 10
    enabled: bool = True


@dataclass(frozen=True)
class WallboardRule:
    """What the wallboard measures a client against: its service level (answered within the
    client's ``service_level_s``) against ``service_level_target`` (0..1); a caller waiting
    longer than ``long_wait_s`` is an alert."""

    service_level_target: float = 0.8
    long_wait_s: float = 60.0


@dataclass(frozen=True)
class DoNotCall:
    """A number (or every number starting with ``prefix``) the client must not have called,
    with why (e.g. ``workplace``: the debtor's workplace, 貸金業法 21 条)."""

    prefix: str        # E.164 (``+81312345678``) or the start of one (``+8150``)
    reason: str
    whole_number: bool = True  # False: every number starting with ``prefix``


@dataclass(frozen=True)
class OutboundRules:
    """The client's rules for calls (and messages) to callees; contact limits are off
    unless set."""

    max_attempts_per_day: int | None = None   # per callee, per day in the callee's time
    min_gap_s: float | None = None            # between two attempts to one callee
    do_not_call: tuple[DoNotCall, ...] = ()
    callee_timezone: str | None = None        # judge every callee in this zone instead
    supervisor_override: bool = False         # may a supervisor dial outside the hours?


@dataclass(frozen=True)
class Client:
    code: str
    name: str
    dids: tuple[str, ...]
    queue: str
    timezone: str = "Asia/Tokyo"
    hours: tuple[Span, ...] = ()
    national_holidays: str | None = "JP"  # country code for the holidays library, or None
    closed_days: tuple[DayRule, ...] = ()
    open_days: tuple[DayRule, ...] = ()
    greeting: str = ""
    whisper: str = ""
    queue_timeout_s: int = 30
    priority: int = 0
    skill_queue: str | None = None
    overflow_after_s: int | None = None
    after_timeout: str = "voicemail"      # voicemail | hangup
    closed_action: str = "voicemail"      # voicemail | message | forward
    closed_prompt: str = ""
    forward_to: str | None = None
    voicemail: str = ""
    plan_calls: int | None = None
    callback_deadline_s: float = 24 * 3600
    calling_hours: tuple[time, time] = (time(8, 0), time(21, 0))
    short_abandon_s: float = 5.0
    repeat: RepeatRule = field(default_factory=RepeatRule)
    greeting_script: str = ""
    notes: str = ""
    report_webhook: str | None = None       # 受電報告 by HTTP POST (HMAC-signed)
    report_webhook_secret: str | None = None
    report_emails: tuple[str, ...] = ()     # and/or by e-mail
    # The monthly report and pushes (issue 9, docs/reports.md).
    name_ja: str | None = None              # the client's name on Japanese reports
    name_en: str | None = None              # and on English ones (default: name)
    plan_counts: str = "answered"           # answered | offered: what uses up plan_calls
    plan_outbound: bool = False             # outbound calls use up plan_calls too
    overage_price: int | None = None        # JPY per call over plan_calls
    service_level_s: float = 20.0           # answered within this counts to service level
    report_contacts: tuple[str, ...] = ()   # monthly report e-mail (default: report_emails)
    push_mode: str = "immediate"            # immediate | digest | daily | off
    push_every_s: float | None = None       # digest: every this long
    push_daily_at: time | None = None       # daily: at this local time (default 08:00)
    retention_s: float | None = None        # calls/messages older than this are purged
    wallboard: WallboardRule = field(default_factory=WallboardRule)
    outbound: OutboundRules = field(default_factory=OutboundRules)
    # --- call flows (docs/callflows.md) ---
    language: str = "ja"                    # prompts: ja (Open JTalk) or en (on request)
    # An escalated caller waits this long for a supervisor, then goes back to the operators,
    # first in line (None: the client's queue_timeout).
    supervisor_wait_s: int | None = None
    recording: str = "none"                 # all | none | on_demand (MixMonitor)
    recording_notice: bool = False          # the caller is told the call is recorded
    wrapup_s: int = 0                       # after-call work time (queue member wrapuptime)
    dispositions: tuple[str, ...] = ()      # codes an operator picks for an answered call

    @property
    def supervisor_wait(self) -> int:
        """Seconds an escalated caller waits for a supervisor before going back home."""
        return self.supervisor_wait_s or self.queue_timeout_s


@dataclass(frozen=True)
class UnknownDidRoute:
    """Where calls to a number no client owns go (flagged ``unknown_did``)."""

    queue: str = "q-general"
    whisper: str = ""
    greeting: str = ""
    voicemail: str = ""
    queue_timeout_s: int = 60


@dataclass(frozen=True)
class Directory:
    """Every client, indexed by DID, plus the route for unknown DIDs."""

    clients: dict[str, Client]
    by_did: dict[str, str]
    unknown_did: UnknownDidRoute = field(default_factory=UnknownDidRoute)
    supervisor_queue: str = "q-sup"
    version: int = 0

    def client_for(self, did: str) -> Client | None:
        code = self.by_did.get(normalise_did(did))
        return self.clients.get(code) if code else None


def normalise_did(did: str) -> str:
    """DIDs are compared by their digits (the carrier may send +81..., 03-..., 03...).

    >>> normalise_did("+81-3-1234-5678"), normalise_did("0312345678")
    ('0312345678', '0312345678')
    """
    digits = "".join(ch for ch in did if ch.isdigit())
    if did.strip().startswith("+81") or (digits.startswith("81") and len(digits) == 11):
        digits = "0" + digits[2:]
    return digits
