"""The clients file (YAML): parsing and validation with line-precise errors.

The file is read with ``yaml.compose`` (nodes with their line and column, scalars as the exact
text written), never with implicit typing: ``0312345678`` stays a DID, not octal, and
``10:00`` stays a time, not YAML 1.1's 600.  Every problem is reported, not just the first,
as ``clients.yaml:12:7: clients.KSL.hours.sat: '25:00' is not a time (HH:MM)``.

Format (see deploy/clients.sample.yaml)::

    defaults:                      # optional; every client inherits these
      timezone: Asia/Tokyo
      national_holidays: JP        # or "none"
      calling_hours: 08:00-21:00   # when call backs may be dialled (callee's local time)
      short_abandon: 5s
      callback_deadline: 24h
      repeat: {earlier_calls: 2, window: 72h, queue: q-sup, priority: 10}
    supervisors: {queue: q-sup}
    unknown_did: {queue: q-general, whisper: orikaeshi/whisper-unknown}
    clients:
      KSL:
        name: Kasumi Law Office
        dids: [0312345678, 0312345679]
        hours: {mon-fri: 09:00-18:00}
        closed_days: [12-29..01-03]
        open_days: ["2026-12-28 09:00-12:00"]
        queue: q-ksl
        skill_queue: {queue: q-ksl-legal, overflow_after: 20s}
        queue_timeout: 30s
        after_timeout: voicemail
        greeting: custom/greeting-ksl
        whisper: custom/whisper-ksl
        closed: {action: voicemail, prompt: custom/closed-ksl}
        voicemail: 1001@lab
        plan_calls: 300
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from service.clients.model import (
    Client,
    DayRule,
    Directory,
    DoNotCall,
    OutboundRules,
    RepeatRule,
    Span,
    UnknownDidRoute,
    WallboardRule,
    normalise_did,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
_PROMPT = re.compile(r"^[A-Za-z0-9_./-]*$")
_QUEUE = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
_MAILBOX = re.compile(r"^[A-Za-z0-9_-]+(@[A-Za-z0-9_-]+)?$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$")
_DAY = re.compile(r"^(?:(\d{4})-)?(\d{2})-(\d{2})$")
_URL = re.compile(r"^https?://[^\s]+$")
_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")


class ClientsFileError(ValueError):
    """The clients file has problems; ``errors`` lists every one with its line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class _Reader:
    """Walks composed YAML nodes, collecting errors with ``file:line:column: path:``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._errors: list[tuple[int, int, str]] = []

    @property
    def errors(self) -> list[str]:
        """In file order (they are found in the order fields are read), whole-file ones first."""
        return [text for _, _, text in sorted(self._errors, key=lambda e: (e[0], e[1]))]

    def error(self, node: yaml.Node | None, path: str, message: str) -> None:
        if node is not None:
            mark = node.start_mark
            line, column = mark.line + 1, mark.column + 1
            where = f"{self.source}:{line}:{column}"
        else:
            line, column, where = 0, 0, self.source
        self._errors.append((line, column, f"{where}: {path}: {message}"))

    def mapping(self, node: yaml.Node | None, path: str,
                allowed: tuple[str, ...] | None = None) -> dict[str, yaml.Node]:
        if node is None:
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.error(node, path, "expected a mapping (key: value)")
            return {}
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in out:
                self.error(key_node, f"{path}.{key}", "appears twice")
                continue
            if allowed is not None and key not in allowed:
                self.error(key_node, f"{path}.{key}",
                           f"unknown setting (known: {', '.join(allowed)})")
                continue
            out[key] = value_node
        return out

    def items(self, node: yaml.Node | None, path: str) -> list[tuple[yaml.Node, yaml.Node]]:
        """Key and value nodes of a mapping, for errors that point at the key."""
        if node is None:
            return []
        if not isinstance(node, yaml.MappingNode):
            self.error(node, path, "expected a mapping (key: value)")
            return []
        return list(node.value)

    def scalar(self, node: yaml.Node | None, path: str) -> str | None:
        if node is None:
            return None
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, path, "expected a single value")
            return None
        return str(node.value).strip()

    def sequence(self, node: yaml.Node | None, path: str) -> list[yaml.Node]:
        if node is None:
            return []
        if isinstance(node, yaml.ScalarNode):
            return [node]  # a single item may be written without brackets
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, path, "expected a list")
            return []
        return list(node.value)

    def pattern(self, node: yaml.Node | None, path: str, regex: re.Pattern[str],
                what: str) -> str | None:
        text = self.scalar(node, path)
        if text is not None and not regex.match(text):
            self.error(node, path, f"{text!r} is not {what}")
            return None
        return text

    def integer(self, node: yaml.Node | None, path: str, low: int, high: int) -> int | None:
        text = self.scalar(node, path)
        if text is None:
            return None
        if not re.fullmatch(r"-?\d+", text) or not low <= int(text) <= high:
            self.error(node, path, f"{text!r} is not a whole number from {low} to {high}")
            return None
        return int(text)

    def duration(self, node: yaml.Node | None, path: str) -> float | None:
        """``30s``, ``20m``, ``72h``, ``2d`` (a bare number is seconds)."""
        text = self.scalar(node, path)
        if text is None:
            return None
        match = _DURATION.match(text.lower())
        if not match:
            self.error(node, path, f"{text!r} is not a duration (e.g. 30s, 20m, 72h, 2d)")
            return None
        scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2) or "s"]
        return float(match.group(1)) * scale

    def choice(self, node: yaml.Node | None, path: str, choices: tuple[str, ...]) -> str | None:
        text = self.scalar(node, path)
        if text is not None and text not in choices:
            self.error(node, path, f"{text!r} is not one of {', '.join(choices)}")
            return None
        return text

    def flag(self, node: yaml.Node | None, path: str) -> bool | None:
        """A yes/no setting (true, false, yes, no); None when it is not given (or wrong)."""
        text = self.choice(node, path, ("true", "false", "yes", "no"))
        return None if text is None else text in ("true", "yes")

    def time_range(self, node: yaml.Node, path: str) -> list[tuple[time, time, bool]]:
        """``09:00-18:00``, ``22:00-06:00``, ``00:00-24:00``; several separated by commas."""
        text = self.scalar(node, path)
        return [] if text is None else self.ranges(text, node, path)

    def ranges(self, text: str, node: yaml.Node, path: str) -> list[tuple[time, time, bool]]:
        ranges = []
        for part in text.split(","):
            match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", part)
            if not match:
                self.error(node, path, f"{part.strip()!r} is not a time range (HH:MM-HH:MM)")
                continue
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
                self.error(node, path, f"{part.strip()!r} is not a time (HH:MM)")
                continue
            if (h1, m1) == (h2, m2):
                self.error(node, path, f"{part.strip()!r} is empty (start equals end)")
                continue
            until_midnight = h2 == 24
            ranges.append((time(h1, m1), time(0, 0) if until_midnight else time(h2, m2),
                           until_midnight))
        return ranges

    def day_rule(self, node: yaml.Node, path: str, with_hours: bool) -> DayRule | None:
        text = self.scalar(node, path)
        if not text:
            return None
        days, _, hours_text = text.partition(" ")
        first_text, _, last_text = days.partition("..")
        first = _DAY.match(first_text)
        last = _DAY.match(last_text or first_text)
        if not first or not last or bool(first.group(1)) != bool(last.group(1)):
            self.error(node, path, f"{text!r} is not a day or range (MM-DD, YYYY-MM-DD, "
                                   "12-29..01-03)")
            return None
        try:
            for match in (first, last):
                date(int(match.group(1) or 2024), int(match.group(2)), int(match.group(3)))
        except ValueError:
            self.error(node, path, f"{text!r} is not a real date")
            return None
        hours: tuple[tuple[time, time, bool], ...] = ()
        if hours_text.strip():
            if not with_hours:
                self.error(node, path, "closed days take no hours")
                return None
            hours = tuple(self.ranges(hours_text, node, path))
            if not hours:
                return None
        year = int(first.group(1)) if first.group(1) else None
        last_year = int(last.group(1)) if last.group(1) else None
        if year is not None and last_year is not None and (
                date(last_year, int(last.group(2)), int(last.group(3)))
                < date(year, int(first.group(2)), int(first.group(3)))):
            self.error(node, path, f"{text!r} ends before it starts")
            return None
        return DayRule(int(first.group(2)), int(first.group(3)), int(last.group(2)),
                       int(last.group(3)), year, last_year, hours, text)


def _weekdays(key: str) -> list[int] | None:
    """``mon-fri``, ``sat``, ``mon,wed,fri``, ``daily``."""
    key = key.strip().lower()
    if key in ("daily", "everyday", "all"):
        return list(range(7))
    days: list[int] = []
    for part in key.split(","):
        first, _, last = part.strip().partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            return None
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        days.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return days


# Call-flow settings (docs/callflows.md); a client may also take them from ``defaults``.
CALLFLOW_KEYS = ("language", "supervisor_wait", "recording", "recording_notice",
                 "wrapup", "dispositions")
_DISPOSITION = re.compile(r"^[a-z0-9_]{1,40}$")

_CLIENT_KEYS = ("name", "dids", "timezone", "hours", "national_holidays", "closed_days",
                "open_days", "greeting", "whisper", "queue", "queue_timeout", "priority",
                "skill_queue", "after_timeout", "closed", "voicemail", "plan_calls",
                "callback_deadline", "calling_hours", "short_abandon", "repeat",
                "greeting_script", "notes", "reports", "name_ja", "name_en", "plan_counts",
                "overage_price", "service_level", "retention",
                "wallboard", "outbound", "plan_outbound", *CALLFLOW_KEYS)
_DEFAULT_KEYS = ("timezone", "national_holidays", "calling_hours", "short_abandon",
                 "callback_deadline", "repeat", "queue_timeout", "after_timeout",
                 "plan_counts", "plan_outbound", "service_level", "retention", "wallboard",
                 *CALLFLOW_KEYS)


def _client(r: _Reader, code_node: yaml.Node, node: yaml.Node, base: Client,
            dids_out: list[tuple[str, yaml.Node]]) -> Client | None:
    code = str(code_node.value)
    path = f"clients.{code}"
    if not _CODE.match(code):
        r.error(code_node, path, "a client code is 1-20 letters, digits, - or _")
    fields = r.mapping(node, path, _CLIENT_KEYS)
    before = len(r.errors)
    client = replace(base, code=code, name=r.scalar(fields.get("name"), f"{path}.name") or "")
    if not client.name:
        r.error(code_node, path, "name is required")
    dids = []
    for item in r.sequence(fields.get("dids"), f"{path}.dids"):
        did = r.scalar(item, f"{path}.dids")
        if did and len(normalise_did(did)) >= 3:
            dids.append(normalise_did(did))
            dids_out.append((normalise_did(did), item))
        elif did is not None:
            r.error(item, f"{path}.dids", f"{did!r} is not a phone number")
    queue = r.pattern(fields.get("queue"), f"{path}.queue", _QUEUE, "a queue name")
    if "queue" not in fields:
        r.error(code_node, path, "queue is required")
    client = _apply_common(r, client, fields, path)
    spans: list[Span] = []
    for key_node, value in r.items(fields.get("hours"), f"{path}.hours"):
        key = str(key_node.value)
        days = _weekdays(key)
        if days is None:
            r.error(key_node, f"{path}.hours.{key}",
                    "is not a weekday or range (mon-fri, sat, daily)")
            continue
        text = r.scalar(value, f"{path}.hours.{key}")
        if text and text.lower() == "closed":
            continue
        for start, end, midnight in r.time_range(value, f"{path}.hours.{key}"):
            spans.extend(Span(day, start, end, midnight) for day in days)
    closed_days = [rule for item in r.sequence(fields.get("closed_days"), f"{path}.closed_days")
                   if (rule := r.day_rule(item, f"{path}.closed_days", False))]
    open_days = []
    for item in r.sequence(fields.get("open_days"), f"{path}.open_days"):
        rule = r.day_rule(item, f"{path}.open_days", True)
        if rule is None:
            continue
        if not rule.hours and rule.year is None:
            r.error(item, f"{path}.open_days", "an every-year open day needs its hours "
                                               "(e.g. '12-28 09:00-12:00')")
            continue
        if not rule.hours and rule.year is not None:
            weekday = date(rule.year, rule.first_month, rule.first_day).weekday()
            if not any(span.weekday == weekday for span in spans):
                r.error(item, f"{path}.open_days", f"{rule.text} is a {WEEKDAYS[weekday]}, "
                        "which has no regular hours: give its hours (e.g. "
                        f"'{rule.text} 09:00-12:00')")
                continue
        open_days.append(rule)
    skill = r.mapping(fields.get("skill_queue"), f"{path}.skill_queue", ("queue", "overflow_after"))
    skill_queue = r.pattern(skill.get("queue"), f"{path}.skill_queue.queue", _QUEUE,
                            "a queue name")
    overflow = r.duration(skill.get("overflow_after"), f"{path}.skill_queue.overflow_after")
    if skill and (not skill_queue or overflow is None):
        r.error(fields.get("skill_queue"), f"{path}.skill_queue",
                "needs both queue and overflow_after")
    closed = r.mapping(fields.get("closed"), f"{path}.closed", ("action", "prompt", "forward_to"))
    closed_action = r.choice(closed.get("action"), f"{path}.closed.action",
                             ("voicemail", "message", "forward")) or base.closed_action
    forward_to = r.scalar(closed.get("forward_to"), f"{path}.closed.forward_to")
    if closed_action == "forward" and not forward_to:
        r.error(fields.get("closed"), f"{path}.closed", "action forward needs forward_to")
    voicemail = r.pattern(fields.get("voicemail"), f"{path}.voicemail", _MAILBOX,
                          "a mailbox (1001 or 1001@context)") or ""
    after_timeout = client.after_timeout
    if (closed_action == "voicemail" or after_timeout == "voicemail") and not voicemail:
        r.error(code_node, path, "voicemail (a mailbox) is required when closed or after_timeout "
                            "leads to voicemail")
    reports = r.mapping(fields.get("reports"), f"{path}.reports",
                        ("webhook", "webhook_secret", "email", "contacts", "push"))
    webhook = r.pattern(reports.get("webhook"), f"{path}.reports.webhook", _URL,
                        "an http(s) URL")
    webhook_secret = r.scalar(reports.get("webhook_secret"), f"{path}.reports.webhook_secret")
    if webhook and not webhook_secret:
        r.error(fields.get("reports"), f"{path}.reports",
                "a webhook needs webhook_secret (deliveries are HMAC-signed)")
    emails = []
    for item in r.sequence(reports.get("email"), f"{path}.reports.email"):
        email = r.pattern(item, f"{path}.reports.email", _EMAIL, "an e-mail address")
        if email:
            emails.append(email)
    outbound = _outbound(r, fields.get("outbound"), f"{path}.outbound")
    plan = r.integer(fields.get("plan_calls"), f"{path}.plan_calls", 0, 10_000_000)
    report_settings = _report_settings(r, fields, reports, path)
    priority = r.integer(fields.get("priority"), f"{path}.priority", 0, 100)
    if len(r.errors) > before:
        return None
    return replace(
        client, dids=tuple(dids), queue=queue or "", hours=tuple(spans),
        closed_days=tuple(closed_days), open_days=tuple(open_days),
        greeting=r.pattern(fields.get("greeting"), f"{path}.greeting", _PROMPT,
                           "a prompt name") or "",
        whisper=r.pattern(fields.get("whisper"), f"{path}.whisper", _PROMPT,
                          "a prompt name") or "",
        priority=priority or 0, skill_queue=skill_queue,
        overflow_after_s=int(overflow) if overflow is not None else None,
        closed_action=closed_action,
        closed_prompt=r.pattern(closed.get("prompt"), f"{path}.closed.prompt", _PROMPT,
                                "a prompt name") or "",
        forward_to=forward_to, voicemail=voicemail, plan_calls=plan,
        greeting_script=r.scalar(fields.get("greeting_script"), f"{path}.greeting_script") or "",
        notes=r.scalar(fields.get("notes"), f"{path}.notes") or "",
        report_webhook=webhook, report_webhook_secret=webhook_secret,
        report_emails=tuple(emails), outbound=outbound, **report_settings)


def _push(r: _Reader, node: yaml.Node | None, path: str) -> dict[str, Any]:
    """``immediate``, ``digest 30m``, ``daily`` (08:00), ``daily 18:30`` or ``off``."""
    text = r.scalar(node, path)
    if text is None:
        return {}
    mode, _, rest = text.strip().lower().partition(" ")
    rest = rest.strip()
    if mode in ("immediate", "off") and not rest:
        return {"push_mode": mode}
    if mode == "digest":
        match = _DURATION.match(rest)
        if match and float(match.group(1)) > 0:
            every = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[
                match.group(2) or "s"]
            if every >= 60:
                return {"push_mode": "digest", "push_every_s": every}
        r.error(node, path, f"{text!r}: a digest needs its interval, at least 1m "
                            "(e.g. 'digest 30m')")
        return {}
    if mode == "daily":
        at = re.fullmatch(r"(\d{1,2}):(\d{2})", rest) if rest else None
        if not rest:
            return {"push_mode": "daily", "push_daily_at": time(8, 0)}
        if at and int(at.group(1)) < 24 and int(at.group(2)) < 60:
            return {"push_mode": "daily",
                    "push_daily_at": time(int(at.group(1)), int(at.group(2)))}
        r.error(node, path, f"{text!r}: daily takes a time, e.g. 'daily 08:00'")
        return {}
    r.error(node, path, f"{text!r} is not immediate, 'digest <interval>', 'daily [HH:MM]' "
                        "or off")
    return {}


def _report_settings(r: _Reader, fields: dict[str, yaml.Node], reports: dict[str, yaml.Node],
                     path: str) -> dict[str, Any]:
    """The monthly report's and pushes' settings of a client (docs/reports.md)."""
    out: dict[str, Any] = {}
    for key in ("name_ja", "name_en"):
        value = r.scalar(fields.get(key), f"{path}.{key}")
        if value:
            out[key] = value
    price = r.integer(fields.get("overage_price"), f"{path}.overage_price", 0, 1_000_000)
    if price is not None:
        out["overage_price"] = price
    contacts = []
    for item in r.sequence(reports.get("contacts"), f"{path}.reports.contacts"):
        email = r.pattern(item, f"{path}.reports.contacts", _EMAIL, "an e-mail address")
        if email:
            contacts.append(email)
    if contacts:
        out["report_contacts"] = tuple(contacts)
    out.update(_push(r, reports.get("push"), f"{path}.reports.push"))
    return out


def _outbound(r: _Reader, node: yaml.Node | None, path: str) -> OutboundRules:
    """``outbound: {max_attempts_per_day: 3, min_gap: 2h, callee_timezone: Asia/Tokyo,
    supervisor_override: true, do_not_call: [{number: 0312345678, reason: workplace},
    {prefix: "050", reason: ...}]}``."""
    from service.phone import to_e164

    fields = r.mapping(node, path, ("max_attempts_per_day", "min_gap", "do_not_call",
                                    "callee_timezone", "supervisor_override"))
    attempts = r.integer(fields.get("max_attempts_per_day"), f"{path}.max_attempts_per_day",
                         1, 1000)
    gap = r.duration(fields.get("min_gap"), f"{path}.min_gap")
    tz = r.scalar(fields.get("callee_timezone"), f"{path}.callee_timezone")
    if tz is not None:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            r.error(fields["callee_timezone"], f"{path}.callee_timezone",
                    f"{tz!r} is not a time zone")
            tz = None
    override = r.flag(fields.get("supervisor_override"), f"{path}.supervisor_override")
    entries = []
    for item in r.sequence(fields.get("do_not_call"), f"{path}.do_not_call"):
        where = f"{path}.do_not_call"
        entry = r.mapping(item, where, ("number", "prefix", "reason"))
        reason = r.scalar(entry.get("reason"), f"{where}.reason")
        if not reason:
            r.error(item, where, "every entry needs a reason (e.g. workplace)")
            continue
        if ("number" in entry) == ("prefix" in entry):
            r.error(item, where, "give either number or prefix")
            continue
        if "number" in entry:
            text = r.scalar(entry["number"], f"{where}.number") or ""
            e164 = to_e164(text)
            if e164 is None:
                r.error(entry["number"], f"{where}.number", f"{text!r} is not a phone number")
                continue
            entries.append(DoNotCall(e164, reason, True))
        else:
            text = r.scalar(entry["prefix"], f"{where}.prefix") or ""
            prefix = _e164_prefix(text)
            if prefix is None:
                r.error(entry["prefix"], f"{where}.prefix",
                        f"{text!r} is not the start of a number (digits, 0... or +...)")
                continue
            entries.append(DoNotCall(prefix, reason, False))
    return OutboundRules(max_attempts_per_day=attempts, min_gap_s=gap,
                         do_not_call=tuple(entries), callee_timezone=tz,
                         supervisor_override=bool(override))


def _e164_prefix(text: str) -> str | None:
    """A prefix as written in Japan (``050``, ``03-1234``) or in E.164 (``+8150``).

    >>> _e164_prefix("050"), _e164_prefix("+1 212"), _e164_prefix("abc")
    ('+8150', '+1212', None)
    """
    digits = re.sub(r"[\s-]", "", text)
    if re.fullmatch(r"\+\d{1,15}", digits):
        return digits
    if re.fullmatch(r"0\d{1,14}", digits):
        return "+81" + digits[1:]
    return None


def _apply_common(r: _Reader, client: Client, fields: dict[str, yaml.Node], path: str) -> Client:
    """Settings a client may take from ``defaults`` or set itself."""
    changes: dict[str, Any] = {}
    tz = r.scalar(fields.get("timezone"), f"{path}.timezone")
    if tz is not None:
        try:
            ZoneInfo(tz)
            changes["timezone"] = tz
        except (ZoneInfoNotFoundError, ValueError):
            r.error(fields["timezone"], f"{path}.timezone", f"{tz!r} is not a time zone")
    holidays_country = r.scalar(fields.get("national_holidays"), f"{path}.national_holidays")
    if holidays_country is not None:
        changes["national_holidays"] = None if holidays_country.lower() in ("none", "no", "") \
            else holidays_country.upper()
        if changes["national_holidays"]:
            import holidays

            if changes["national_holidays"] not in holidays.list_supported_countries():
                r.error(fields["national_holidays"], f"{path}.national_holidays",
                        f"{holidays_country!r} is not a country the holidays library knows")
    if "calling_hours" in fields:
        ranges = r.time_range(fields["calling_hours"], f"{path}.calling_hours")
        # Opening hours may run past midnight (22:00-06:00); the window in which call backs
        # may be dialled may not: the guard compares times of one day, so a reversed window
        # would refuse every call back without a word.
        if len(ranges) == 1 and not ranges[0][2] and ranges[0][0] > ranges[0][1]:
            start, end = (f"{x:%H:%M}" for x in ranges[0][:2])
            r.error(fields["calling_hours"], f"{path}.calling_hours",
                    f"'{start}-{end}' runs past midnight; call backs may only be dialled "
                    f"inside one day (callee's local time), e.g. 08:00-21:00")
        elif len(ranges) == 1 and not ranges[0][2]:
            changes["calling_hours"] = (ranges[0][0], ranges[0][1])
        elif ranges:
            r.error(fields["calling_hours"], f"{path}.calling_hours",
                    "one range within a day, e.g. 08:00-21:00")
    for key, attr in (("short_abandon", "short_abandon_s"),
                      ("callback_deadline", "callback_deadline_s"),
                      ("queue_timeout", "queue_timeout_s")):
        value = r.duration(fields.get(key), f"{path}.{key}")
        if value is not None:
            changes[attr] = int(value) if attr == "queue_timeout_s" else value
    after = r.choice(fields.get("after_timeout"), f"{path}.after_timeout",
                     ("voicemail", "hangup"))
    if after:
        changes["after_timeout"] = after
    if "repeat" in fields:
        changes["repeat"] = _repeat(r, fields["repeat"], f"{path}.repeat", client.repeat)
    plan_counts = r.choice(fields.get("plan_counts"), f"{path}.plan_counts",
                           ("answered", "offered"))
    if plan_counts:
        changes["plan_counts"] = plan_counts
    plan_outbound = r.flag(fields.get("plan_outbound"), f"{path}.plan_outbound")
    if plan_outbound is not None:
        changes["plan_outbound"] = plan_outbound
    service_level = r.duration(fields.get("service_level"), f"{path}.service_level")
    if service_level is not None:
        changes["service_level_s"] = service_level
    retention = r.scalar(fields.get("retention"), f"{path}.retention")
    if retention is not None and retention.lower() in ("none", "forever", "off"):
        changes["retention_s"] = None
    elif retention is not None:
        seconds = r.duration(fields.get("retention"), f"{path}.retention")
        if seconds is not None and seconds < 86400:
            r.error(fields["retention"], f"{path}.retention",
                    f"{retention!r} is shorter than a day")
        elif seconds is not None:
            changes["retention_s"] = seconds
    if "wallboard" in fields:
        changes["wallboard"] = _wallboard(r, fields["wallboard"], f"{path}.wallboard",
                                          client.wallboard)
    changes.update(_callflow_settings(r, fields, path))
    return replace(client, **changes)


def _wallboard(r: _Reader, node: yaml.Node, path: str, base: WallboardRule) -> WallboardRule:
    """``{service_level_target: 80%, long_wait: 60s}`` (the service level's threshold is the
    client's ``service_level``, the same for the wallboard and the monthly report)."""
    fields = r.mapping(node, path, ("service_level_target", "long_wait"))
    wait = r.duration(fields.get("long_wait"), f"{path}.long_wait")
    target_text = r.scalar(fields.get("service_level_target"), f"{path}.service_level_target")
    target = base.service_level_target
    if target_text is not None:
        match = re.fullmatch(r"(\d{1,3}(?:\.\d+)?)\s*%", target_text)
        if match and float(match.group(1)) <= 100:
            target = float(match.group(1)) / 100
        else:
            r.error(fields["service_level_target"], f"{path}.service_level_target",
                    f"{target_text!r} is not a percentage (e.g. 80%)")
    if wait is not None and wait <= 0:
        r.error(fields["long_wait"], f"{path}.long_wait", "must be longer than 0s")
    return WallboardRule(
        service_level_target=target,
        long_wait_s=wait if wait and wait > 0 else base.long_wait_s)


def _repeat(r: _Reader, node: yaml.Node, path: str, base: RepeatRule) -> RepeatRule:
    text = r.scalar(node, path) if isinstance(node, yaml.ScalarNode) else None
    if text is not None:
        if text.lower() in ("off", "no", "false", "none"):
            return replace(base, enabled=False)
        r.error(node, path, "expected a mapping or 'off'")
        return base
    fields = r.mapping(node, path, ("earlier_calls", "window", "queue", "priority", "enabled"))
    earlier = r.integer(fields.get("earlier_calls"), f"{path}.earlier_calls", 1, 100)
    window = r.duration(fields.get("window"), f"{path}.window")
    queue = r.pattern(fields.get("queue"), f"{path}.queue", _QUEUE, "a queue name")
    priority = r.integer(fields.get("priority"), f"{path}.priority", 0, 100)
    enabled = r.flag(fields.get("enabled"), f"{path}.enabled")
    return RepeatRule(
        earlier_calls=earlier if earlier is not None else base.earlier_calls,
        window_s=window if window is not None else base.window_s,
        queue=queue or base.queue, priority=priority if priority is not None else base.priority,
        enabled=base.enabled if enabled is None else enabled)


def parse_clients(text: str, source: str = "clients.yaml") -> Directory:
    """The clients file as a :class:`Directory`; raises :class:`ClientsFileError` listing
    every problem."""
    r = _Reader(source)
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ClientsFileError([f"{where}: not valid YAML: "
                                f"{getattr(exc, 'problem', None) or exc}"]) from exc
    if root is None:
        raise ClientsFileError([f"{source}: the file is empty"])
    top = r.mapping(root, "(top)", ("defaults", "supervisors", "unknown_did", "clients"))
    defaults_fields = r.mapping(top.get("defaults"), "defaults", _DEFAULT_KEYS)
    base = _apply_common(r, Client(code="", name="", dids=(), queue=""), defaults_fields,
                         "defaults")
    supervisors = r.mapping(top.get("supervisors"), "supervisors", ("queue",))
    supervisor_queue = r.pattern(supervisors.get("queue"), "supervisors.queue", _QUEUE,
                                 "a queue name") or base.repeat.queue
    unknown_fields = r.mapping(top.get("unknown_did"), "unknown_did",
                               ("queue", "whisper", "greeting", "voicemail", "queue_timeout"))
    unknown = UnknownDidRoute(
        queue=r.pattern(unknown_fields.get("queue"), "unknown_did.queue", _QUEUE,
                        "a queue name") or UnknownDidRoute.queue,
        whisper=r.pattern(unknown_fields.get("whisper"), "unknown_did.whisper", _PROMPT,
                          "a prompt name") or "",
        greeting=r.pattern(unknown_fields.get("greeting"), "unknown_did.greeting", _PROMPT,
                           "a prompt name") or "",
        voicemail=r.pattern(unknown_fields.get("voicemail"), "unknown_did.voicemail", _MAILBOX,
                            "a mailbox") or "",
        queue_timeout_s=int(r.duration(unknown_fields.get("queue_timeout"),
                                       "unknown_did.queue_timeout") or 60))
    clients_node = top.get("clients")
    if clients_node is None:
        r.error(root, "clients", "at least one client is required")
    clients: dict[str, Client] = {}
    by_did: dict[str, str] = {}
    did_nodes: dict[str, yaml.Node] = {}
    if isinstance(clients_node, yaml.MappingNode):
        seen: set[str] = set()
        for code_node, client_node in clients_node.value:
            code = str(code_node.value)
            if code in seen:
                r.error(code_node, f"clients.{code}", "appears twice")
                continue
            seen.add(code)
            dids: list[tuple[str, yaml.Node]] = []
            client = _client(r, code_node, client_node, base, dids)
            for did, did_node in dids:
                if did in by_did:
                    r.error(did_node, f"clients.{code}.dids",
                            f"{did} already belongs to {by_did[did]} "
                            f"(line {did_nodes[did].start_mark.line + 1})")
                    continue
                by_did[did] = code
                did_nodes[did] = did_node
            if client is not None:
                clients[code] = client
    elif clients_node is not None:
        r.error(clients_node, "clients", "expected a mapping of client code to settings")
    if r.errors:
        raise ClientsFileError(r.errors)
    return Directory(clients=clients, by_did=by_did, unknown_did=unknown,
                     supervisor_queue=supervisor_queue)


def _callflow_settings(r: _Reader, fields: dict[str, yaml.Node], path: str) -> dict[str, Any]:
    """The call-flow settings written in ``fields`` (docs/callflows.md), as Client changes."""
    changes: dict[str, Any] = {}
    language = r.choice(fields.get("language"), f"{path}.language", ("ja", "en"))
    if language:
        changes["language"] = language
    wait = r.duration(fields.get("supervisor_wait"), f"{path}.supervisor_wait")
    if wait is not None:
        if 5 <= wait <= 600:
            changes["supervisor_wait_s"] = int(wait)
        else:
            r.error(fields["supervisor_wait"], f"{path}.supervisor_wait",
                    "must be from 5s to 10m: an escalated caller may not wait longer for a "
                    "supervisor before going back to the operators")
    recording = r.choice(fields.get("recording"), f"{path}.recording",
                         ("all", "none", "on_demand"))
    if recording:
        changes["recording"] = recording
    notice = r.flag(fields.get("recording_notice"), f"{path}.recording_notice")
    if notice is not None:
        changes["recording_notice"] = notice
    wrapup = r.duration(fields.get("wrapup"), f"{path}.wrapup")
    if wrapup is not None:
        if wrapup <= 600:
            changes["wrapup_s"] = int(wrapup)
        else:
            r.error(fields["wrapup"], f"{path}.wrapup", "must be at most 10m")
    if "dispositions" in fields:
        codes = []
        for item in r.sequence(fields["dispositions"], f"{path}.dispositions"):
            code = r.pattern(item, f"{path}.dispositions", _DISPOSITION,
                             "a disposition code (lower-case letters, digits, _)")
            if code and code in codes:
                r.error(item, f"{path}.dispositions", f"{code!r} appears twice")
            elif code:
                codes.append(code)
        changes["dispositions"] = tuple(codes)
    return changes
