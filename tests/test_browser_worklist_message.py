"""The worklist's メール・FAX control, in Debian's Chromium driven by Playwright, in Japanese
and English: a message written at 03:22 in the callee's time is held by the server and the row
says when it leaves (in the client's zone); one to a do-not-call number is refused with the
reason; a fax without a fax gateway is refused with what to do.  What the page shows is what
the database holds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.appkeys import POOL
from service.clients.store import load_document
from tests.test_browser import CHROMIUM, browser  # noqa: F401  (the fixture)
from tests.test_browser_pages import check_page, open_as, serving
from tests.test_compliance import LIMITED
from tests.webapp import seed

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(),
                                 reason="no Chromium")]

NIGHT = datetime(2026, 6, 9, 18, 22, tzinfo=UTC)  # 03:22 on 06-10 in Tokyo

WORDS = {
    "ja": {"button": "メール・FAX",
           "held": "相手先の発信可能時間外のため保留し、06/10 08:00（日本標準時）に送信します。",
           "dnc": "送信できません: 発信禁止リスト。",
           "fax": "FAXの送信先が設定されていません。管理者に連絡してください。"},
    "en": {"button": "E-mail / fax",
           "held": "Outside the callee's hours: held, it leaves at 10/06, 08:00 "
                   "(Japan Standard Time).",
           "dnc": "Not sent: on the do-not-call list.",
           "fax": "No fax gateway is configured: ask the admin."},
}


async def write(page, ob: int, *, channel: str = "email", address: str = "") -> str:  # type: ignore[no-untyped-def]
    row = page.locator(f"#obligations tr[data-id='{ob}']")
    await row.locator("button.message").click()
    await page.select_option(f"#channel-{ob}", channel)
    if channel == "email":
        await page.fill(f"#email-{ob}", address)
    await page.fill(f"#subject-{ob}", "ご連絡のお願い")
    await page.fill(f"#body-{ob}", "お電話をお待ちしております。\n霞法律事務所")
    await row.locator("form.message button[type=submit]").click()
    result = row.locator(".result")
    await result.wait_for(timeout=10_000)
    return str(await result.inner_text())


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_message_a_callee_from_the_worklist(browser, pool, db_url, tmp_path,  # noqa: F811
                                                  lang: str) -> None:
    words = WORDS[lang]
    seeded = await seed(pool)
    async with pool.acquire() as conn:  # KSL's rules with a do-not-call entry (+819000000003)
        await load_document(conn, LIMITED, "limited.yaml")
    async with serving(db_url, tmp_path, "answered_agent_hangup", speed=0,
                       clock=NIGHT) as app:
        app.go()
        page = await open_as(browser, app.base, "sup", lang, "1366x768")
        await page.goto(f"{app.base}/worklist")
        await page.wait_for_selector("#obligations tr[data-id]")
        first, _, second, dnc = seeded.obligations["KSL"][:4]
        button = page.locator(f"#obligations tr[data-id='{first}'] button.message")
        assert await button.inner_text() == words["button"]
        assert await write(page, first, address="tanaka@example.jp") == words["held"]
        await check_page(page, lang)
        async with app.app[POOL].acquire() as conn:
            held = await conn.fetchrow("SELECT * FROM callee_messages")
        assert (held["state"], held["target"], held["requested_by"], held["callee_e164"],
                held["not_before"], held["body"]) == (
            "held", "tanaka@example.jp", "sup", "+819000000000",
            datetime(2026, 6, 9, 23, 0, tzinfo=UTC), "お電話をお待ちしております。\n霞法律事務所")
        assert await write(page, dnc, address="x@example.jp") == words["dnc"]
        assert await write(page, second, channel="fax") == words["fax"]
        async with app.app[POOL].acquire() as conn:
            states = await conn.fetch("SELECT callee_e164, state FROM callee_messages ORDER BY id")
        # The refusal is kept as evidence; the fax without a gateway was never taken.
        assert [tuple(s) for s in states] == [("+819000000000", "held"),
                                              ("+819000000003", "refused")]
        await check_page(page, lang)
        assert page.errors == []
