"""What goes to the client on its own: the monthly report on the 1st (client's time zone),
pushes of missed calls / voicemails / messages (immediately, as a digest, daily), reminders of
overdue call backs, and an alert when a delivery fails.  Real recordings replayed into a real
PostgreSQL, a real aiosmtpd server and an aiohttp webhook receiver; the schedule is driven by
a clock the code takes."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
from pypdf import PdfReader

from service.callbacks.worker import CallbackWorker
from service.clients.store import load_document
from service.messages.delivery import SIGNATURE_HEADER, DeliveryWorker, SmtpSettings, sign
from service.messages.service import NewMessage, take_message
from service.reports.monthly import monthly_report
from service.reports.schedule import ReportWorker, queue_monthly_reports
from service.store.reports_sql import delivery_failures
from tests.conftest import trace_dir
from tests.replaying import replay
from tests.test_message_delivery import receiver, smtp  # noqa: F401  (fixtures)

TOKYO = ZoneInfo("Asia/Tokyo")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def clients_file(url: str) -> str:
    return f"""
clients:
  KSL:
    name: Kasumi Law Office
    name_ja: 霞法律事務所
    dids: [0312345678, 0312345679]
    queue: q-ksl
    voicemail: 1001@lab
    plan_calls: 300
    reports:
      webhook: {url}
      webhook_secret: s3cret
      email: [office@ksl.example]
      contacts: [boss@ksl.example]
      push: immediate
  MDC:
    name: Midori Clinic
    dids: [0663330001]
    queue: q-mdc
    voicemail: 1002@lab
    reports:
      email: [desk@mdc.example]
      push: digest 30m
  WSH:
    name: Hoshi Web Shop
    dids: [0501234567]
    timezone: America/Los_Angeles
    queue: q-wsh
    voicemail: 1003@lab
    reports:
      email: [shop@wsh.example]
      push: daily 18:00
