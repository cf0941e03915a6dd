"""受電報告 delivery to a real local HTTP receiver and a real local SMTP server."""

from __future__ import annotations

import asyncio
import email
import json
from collections.abc import AsyncIterator
from email.policy import default as default_policy
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from service.clients.store import load_document
from service.messages.delivery import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    DeliveryWorker,
    SmtpSettings,
    sign,
)
from service.messages.service import MessageError, NewMessage, take_message
from tests.live_asterisk import free_port

SAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "clients.sample.yaml"


class Receiver:
    """A client's webhook endpoint: answers with the statuses it is told, keeps requests."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


class Mailbox:
    """A local SMTP server's mailbox; ``refuse``: answer every message with a 451."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.refuse = False

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.refuse:
            return "451 try again later"
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 OK"


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    target = Receiver()
    app = web.Application()
    app.router.add_post("/hook", target.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield target, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


@pytest.fixture
def smtp() -> tuple[Mailbox, int]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


async def setup_client(pool, url: str) -> None:  # type: ignore[no-untyped-def]
    text = SAMPLE.read_text().replace(
        "    plan_calls: 300\n",
        f"    plan_calls: 300\n    reports:\n      webhook: {url}\n"
        "      webhook_secret: s3cret\n      email: [office@ksl.example, boss@ksl.example]\n", 1)
    async with pool.acquire() as conn:
        await load_document(conn, text, "clients.yaml")


async def test_webhook_and_email_delivery_with_retry(pool, receiver, smtp) -> None:
    target, url = receiver
    mailbox, smtp_port = smtp
    await setup_client(pool, url)
    target.statuses = [503]  # the client's endpoint is down at first
    async with pool.acquire() as conn:
        taken = await take_message(conn, NewMessage(
            client="KSL", disposition="callback_requested", body="契約の件、至急お電話ください",
            caller_number="09011112222", caller_name="田中太郎", taken_by="201"))
    assert taken["deliveries"] == 3
    worker = DeliveryWorker(pool, SmtpSettings(port=smtp_port, sender="desk@orikaeshi.example"))
    async with aiohttp.ClientSession() as http:
        assert await worker.run_once(http) == 3
        async with pool.acquire() as conn:
            rows = {r["channel"] + r["target"]: r for r in
                    await conn.fetch("SELECT * FROM message_deliveries")}
            webhook = rows["webhook" + url]
            assert (webhook["state"], webhook["attempts"]) == ("pending", 1)
            assert webhook["last_error"] == "HTTP 503"
            # Retried later, not at once.
            assert await worker.run_once(http) == 0
            await conn.execute("UPDATE message_deliveries SET next_attempt_at = now()")
        assert await worker.run_once(http) == 1
        async with pool.acquire() as conn:
            states = await conn.fetch("SELECT channel, state, attempts FROM message_deliveries "
                                      "ORDER BY channel, target")
    assert [tuple(r) for r in states] == [("email", "delivered", 1), ("email", "delivered", 1),
                                          ("webhook", "delivered", 2)]
    # Every attempt is on record: the webhook's 503, then its success.
    async with pool.acquire() as conn:
        history = await conn.fetch(
            "SELECT d.channel, a.attempt, a.ok, a.status, a.error "
            "FROM message_delivery_attempts a JOIN message_deliveries d ON d.id = a.delivery_id "
            "WHERE d.channel = 'webhook' ORDER BY a.attempt")
    assert [tuple(r) for r in history] == [("webhook", 1, False, 503, "HTTP 503"),
                                           ("webhook", 2, True, 200, None)]
    # The same delivery id both times, and a valid signature over the exact body.
    (first_headers, _), (headers, body) = target.requests
    assert first_headers[DELIVERY_HEADER] == headers[DELIVERY_HEADER]
    assert headers[SIGNATURE_HEADER] == sign("s3cret", body)
    sent = json.loads(body)
    assert (sent["caller_name"], sent["body"], sent["callback_obligation"]) == \
        ("田中太郎", "契約の件、至急お電話ください", taken["obligation_id"])
    assert sorted(m["To"] for m in mailbox.messages) == ["boss@ksl.example", "office@ksl.example"]
    mail = mailbox.messages[0]
    assert "受電報告" in mail["Subject"] and "田中太郎" in mail["Subject"]
    assert "契約の件、至急お電話ください" in mail.get_content()
    # The time the client reads is the client's (Asia/Tokyo), not UTC.
    async with pool.acquire() as conn:
        created = await conn.fetchval("SELECT created_at FROM messages")
    local = created.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"taken at: {local:%Y-%m-%d %H:%M} JST" in mail.get_content()


async def test_failing_endpoint_gives_up_after_max_attempts(pool, receiver) -> None:
    target, url = receiver
    await setup_client(pool, url)
    target.statuses = [500] * 10
    async with pool.acquire() as conn:
        await conn.execute("UPDATE clients SET report_emails = '{}'")
        await take_message(conn, NewMessage(client="KSL", disposition="urgent", body="x"))
    worker = DeliveryWorker(pool, SmtpSettings(), max_attempts=3)
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with pool.acquire() as conn:
                await conn.execute("UPDATE message_deliveries SET next_attempt_at = now()")
            await worker.run_once(http)
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT state, attempts, last_error FROM message_deliveries")
    assert tuple(row) == ("failed", 3, "HTTP 500")


async def test_instances_never_send_the_same_delivery_at_once(pool, receiver, smtp) -> None:
    """Several workers (instances) draining one outbox: each delivery is sent once."""
    target, url = receiver
    mailbox, smtp_port = smtp
    await setup_client(pool, url)
    async with pool.acquire() as conn:
        for i in range(12):
            await take_message(conn, NewMessage(client="KSL", disposition="info_only",
                                                body=f"message {i}"))
    workers = [DeliveryWorker(pool, SmtpSettings(port=smtp_port), batch=5) for _ in range(3)]
    async with aiohttp.ClientSession() as http:
        while sum(await asyncio.gather(*(w.run_once(http) for w in workers))):
            pass
    async with pool.acquire() as conn:
        states = await conn.fetch("SELECT state, attempts, count(*) AS n FROM message_deliveries "
                                  "GROUP BY state, attempts")
        attempts = await conn.fetchval("SELECT count(*) FROM message_delivery_attempts")
    assert [tuple(r) for r in states] == [("delivered", 1, 36)]
    assert attempts == 36
    assert len(target.requests) == 12 and len(mailbox.messages) == 24
    assert len({h[DELIVERY_HEADER] for h, _ in target.requests}) == 12


async def test_bad_messages_are_refused_clearly(pool) -> None:
    async with pool.acquire() as conn:
        await load_document(conn, SAMPLE.read_text(), "clients.yaml")
        for message, words in ((NewMessage("KSL", "maybe", "x"), "disposition"),
                               (NewMessage("KSL", "urgent", "  "), "empty"),
                               (NewMessage("NOPE", "urgent", "x"), "no active client")):
            with pytest.raises(MessageError, match=words):
                await take_message(conn, message)
    await asyncio.sleep(0)
