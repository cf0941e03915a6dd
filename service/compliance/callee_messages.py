"""Messages to callees (e-mail, or fax through an e-mail-to-fax gateway) under the outbound
policy.

The law's window (08:00-21:00 in the callee's time, 貸金業法 21条 and its guidelines) holds
for fax and e-mail as for calls, and a number on the client's do-not-call list must not be
reached by any means.  So a message is asked for through the same :func:`check_outbound`
(path ``message``) when it is written, and again at the moment it is sent:

* allowed: sent now (``pending`` until the sender has it);
* refused for the hours (or a contact limit) with a time it opens: ``held`` until then, and
  checked again at that time: a message written at 22:10 leaves at 08:00 the callee's time;
* refused for good (do-not-call, not a callable number): ``refused``, nothing is sent.

Every check is an ``outbound_decisions`` row (who asked, when, why, the callee's local time):
the evidence the compliance officer reads.  Messages are not call attempts: they do not count
towards ``max_attempts_per_day`` (``compliance_sql.contact_history`` leaves them out).

A fax goes as an e-mail to the gateway address the admin configures (``fax_gateway``, e.g.
``{national}@fax.example.jp``): most Japanese fax services take e-mail, and it keeps one
sending path, one retry policy and one evidence trail.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import aiosmtplib
import asyncpg

from service.callbacks.dialer import active_client, dial_string
from service.clock import Clock, utc_now
from service.compliance.guard import check_outbound
from service.compliance.policy import OutboundDecision
from service.logs import get_logger
from service.messages.delivery import SmtpSettings, backoff_s
from service.phone import mask, to_e164
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)

CHANNELS = ("email", "fax")
STATES = ("pending", "held", "sent", "refused", "failed", "cancelled")
MAX_SUBJECT = 200
MAX_BODY = 10_000
# An address a person typed: one @, no spaces, no header-breaking characters.
_ADDRESS = re.compile(r"^[^@\s<>()\[\]\\,;:\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


class CalleeMessageError(ValueError):
    """A message that cannot be taken, with a reason a person can act on."""


@dataclass(frozen=True)
class NewCalleeMessage:
    client: str
    callee: str                 # the callee's phone number: it decides the zone and the list
    channel: str                # email | fax
    subject: str
    body: str
    requested_by: str
    email: str | None = None    # channel email: the callee's address
    obligation_id: int | None = None


@dataclass(frozen=True)
class Step:
    """What to do with a message after a check: its next state, when, and why."""

    state: str                  # pending (send now) | held | refused
    not_before: datetime
    reason: str


def next_step(decision: OutboundDecision, now: datetime) -> Step:
    """The state a message takes after the policy's ``decision``.

    >>> from datetime import UTC
    >>> now = datetime(2026, 6, 10, 13, 30, tzinfo=UTC)
    >>> opens = datetime(2026, 6, 10, 23, 0, tzinfo=UTC)
    >>> next_step(OutboundDecision(True, "allowed", "10:00 in Asia/Tokyo", "Asia/Tokyo",
    ...                            None), now).state
    'pending'
    >>> step = next_step(OutboundDecision(False, "calling_hours", "22:30 in Asia/Tokyo is "
    ...                  "outside 08:00-21:00", "Asia/Tokyo", None, opens), now)
    >>> step.state, step.not_before == opens
    ('held', True)
    >>> next_step(OutboundDecision(False, "do_not_call", "on the list (workplace)",
    ...                            "Asia/Tokyo", None), now).state
    'refused'
    """
    if decision.allowed:
        return Step("pending", now, decision.reason)
    if decision.opens_at is not None and decision.rule != "do_not_call":
        return Step("held", decision.opens_at, f"held until the window opens: {decision.reason}")
    return Step("refused", now, decision.reason)


def fax_address(gateway: str, e164: str) -> str:
    """The e-mail address of a fax number at the gateway: ``{national}`` is the number as a
    Japanese line dials it, ``{e164}`` its digits in international form.

    >>> fax_address("{national}@fax.example.jp", "+81312345678")
    '0312345678@fax.example.jp'
    >>> fax_address("fax+{e164}@gw.example.net", "+12125551234")
    'fax+12125551234@gw.example.net'
    """
    return gateway.format(national=dial_string(e164), e164=e164.lstrip("+"))


def validate(message: NewCalleeMessage, fax_gateway: str) -> str:
    """The message's target (address or fax number), or :class:`CalleeMessageError`."""
    if message.channel not in CHANNELS:
        raise CalleeMessageError(f"channel must be one of {', '.join(CHANNELS)}")
    if not message.subject.strip() or len(message.subject) > MAX_SUBJECT \
            or any(c in message.subject for c in "\r\n"):
        raise CalleeMessageError(f"subject must be one line of 1..{MAX_SUBJECT} characters")
    if not message.body.strip() or len(message.body) > MAX_BODY:
        raise CalleeMessageError(f"body must be 1..{MAX_BODY} characters")
    if message.channel == "email":
        if not message.email or not _ADDRESS.match(message.email):
            raise CalleeMessageError("email must be the callee's e-mail address")
        return message.email
    if not fax_gateway:
        raise CalleeMessageError("no fax gateway is configured (fax_gateway in orikaeshi.toml)")
    e164 = to_e164(message.callee)
    if e164 is None:
        raise CalleeMessageError("callee is not a fax number that can be reached")
    return e164


