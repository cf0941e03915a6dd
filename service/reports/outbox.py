"""Deliveries that are not 受電報告: the monthly report, pushes, digests and reminders.

They go through the same outbox as messages (``message_deliveries``, migration 0010 added
``kind``, ``client`` and the content columns) and so through the same
:class:`~service.messages.delivery.DeliveryWorker`: HMAC-signed webhooks and e-mail, retries
with backoff, every attempt kept, ``delivery_failures`` for the wallboard.  What to send is
stored on the row when it is queued (the report's PDF included), so every attempt sends the
same thing.
"""

from __future__ import annotations

import json
import uuid
from email.message import EmailMessage
from typing import Any

import asyncpg

KINDS = ("monthly_report", "push", "digest", "reminder")


async def enqueue(conn: asyncpg.Connection, client: str, kind: str, *, subject: str,
                  text_body: str, payload: dict[str, Any], attachment: bytes | None = None,
                  attachment_name: str | None = None, contacts: bool = False) -> int:
    """Queue one delivery per destination of ``client`` (its webhook and e-mail addresses;
    with ``contacts``, the monthly report's contacts when it has them); returns how many."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    row = await conn.fetchrow("SELECT report_webhook, report_emails, report_contacts "
                              "FROM clients WHERE code = $1", client)
    if row is None:
        return 0
    emails = list(row["report_contacts"]) if contacts and row["report_contacts"] else \
        list(row["report_emails"])
    targets = [("webhook", row["report_webhook"])] if row["report_webhook"] else []
    targets += [("email", address) for address in emails]
    body = json.dumps(payload, ensure_ascii=False, default=str)
    for channel, target in targets:
        await conn.execute(
            """INSERT INTO message_deliveries (channel, target, delivery_id, kind, client,
                   subject, text_body, payload, attachment, attachment_name)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)""",
            channel, target, uuid.uuid4(), kind, client, subject, text_body, body,
            attachment if channel == "email" else None, attachment_name)
    return len(targets)


def webhook_payload(row: asyncpg.Record) -> dict[str, Any]:
    """The stored payload with the delivery's id and kind (what the receiver dedupes by)."""
    stored = row["payload"]
    data = json.loads(stored) if isinstance(stored, str) else dict(stored or {})
    return {"delivery_id": str(row["delivery_id"]), "type": row["kind"],
            "client": row["row_client"], **data}


def email_message(row: asyncpg.Record, sender: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = row["target"]
    mail["Subject"] = row["subject"] or f"[{row['row_client']}] orikaeshi"
    mail["Message-ID"] = f"<{row['delivery_id']}@orikaeshi>"
    mail.set_content(row["text_body"] or "")
    if row["attachment"] is not None:
        name = row["attachment_name"] or "report.pdf"
        subtype = "pdf" if name.endswith(".pdf") else "octet-stream"
        mail.add_attachment(bytes(row["attachment"]), maintype="application", subtype=subtype,
                            filename=name)
    return mail
