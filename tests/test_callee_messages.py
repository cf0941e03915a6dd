"""Messages to callees by e-mail and fax follow the calling window and the do-not-call list
(issue 13): checked when written and again when they leave, held outside the callee's window,
never sent to a do-not-call number; a real PostgreSQL, a real local SMTP server, the
service's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app, database_ctx, web_ctx
from service.clients.store import load_document
from service.clock import SettableClock
from service.compliance.callee_messages import (
    CalleeMessageError,
    CalleeMessageWorker,
    NewCalleeMessage,
    submit,
)
from service.messages.delivery import SmtpSettings
from tests.test_compliance import LIMITED, TOKYO
from tests.test_message_delivery import Mailbox, smtp  # noqa: F401  (the fixture)
from tests.webapp import seed, web_config

GATEWAY = "{national}@fax.example.jp"


@pytest.fixture
def mailbox(smtp: tuple[Mailbox, int]) -> tuple[Mailbox, int]:  # noqa: F811
    return smtp


def message(callee: str = "090-1111-2222", **changes: str) -> NewCalleeMessage:
    fields = {"client": "KSL", "callee": callee, "channel": "email",
              "subject": "ご連絡のお願い", "body": "お電話をお待ちしております。",
              "requested_by": "op", "email": "tanaka@example.jp", **changes}
    return NewCalleeMessage(**fields)  # type: ignore[arg-type]


async def decisions(pool) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT path, allowed, rule, requested_by FROM "
                                "outbound_decisions ORDER BY id")
    return [tuple(r) for r in rows]


async def test_a_message_written_at_night_leaves_when_the_window_opens(pool, mailbox) -> None:
    box, port = mailbox
    async with pool.acquire() as conn:
        await load_document(conn, LIMITED, "limited.yaml")
        late = datetime(2026, 6, 10, 22, 10, tzinfo=TOKYO)
        taken = await submit(conn, message(), now=late)
    assert taken["state"] == "held" and taken["rule"] == "calling_hours"
    assert taken["not_before"] == datetime(2026, 6, 11, 8, tzinfo=TOKYO)
    clock = SettableClock(late + timedelta(minutes=5))
    worker = CalleeMessageWorker(pool, SmtpSettings(port=port, sender="desk@answer.example"),
                                 clock=clock)
    assert await worker.run_once() == 0 and box.messages == []
    clock.fixed = datetime(2026, 6, 11, 7, 59, 59, tzinfo=TOKYO)
    assert await worker.run_once() == 0 and box.messages == []
    clock.fixed = datetime(2026, 6, 11, 8, 0, 5, tzinfo=TOKYO)
    assert await worker.run_once() == 1
    [mail] = box.messages
    assert mail["To"] == "tanaka@example.jp" and mail["Subject"] == "ご連絡のお願い"
    assert "Kasumi Law Office" in mail["From"] and "desk@answer.example" in mail["From"]
    assert mail.get_content().strip() == "お電話をお待ちしております。"
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM callee_messages")
    assert (row["state"], row["attempts"], row["sent_at"]) == ("sent", 1, clock.fixed)
    # Both checks are evidence: refused for the hours when written, allowed when it left.
    assert await decisions(pool) == [("message", False, "calling_hours", "op"),
                                     ("message", True, "allowed", "op")]


async def test_the_window_is_checked_again_when_the_message_leaves(pool, mailbox) -> None:
    """Written at 20:59:50 (allowed), but the sender gets to it at 21:00:10: held."""
    box, port = mailbox
    async with pool.acquire() as conn:
        await load_document(conn, LIMITED, "limited.yaml")
        taken = await submit(conn, message(), now=datetime(2026, 6, 10, 20, 59, 50,
                                                           tzinfo=TOKYO))
    assert taken["state"] == "pending"
    clock = SettableClock(datetime(2026, 6, 10, 21, 0, 10, tzinfo=TOKYO))
    worker = CalleeMessageWorker(pool, SmtpSettings(port=port), clock=clock)
    assert await worker.run_once() == 1
    assert box.messages == []
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT state, not_before FROM callee_messages")
    assert tuple(row) == ("held", datetime(2026, 6, 11, 8, tzinfo=TOKYO))


async def test_a_do_not_call_number_gets_no_message_by_any_channel(pool, mailbox) -> None:
    box, port = mailbox
    async with pool.acquire() as conn:
        await load_document(conn, LIMITED, "limited.yaml")
        noon = datetime(2026, 6, 10, 12, tzinfo=TOKYO)
        by_mail = await submit(conn, message("090-0000-0003"), now=noon)
        by_fax = await submit(conn, message("090-0000-0003", channel="fax"), now=noon,
                              fax_gateway=GATEWAY)
    assert by_mail["state"] == by_fax["state"] == "refused"
    assert "workplace" in str(by_mail["last_reason"])
    worker = CalleeMessageWorker(pool, SmtpSettings(port=port), fax_gateway=GATEWAY,
                                 clock=SettableClock(noon + timedelta(days=1)))
    assert await worker.run_once() == 0
    assert box.messages == []
    assert [d[2] for d in await decisions(pool)] == ["do_not_call", "do_not_call"]


async def test_a_fax_goes_to_the_gateway_in_the_fax_numbers_time(pool, mailbox) -> None:
    """A fax to New York written at 10:00 Tokyo (21:00 in New York, EDT) is held until 08:00
    New York time, 12:00 UTC, then mailed to the gateway with the number as Japan dials it."""
    box, port = mailbox
    async with pool.acquire() as conn:
        await load_document(conn, LIMITED, "limited.yaml")
        at = datetime(2026, 6, 10, 10, tzinfo=TOKYO)
        taken = await submit(conn, message("+1 212 555 1234", channel="fax", email=""),
                             now=at, fax_gateway=GATEWAY)
        assert taken["state"] == "held" and taken["callee_zone"] == "America/New_York"
        assert taken["not_before"] == datetime(2026, 6, 10, 12, tzinfo=UTC)
        with pytest.raises(CalleeMessageError, match="no fax gateway"):
            await submit(conn, message(channel="fax"), now=at)
        with pytest.raises(CalleeMessageError, match="e-mail address"):
            await submit(conn, message(email="not an address\r\nBcc: x@y.z"), now=at)
        with pytest.raises(CalleeMessageError, match="one line"):
            await submit(conn, message(subject="a\r\nBcc: x@y.z"), now=at)
    worker = CalleeMessageWorker(pool, SmtpSettings(port=port), fax_gateway=GATEWAY,
                                 clock=SettableClock(datetime(2026, 6, 10, 12, 0, 1,
                                                              tzinfo=UTC)))
    assert await worker.run_once() == 1
    [fax] = box.messages
    assert fax["To"] == "01012125551234@fax.example.jp"


async def test_a_refused_send_is_retried_inside_the_window_only(pool, mailbox) -> None:
    box, port = mailbox
    box.refuse = True
    async with pool.acquire() as conn:
        await load_document(conn, LIMITED, "limited.yaml")
        evening = datetime(2026, 6, 10, 20, 59, 40, tzinfo=TOKYO)
        await submit(conn, message(), now=evening)
    clock = SettableClock(evening)
    worker = CalleeMessageWorker(pool, SmtpSettings(port=port), clock=clock)
    assert await worker.run_once() == 1
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM callee_messages")
    assert (row["state"], row["attempts"]) == ("pending", 1)
    assert "451" in row["last_reason"] and row["not_before"] == evening + timedelta(seconds=30)
    box.refuse = False
    clock.fixed = row["not_before"]  # 21:00:10: the retry falls outside the window
    assert await worker.run_once() == 1 and box.messages == []
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM callee_messages")
    assert (row["state"], row["not_before"]) == ("held", datetime(2026, 6, 11, 8, tzinfo=TOKYO))
    clock.fixed = row["not_before"]
    assert await worker.run_once() == 1 and len(box.messages) == 1
    # The same Message-ID on every attempt, so a receiver can tell a repeat.
    assert box.messages[0]["Message-ID"] == f"<callee-message-{row['id']}@orikaeshi>"


@pytest.fixture
async def api(db_url: str, pool, tmp_path: Path
              ) -> AsyncIterator[tuple[TestClient, dict[str, str], dict[str, list[int]]]]:
    seeded = await seed(pool)
    async with pool.acquire() as conn:
        await load_document(conn, LIMITED, "limited.yaml")
    late = datetime.combine(datetime(2026, 6, 10).date(), time(22, 30), tzinfo=TOKYO)
    app = create_app(web_config(tmp_path, db_url, fax_gateway=GATEWAY),
                     [database_ctx, web_ctx], clock=SettableClock(late))
    async with TestClient(TestServer(app)) as client:
        yield client, seeded.tokens, seeded.obligations


async def test_api_holds_refuses_and_cancels(api, pool) -> None:
    client, tokens, obligations = api
    op = {"Authorization": f"Bearer {tokens['op']}"}
    ob = obligations["KSL"][1]
    response = await client.post("/api/callee-messages", headers=op, json={
        "obligation": ob, "channel": "email", "email": "callee@example.jp",
        "subject": "折り返しのお願い", "body": "本日お電話いただきました件でご連絡します。"})
    assert response.status == 202
    held = await response.json()
    assert held["state"] == "held" and held["callee_e164"] == "+819000000001"
    assert datetime.fromisoformat(held["not_before"]) == datetime(2026, 6, 11, 8, tzinfo=TOKYO)
    # The do-not-call callee of the same client: 409 with the reason, kept as evidence.
    dnc = obligations["KSL"][3]
    response = await client.post("/api/callee-messages", headers=op, json={
        "obligation": dnc, "channel": "fax", "subject": "ご連絡", "body": "…"})
    assert response.status == 409
    assert "workplace" in (await response.json())["error"]
    # Client users do not send messages to callees; another client's call back is not found.
    client_user = {"Authorization": f"Bearer {tokens['ksl']}"}
    response = await client.post("/api/callee-messages", headers=client_user, json={
        "obligation": ob, "channel": "email", "email": "a@b.jp", "subject": "x", "body": "y"})
    assert response.status == 403
    response = await client.post("/api/callee-messages", headers=op, json={
        "obligation": ob, "channel": "email", "email": "bad", "subject": "x", "body": "y"})
    assert response.status == 400 and "e-mail address" in (await response.json())["error"]
    listed = await (await client.get("/api/callee-messages?client=KSL", headers=op)).json()
    assert [m["state"] for m in listed["items"]] == ["refused", "held"]
    response = await client.post(f"/api/callee-messages/{held['id']}/cancel", headers=op)
    assert response.status == 200
    response = await client.post(f"/api/callee-messages/{held['id']}/cancel", headers=op)
    assert response.status == 409


def test_docstring_examples() -> None:
    """next_step (held, refused, send now) and fax_address, as documented."""
    import doctest

    import service.compliance.callee_messages as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