"""


RECORDINGS = [  # (recording, where t = 0 goes)
    ("abandon_long", datetime(2026, 11, 10, 10, 0, tzinfo=TOKYO)),               # KSL missed
    ("queue_timeout_to_voicemail", datetime(2026, 11, 10, 10, 5, tzinfo=TOKYO)),  # KSL vm
    ("answered_agent_hangup", datetime(2026, 11, 10, 10, 10, tzinfo=TOKYO)),     # KSL: nothing
    ("queue_full", datetime(2026, 11, 10, 10, 15, tzinfo=TOKYO)),                # MDC vm
    ("abandon_short", datetime(2026, 11, 10, 10, 20, tzinfo=TOKYO)),             # WSH missed
]


async def setup(pool: asyncpg.Pool, tmp_path: Path, url: str) -> None:
    async with pool.acquire() as conn:
        await load_document(conn, clients_file(url), "clients.yaml")
    for i, (name, at) in enumerate(RECORDINGS):
        await replay(pool, tmp_path, trace_dir(name) / "ami.jsonl", pbx_id=f"p{i}",
                     rebase_to=at.timestamp())


async def deliver(pool: asyncpg.Pool, smtp_port: int, **options: object) -> int:
    worker = DeliveryWorker(pool, SmtpSettings(port=smtp_port, sender="desk@answering.example"),
                            **options)  # type: ignore[arg-type]
    async with aiohttp.ClientSession() as http:
        return await worker.run_once(http)


async def test_monthly_report_goes_out_on_the_first_in_the_clients_time_zone(
        pool, tmp_path, receiver, smtp) -> None:  # noqa: F811
    target, url = receiver
    mailbox, smtp_port = smtp
    await setup(pool, tmp_path, url)
    before = datetime(2026, 11, 30, 23, 59, 59, tzinfo=TOKYO)
    assert await queue_monthly_reports(pool, before) == []
    first_in_tokyo = datetime(2026, 12, 1, 0, 0, 30, tzinfo=TOKYO)
    assert await queue_monthly_reports(pool, first_in_tokyo, company="テスト電話代行") == \
        [("KSL", "2026-11"), ("MDC", "2026-11")]  # still 30 November in Los Angeles
    assert await queue_monthly_reports(pool, first_in_tokyo + timedelta(minutes=5)) == []
    first_in_la = datetime(2026, 12, 1, 0, 0, 30, tzinfo=LOS_ANGELES)
    assert await queue_monthly_reports(pool, first_in_la) == [("WSH", "2026-11")]
    # A week later nothing old is sent again, nor late.
    assert await queue_monthly_reports(pool, first_in_la + timedelta(days=8)) == []

    assert await deliver(pool, smtp_port) == 4  # KSL webhook + contact, MDC, WSH e-mail
    mail = {m["To"]: m for m in mailbox.messages}
    assert set(mail) == {"boss@ksl.example", "desk@mdc.example", "shop@wsh.example"}
    ksl = mail["boss@ksl.example"]
    assert "2026-11" in ksl["Subject"] and "月次受電報告書" in ksl["Subject"]
    [attachment] = list(ksl.iter_attachments())
    assert attachment.get_filename() == "orikaeshi-KSL-2026-11.pdf"
    text = "".join(p.extract_text() for p in
                   PdfReader(io.BytesIO(attachment.get_content())).pages)
    assert "霞法律事務所" in text and "2026年11月" in text and "テスト電話代行" in text
    [(headers, body)] = target.requests
    assert headers[SIGNATURE_HEADER] == sign("s3cret", body)
    sent = json.loads(body)
    async with pool.acquire() as conn:
        expected = await monthly_report(conn, "KSL", "2026-11")
        attempts = await conn.fetch("SELECT a.ok FROM message_delivery_attempts a JOIN "
                                    "message_deliveries d ON d.id = a.delivery_id "
                                    "WHERE d.kind = 'monthly_report'")
    assert (sent["type"], sent["client"], sent["month"]) == ("monthly_report", "KSL", "2026-11")
    assert sent["report"]["calls"] == expected["calls"] == 3
    assert sent["report"]["missed"] == expected["missed"]
    assert [a["ok"] for a in attempts] == [True] * 4


async def test_pushes_immediately_as_a_digest_and_daily(
        pool, tmp_path, receiver, smtp) -> None:  # noqa: F811
    target, url = receiver
    mailbox, smtp_port = smtp
    await setup(pool, tmp_path, url)
    async with pool.acquire() as conn:
        taken = await take_message(conn, NewMessage(
            client="MDC", disposition="urgent", body="予約の変更", caller_number="0662220000",
            caller_name="佐藤花子"))
        assert taken["deliveries"] == 0  # MDC takes its messages in the digest
        await conn.execute("UPDATE messages SET created_at = $1",
                           datetime(2026, 11, 10, 10, 30, tzinfo=TOKYO))
    now = datetime(2026, 11, 10, 10, 31, tzinfo=TOKYO)
    clock = [now]
    worker = ReportWorker(pool, clock=lambda: clock[0])
    done = await worker.run_once()
    assert done["push_items"] == 5  # KSL missed + voicemail, MDC voicemail + message, WSH
    assert done["push_deliveries"] == 4  # KSL only (2 items x webhook + e-mail)
    assert await deliver(pool, smtp_port) == 4
    kinds = sorted(json.loads(body)["item"]["kind"] for _, body in target.requests)
    assert kinds == ["missed_call", "voicemail"]
    missed = next(json.loads(b)["item"] for _, b in target.requests
                  if json.loads(b)["item"]["kind"] == "missed_call")
    async with pool.acquire() as conn:
        call = await conn.fetchrow("SELECT * FROM calls WHERE pbx_id = 'p0'")
    assert missed["caller_number"] == call["caller_number"] and missed["outcome"] == "abandoned"
    # MDC's digest: 30 minutes after its first item, both items in one e-mail.
    clock[0] = now + timedelta(minutes=10)
    assert (await worker.run_once())["push_deliveries"] == 0
    clock[0] = datetime(2026, 11, 10, 10, 50, tzinfo=TOKYO)
    assert (await worker.run_once())["push_deliveries"] == 1
    assert await deliver(pool, smtp_port) == 1
    digest = next(m for m in mailbox.messages if m["To"] == "desk@mdc.example")
    assert "(2)" in digest["Subject"] and "予約の変更" in digest.get_content()
    # WSH: daily at 18:00 in Los Angeles (10:20 JST on 10 November is 17:20 on the 9th).
    clock[0] = datetime(2026, 11, 9, 17, 59, tzinfo=LOS_ANGELES)
    assert (await worker.run_once())["push_deliveries"] == 0
    clock[0] = datetime(2026, 11, 9, 18, 0, 5, tzinfo=LOS_ANGELES)
    assert (await worker.run_once())["push_deliveries"] == 1
    # Nothing is pushed twice.
    assert (await worker.run_once())["push_deliveries"] == 0
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM push_items WHERE sent_at IS NULL") == 0
        await conn.execute("UPDATE worker_marks SET value = 0 WHERE name LIKE 'push_%'")
    assert (await worker.run_once())["push_items"] == 0  # re-reading adds nothing


async def test_overdue_call_backs_are_reminded_once(
        pool, tmp_path, receiver, smtp) -> None:  # noqa: F811
    _, url = receiver
    await setup(pool, tmp_path, url)
    await CallbackWorker(pool, expire_grace_s=1e9).run_once()
    async with pool.acquire() as conn:
        owed = await conn.fetch("SELECT id, client, due_at FROM callback_obligations "
                                "WHERE state = 'open' ORDER BY due_at")
    assert {o["client"] for o in owed} == {"KSL", "MDC", "WSH"}
    clock = [owed[0]["due_at"] - timedelta(seconds=1)]
    worker = ReportWorker(pool, clock=lambda: clock[0])
    assert (await worker.run_once())["reminders"] == 0
    clock[0] = max(o["due_at"] for o in owed if o["client"] == "KSL") + timedelta(seconds=1)
    done = await worker.run_once()
    async with pool.acquire() as conn:
        reminders = await conn.fetch("SELECT client, channel, payload FROM message_deliveries "
                                     "WHERE kind = 'reminder' ORDER BY client, channel")
    ksl = [r for r in reminders if r["client"] == "KSL"]
    assert [r["channel"] for r in ksl] == ["email", "webhook"]
    assert len(json.loads(ksl[0]["payload"])["obligations"]) == \
        len([o for o in owed if o["client"] == "KSL"])
    assert done["reminders"] == len(reminders)
    assert (await worker.run_once())["reminders"] == 0


async def test_a_failed_delivery_is_an_alert(
        pool, tmp_path, receiver, smtp) -> None:  # noqa: F811
    target, url = receiver
    _, smtp_port = smtp
    await setup(pool, tmp_path, url)
    target.statuses = [500] * 5
    async with pool.acquire() as conn:
        await conn.execute("UPDATE clients SET report_emails = '{}', report_contacts = '{}'")
    await queue_monthly_reports(pool, datetime(2026, 12, 1, 9, 0, tzinfo=TOKYO))
    assert await deliver(pool, smtp_port, max_attempts=2) == 1
    async with pool.acquire() as conn:
        [alert] = await delivery_failures(conn)
        assert (alert["client"], alert["kind"], alert["state"], alert["attempts"]) == \
            ("KSL", "monthly_report", "pending", 1)
        assert alert["last_error"] == "HTTP 500" and alert["last_attempt_at"] is not None
        await conn.execute("UPDATE message_deliveries SET next_attempt_at = now()")
    assert await deliver(pool, smtp_port, max_attempts=2) == 1
    async with pool.acquire() as conn:
        [alert] = await delivery_failures(conn)
        assert (alert["state"], alert["attempts"]) == ("failed", 2)
        assert await delivery_failures(conn, clients=["MDC"]) == []
    # Every attempt went to the client's endpoint with the same delivery id.
    assert len({h["X-Orikaeshi-Delivery"] for h, _ in target.requests}) == 1
