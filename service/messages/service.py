"""Taking a message for a client: stored, a call back opened when asked for, deliveries
queued for the client's webhook and e-mail addresses (sent by the delivery worker)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from service.phone import to_e164
from service.store.callbacks_sql import DEFAULT_DEADLINE_S, open_or_join

DISPOSITIONS = ("callback_requested", "urgent", "info_only")


class MessageError(ValueError):
    """The message cannot be taken as given (unknown client, bad disposition...)."""


@dataclass(frozen=True)
class NewMessage:
    client: str
    disposition: str
    body: str
    caller_number: str | None = None
    caller_name: str | None = None
    pbx_id: str | None = None
    linkedid: str | None = None
    taken_by: str | None = None


async def take_message(conn: asyncpg.Connection, message: NewMessage) -> dict[str, object]:
    if message.disposition not in DISPOSITIONS:
        raise MessageError(f"disposition must be one of {', '.join(DISPOSITIONS)}")
    if not message.body.strip():
        raise MessageError("the message is empty")
    if len(message.body) > 10_000:
        raise MessageError("the message is longer than 10,000 characters")
    async with conn.transaction():
        client = await conn.fetchrow(
            "SELECT code, callback_deadline_s, report_webhook, report_emails, push_mode "
            "FROM clients WHERE code = $1 AND active", message.client)
        if client is None:
            raise MessageError(f"no active client {message.client!r}")
        caller_e164 = to_e164(message.caller_number)
        obligation_id = None
        if message.disposition == "callback_requested":
            call = (message.pbx_id, message.linkedid) if message.pbx_id and message.linkedid \
                else None
            obligation_id = await open_or_join(
                conn, message.client, caller_e164, message.caller_number,
                datetime.now(UTC), client["callback_deadline_s"] or DEFAULT_DEADLINE_S,
                "message", call)
        row = await conn.fetchrow(
            """INSERT INTO messages (client, pbx_id, linkedid, caller_number, caller_e164,
                   caller_name, disposition, body, taken_by, obligation_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id, created_at""",
            message.client, message.pbx_id, message.linkedid, message.caller_number,
            caller_e164, message.caller_name, message.disposition, message.body,
            message.taken_by, obligation_id)
        targets = [("webhook", client["report_webhook"])] if client["report_webhook"] else []
        targets += [("email", address) for address in client["report_emails"]]
        if client["push_mode"] in ("digest", "daily"):
            targets = []  # this client gets its messages in the digest (service/reports)
        for channel, target in targets:
            await conn.execute(
                "INSERT INTO message_deliveries (message_id, channel, target, delivery_id) "
                "VALUES ($1, $2, $3, $4)", row["id"], channel, target, uuid.uuid4())
    return {"id": row["id"], "created_at": row["created_at"], "obligation_id": obligation_id,
            "deliveries": len(targets)}
