"""Delivering 受電報告: the outbox worker, HMAC-signed webhooks and e-mail over SMTP.

Each delivery has a stable ``delivery_id`` (a UUID) sent with every attempt (header
``X-Orikaeshi-Delivery``, e-mail ``Message-ID``), so a receiver that gets one twice can tell.
Failures are retried with exponential backoff (30 s, 1 min, 2 min, ... up to 1 h) for
``max_attempts``, then marked failed; every attempt is kept in
``message_delivery_attempts`` and the delivery row holds the latest state.

Claiming is a short transaction (``FOR UPDATE SKIP LOCKED``) that leases the due rows by
moving their ``next_attempt_at`` past the attempt's time-out, so no transaction stays open
while a client's server is slow, several instances never send the same delivery at once,
and a delivery whose instance died mid-attempt is tried again once its lease runs out (the
receiver may see its id twice, which is what the id is for).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import aiohttp
import aiosmtplib
import asyncpg

from service.localtime import local_text
from service.logs import get_logger
from service.reports import outbox
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)

SIGNATURE_HEADER = "X-Orikaeshi-Signature"
DELIVERY_HEADER = "X-Orikaeshi-Delivery"

CLAIM_DUE = """
WITH due AS (
    SELECT id FROM message_deliveries
     WHERE state = 'pending' AND next_attempt_at <= now()
     ORDER BY next_attempt_at
     LIMIT $1
     FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE message_deliveries d SET next_attempt_at = now() + $2::float8 * interval '1 second'
      FROM due WHERE d.id = due.id
    RETURNING d.id, d.channel, d.target, d.delivery_id, d.attempts, d.message_id, d.kind,
              d.client AS row_client, d.subject, d.text_body, d.payload, d.attachment,
              d.attachment_name
)
SELECT d.id, d.channel, d.target, d.delivery_id, d.attempts, m.id AS message_id, m.client,
       c.timezone AS client_tz,
       m.caller_number, m.caller_name, m.disposition, m.body, m.taken_by, m.created_at,
       m.pbx_id, m.linkedid, m.obligation_id, c.name AS client_name,
       c.report_webhook_secret AS secret, d.kind, d.row_client, d.subject, d.text_body,
       d.payload, d.attachment, d.attachment_name
  FROM leased d
  LEFT JOIN messages m ON m.id = d.message_id
  LEFT JOIN clients c ON c.code = COALESCE(m.client, d.row_client)
 ORDER BY d.id