async def submit(conn: asyncpg.Connection, message: NewCalleeMessage, *, now: datetime,
                 fax_gateway: str = "") -> dict[str, object]:
    """Check the message under the client's outbound rules and keep it: sent by the worker
    now, held until the window opens, or refused (kept as evidence, never sent)."""
    target = validate(message, fax_gateway)
    client = await active_client(conn, message.client)
    if client is None:
        raise CalleeMessageError(f"no active client {message.client!r}")
    e164 = to_e164(message.callee)
    if e164 is None:
        raise CalleeMessageError("callee is not a phone number that can be reached")
    checked = await check_outbound(conn, client, message.callee, path="message", now=now,
                                   requested_by=message.requested_by, operator=None)
    step = next_step(checked.decision, now)
    row = await conn.fetchrow(
        """INSERT INTO callee_messages (client, obligation_id, callee_e164, channel, target,
               subject, body, requested_by, created_at, state, not_before, last_decision,
               last_reason, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $9)
           RETURNING *""",
        client.code, message.obligation_id, e164, message.channel, target, message.subject,
        message.body, message.requested_by, now, step.state, step.not_before,
        checked.decision_id, step.reason)
    log.info("callee_message_taken", id=row["id"], client=client.code, callee=mask(e164),
             channel=message.channel, state=step.state)
    return view(row, checked.decision)


def view(row: asyncpg.Record, decision: OutboundDecision | None = None) -> dict[str, object]:
    """A message as the API shows it (with the decision's reason and the callee's time)."""
    shown: dict[str, object] = {k: row[k] for k in (
        "id", "client", "obligation_id", "callee_e164", "channel", "target", "subject",
        "requested_by", "created_at", "state", "not_before", "attempts", "last_decision",
        "last_reason", "sent_at")}
    if decision is not None:
        shown["rule"] = decision.rule
        shown["callee_zone"] = decision.callee_zone
        shown["callee_local"] = decision.callee_local
    return shown


def email_for(row: asyncpg.Record, client_name: str, settings: SmtpSettings,
              fax_gateway: str, now: datetime) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = formataddr((client_name, settings.sender))
    mail["To"] = row["target"] if row["channel"] == "email" else \
        fax_address(fax_gateway, row["target"])
    mail["Subject"] = row["subject"]
    mail["Date"] = format_datetime(now)
    # Stable across retries, so a receiver that gets one twice can tell.
    mail["Message-ID"] = f"<callee-message-{row['id']}@orikaeshi>"
    mail.set_content(row["body"])
    return mail


class CalleeMessageWorker:
    """Sends due messages, each checked again by the policy at the moment it leaves."""

    def __init__(self, pool: asyncpg.Pool, smtp: SmtpSettings, *, clock: Clock = utc_now,
                 fax_gateway: str = "", interval_s: float = 5.0,
                 max_attempts: int = 10) -> None:
        self.pool, self.smtp, self.clock = pool, smtp, clock
        self.fax_gateway, self.interval_s, self.max_attempts = fax_gateway, interval_s, \
            max_attempts
        self.sent = 0

    async def run_once(self) -> int:
        """Handle every due message (one transaction each); returns how many."""
        handled = 0
        while await self._one():
            handled += 1
        return handled

    async def _one(self) -> bool:
        now = self.clock()
        # The row stays locked while it is sent (bounded by the SMTP time-out), so two
        # instances never send one message twice.
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """SELECT * FROM callee_messages WHERE state IN ('pending', 'held')
                     AND not_before <= $1 ORDER BY not_before, id LIMIT 1
                   FOR UPDATE SKIP LOCKED""", now)
            if row is None:
                return False
            client = await active_client(conn, row["client"])
            if client is None:
                state, not_before, reason, decision_id = (
                    "refused", now, f"client {row['client']} is no longer active",
                    row["last_decision"])
            else:
                checked = await check_outbound(
                    conn, client, row["callee_e164"], path="message", now=now,
                    requested_by=row["requested_by"], operator=None)
                step = next_step(checked.decision, now)
                decision_id = checked.decision_id
                state, not_before, reason = step.state, step.not_before, step.reason
            attempts = row["attempts"]
            sent_at = None
            if state == "pending" and client is not None:
                attempts += 1
                error = await self._send(row, client.name, now)
                if error is None:
                    state, sent_at = "sent", now
                    self.sent += 1
                else:
                    reason = error
                    state = "failed" if attempts >= self.max_attempts else "pending"
                    not_before = now + timedelta(seconds=backoff_s(attempts))
            await conn.execute(
                """UPDATE callee_messages SET state = $2, not_before = $3, attempts = $4,
                       last_decision = $5, last_reason = $6, sent_at = $7, updated_at = $8
                   WHERE id = $1""",
                row["id"], state, not_before, attempts, decision_id, reason, sent_at, now)
        log.info("callee_message", id=row["id"], client=row["client"],
                 callee=mask(row["callee_e164"]), channel=row["channel"], state=state,
                 attempts=attempts)
        return True

    async def _send(self, row: asyncpg.Record, client_name: str, now: datetime) -> str | None:
        try:
            await aiosmtplib.send(
                email_for(row, client_name, self.smtp, self.fax_gateway, now),
                hostname=self.smtp.host, port=self.smtp.port, username=self.smtp.username,
                password=self.smtp.password, start_tls=self.smtp.starttls,
                timeout=self.smtp.timeout_s)
            return None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"[:500]

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except TRANSIENT_ERRORS as exc:
                log.warning("callee_messages_waiting", error=str(exc) or type(exc).__name__)
            await asyncio.sleep(self.interval_s)


async def cancel(conn: asyncpg.Connection, message_id: int, clients: list[str] | None,
                 now: datetime) -> bool:
    """Cancel a message that has not left yet (pending or held)."""
    return await conn.fetchval(
        """UPDATE callee_messages SET state = 'cancelled', updated_at = $3,
               last_reason = 'cancelled'
           WHERE id = $1 AND state IN ('pending', 'held')
             AND ($2::text[] IS NULL OR client = ANY ($2)) RETURNING true""",
        message_id, clients, now) is not None