"""


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "orikaeshi@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_s: float = 10.0


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex>`` of the body under the client's secret (what receivers check)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(row: asyncpg.Record) -> dict[str, Any]:
    if row["kind"] != "message":  # a report, push, digest or reminder (service/reports)
        return outbox.webhook_payload(row)
    return {"delivery_id": str(row["delivery_id"]), "message_id": row["message_id"],
            "client": row["client"], "disposition": row["disposition"],
            "caller_number": row["caller_number"], "caller_name": row["caller_name"],
            "body": row["body"], "taken_by": row["taken_by"],
            "taken_at": row["created_at"].isoformat(), "callback_obligation": row["obligation_id"],
            "call": {"pbx": row["pbx_id"], "linkedid": row["linkedid"]}}


def email_for(row: asyncpg.Record, settings: SmtpSettings) -> EmailMessage:
    if row["kind"] != "message":
        return outbox.email_message(row, settings.sender)
    labels = {"callback_requested": "折り返し希望 / call back requested",
              "urgent": "至急 / urgent", "info_only": "ご連絡 / for information"}
    mail = EmailMessage()
    mail["From"] = settings.sender
    mail["To"] = row["target"]
    mail["Subject"] = (f"[{row['client']}] 受電報告 {row['caller_name'] or ''} "
                       f"{row['caller_number'] or ''} ({labels[row['disposition']]})")
    mail["Message-ID"] = f"<{row['delivery_id']}@orikaeshi>"
    mail.set_content(
        f"{row['client_name'] or row['client']} 様\n\n"
        f"受電日時 / taken at: {_client_time(row['created_at'], row['client_tz'])}\n"
        f"お名前 / caller: {row['caller_name'] or '-'}\n"
        f"電話番号 / number: {row['caller_number'] or '(非通知 / withheld)'}\n"
        f"用件 / disposition: {labels[row['disposition']]}\n"
        f"受付者 / taken by: {row['taken_by'] or '-'}\n\n{row['body']}\n")
    return mail


def _client_time(moment: datetime, tz: str | None) -> str:
    """A time a person reads, in the client's time zone with its name.

    >>> _client_time(datetime(2026, 11, 22, 2, 27, tzinfo=UTC), "Asia/Tokyo")
    '2026-11-22 11:27 JST'
    """
    return local_text(moment, tz)  # one formatting for every time people read


def backoff_s(attempts: int) -> float:
    return float(min(3600, 30 * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    status: int | None = None
    error: str | None = None


class DeliveryWorker:
    def __init__(self, pool: asyncpg.Pool, smtp: SmtpSettings, *, interval_s: float = 1.0,
                 max_attempts: int = 10, http_timeout_s: float = 10.0, batch: int = 20,
                 concurrency: int = 5) -> None:
        self.pool = pool
        self.smtp = smtp
        self.interval_s = interval_s
        self.max_attempts = max_attempts
        self.http_timeout = aiohttp.ClientTimeout(total=http_timeout_s)
        self.batch = batch
        self.concurrency = concurrency
        # Longer than any attempt can take (HTTP or SMTP time-out), with room to record it.
        self.lease_s = max(http_timeout_s, smtp.timeout_s) * 2 + 30
        self.delivered = 0
        self.failed_attempts = 0

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=self.http_timeout) as http:
            while True:
                try:
                    while await self.run_once(http):
                        pass
                except TRANSIENT_ERRORS as exc:
                    log.warning("delivery_worker_waiting", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(self.interval_s)

    async def run_once(self, http: aiohttp.ClientSession) -> int:
        """Attempt every due delivery once (up to a batch); returns how many were attempted."""
        async with self.pool.acquire(timeout=5) as conn:
            rows = await conn.fetch(CLAIM_DUE, self.batch, self.lease_s)
        if not rows:
            return 0
        gate = asyncio.Semaphore(self.concurrency)

        async def one(row: asyncpg.Record) -> None:
            async with gate:
                started = datetime.now(UTC)
                result = await self._attempt(http, row)
                async with self.pool.acquire(timeout=5) as conn:
                    await self._record(conn, row, started, result)

        async with asyncio.TaskGroup() as group:
            for row in rows:
                group.create_task(one(row))
        return len(rows)

    async def _attempt(self, http: aiohttp.ClientSession, row: asyncpg.Record) -> AttemptResult:
        try:
            if row["channel"] == "webhook":
                body = json.dumps(payload(row), ensure_ascii=False).encode("utf-8")
                headers = {"Content-Type": "application/json; charset=utf-8",
                           DELIVERY_HEADER: str(row["delivery_id"]),
                           SIGNATURE_HEADER: sign(row["secret"] or "", body)}
                async with http.post(row["target"], data=body, headers=headers,
                                     allow_redirects=False) as response:
                    if 200 <= response.status < 300:
                        return AttemptResult(True, response.status)
                    return AttemptResult(False, response.status, f"HTTP {response.status}")
            await aiosmtplib.send(
                email_for(row, self.smtp), hostname=self.smtp.host, port=self.smtp.port,
                username=self.smtp.username, password=self.smtp.password,
                start_tls=self.smtp.starttls, timeout=self.smtp.timeout_s)
            return AttemptResult(True)
        except (aiohttp.ClientError, aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return AttemptResult(False, None, f"{type(exc).__name__}: {exc}"[:500])

    async def _record(self, conn: asyncpg.Connection, row: asyncpg.Record,
                      started: datetime, result: AttemptResult) -> None:
        attempts = row["attempts"] + 1
        async with conn.transaction():
            await conn.execute(
                """INSERT INTO message_delivery_attempts (delivery_id, attempt, started_at, ok,
                       status, error) VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (delivery_id, attempt) DO NOTHING""",
                row["id"], attempts, started, result.ok, result.status, result.error)
            if result.ok:
                self.delivered += 1
                await conn.execute(
                    "UPDATE message_deliveries SET state = 'delivered', attempts = $2, "
                    "delivered_at = now(), last_error = NULL WHERE id = $1", row["id"],
                    attempts)
                log.info("message_delivered", channel=row["channel"],
                         message=row["message_id"], kind=row["kind"], attempts=attempts)
                return
            self.failed_attempts += 1
            final = attempts >= self.max_attempts
            await conn.execute(
                "UPDATE message_deliveries SET state = $2, attempts = $3, last_error = $4, "
                "next_attempt_at = now() + $5::float8 * interval '1 second' WHERE id = $1",
                row["id"], "failed" if final else "pending", attempts, result.error,
                backoff_s(attempts))
        log.warning("message_delivery_failed", channel=row["channel"],
                    message=row["message_id"], kind=row["kind"], attempts=attempts,
                    error=result.error, final=final)
