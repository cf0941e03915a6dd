"""The worklist's 予約 / Schedule control, in Debian's Chromium driven by Playwright, in Japanese
and English: the time typed in the client's time zone (named beside the input), prefilled
with when the call back opens when the policy forbids now; a time the policy forbids refused
with the reason and the earliest allowed time (one click to take it); a time in the past
refused; the scheduled call back listed in its row with its time and cancelled from there.
Each row's times in its own client's zone (one client moved to New York for the test)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.appkeys import POOL
from tests.test_browser import CHROMIUM, browser  # noqa: F401  (the fixture)
from tests.test_browser_pages import check_page, open_as, serving
from tests.webapp import seed

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(),
                                 reason="no Chromium")]

NIGHT = datetime(2026, 6, 9, 18, 22, tzinfo=UTC)  # 03:22 on 06-10 in Tokyo

WORDS = {
    "ja": {"tokyo": "日本標準時", "ny": "米国東部夏時間", "button": "予約",
           "label": "折り返し日時（{z}）",
           "hours": "その時刻には発信できません: 発信可能時間外です。"
                    "最も早くて 06/10 08:00（日本標準時）です。",
           "use": "06/10 08:00 にする", "done": "06/10 08:00（日本標準時）に予約しました。",
           "listed": "予約 06/10 08:00（日本標準時）・内線 301",
           "cancelled": "予約を取消しました。", "past": "過去の日時は予約できません。",
           "ny_done": "06/10 19:30（米国東部夏時間）に予約しました。"},
    "en": {"tokyo": "Japan Standard Time", "ny": "Eastern Daylight Time",
           "button": "Schedule", "label": "Call back at ({z})",
           "hours": "Not allowed at that time: outside the calling hours. The earliest is "
                    "10/06, 08:00 (Japan Standard Time).",
           "use": "Use 10/06, 08:00", "done": "Scheduled for 10/06, 08:00 (Japan Standard Time).",
           "listed": "Scheduled 10/06, 08:00 (Japan Standard Time), phone 301",
           "cancelled": "Schedule cancelled.", "past": "That time is in the past.",
           "ny_done": "Scheduled for 10/06, 19:30 (Eastern Daylight Time)."},
}


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_schedule_a_call_back_from_the_worklist(browser, pool, db_url, tmp_path,  # noqa: F811
                                                      lang: str) -> None:
    words = WORDS[lang]
    seeded = await seed(pool)
    async with pool.acquire() as conn:  # MDC works from New York (its people read NY time)
        await conn.execute("UPDATE clients SET timezone = 'America/New_York' "
                           "WHERE code = 'MDC'")
    async with serving(db_url, tmp_path, "answered_agent_hangup", speed=0,
                       clock=NIGHT) as app:
        app.go()
        page = await open_as(browser, app.base, "sup", lang, "1366x768")
        await page.goto(f"{app.base}/worklist")
        await page.wait_for_selector("#obligations tr[data-id]")
        ob = seeded.obligations["KSL"][0]
        row = page.locator(f"#obligations tr[data-id='{ob}']")
        button = row.locator("button.schedule")
        assert await button.inner_text() == words["button"]
        await button.click()
        # Not allowed now (03:22 in Tokyo): prefilled with when it opens, in the client's zone.
        field = page.locator(f"#at-{ob}")
        assert await field.input_value() == "2026-06-10T08:00"
        label = await row.locator(f"label[for='at-{ob}']").inner_text()
        assert label == words["label"].format(z=words["tokyo"])
        await check_page(page, lang)
        # 05:00 is outside the hours: refused with the reason and the earliest time.
        await field.fill("2026-06-10T05:00")
        await row.locator("form.schedule button[type=submit]").click()
        result = row.locator(".result")
        await result.wait_for(timeout=10_000)
        assert await result.inner_text() == words["hours"]
        use = row.locator("button.use-time")
        assert await use.inner_text() == words["use"]
        await use.click()
        assert await field.input_value() == "2026-06-10T08:00"
        await row.locator("form.schedule button[type=submit]").click()
        await page.wait_for_function(
            "([sel, text]) => document.querySelector(sel)?.innerText === text",
            arg=[f"tr[data-id='{ob}'] .result", words["done"]], timeout=10_000)
        listed = row.locator("ul.scheduled li")
        await listed.wait_for(timeout=10_000)
        assert words["listed"] in await listed.inner_text()
        async with app.app[POOL].acquire() as conn:
            stored = await conn.fetchrow(
                "SELECT id, run_at, state, operator, requested_by FROM scheduled_callbacks")
        assert (stored["run_at"], stored["state"], stored["operator"], stored["requested_by"]) \
            == (datetime(2026, 6, 9, 23, 0, tzinfo=UTC), "pending", "301", "sup")
        await check_page(page, lang)
        # Cancelled from the row: gone from the list and from the scheduler's queue.
        await listed.locator("button.cancel-scheduled").click()
        await page.wait_for_selector(f"tr[data-id='{ob}'] ul.scheduled li", state="detached",
                                     timeout=10_000)
        assert await result.inner_text() == words["cancelled"]
        async with app.app[POOL].acquire() as conn:
            assert await conn.fetchval("SELECT state FROM scheduled_callbacks WHERE id = $1",
                                       stored["id"]) == "cancelled"
        # A time in the past is refused.
        await field.fill("2026-06-09T01:00")
        await row.locator("form.schedule button[type=submit]").click()
        await page.wait_for_function(
            "([sel, text]) => document.querySelector(sel)?.innerText === text",
            arg=[f"tr[data-id='{ob}'] .result", words["past"]], timeout=10_000)

        # A New York client's row: read and typed in New York time (EDT, -04:00).
        ny = seeded.obligations["MDC"][0]
        ny_row = page.locator(f"#obligations tr[data-id='{ny}']")
        await ny_row.locator("button.schedule").click()
        label = await ny_row.locator(f"label[for='at-{ny}']").inner_text()
        assert label == words["label"].format(z=words["ny"])
        # 08:00 on 06-10 in Tokyo is 19:00 on 06-09 in New York.
        assert await page.locator(f"#at-{ny}").input_value() == "2026-06-09T19:00"
        await page.locator(f"#at-{ny}").fill("2026-06-10T19:30")
        await ny_row.locator("form.schedule button[type=submit]").click()
        await page.wait_for_function(
            "([sel, text]) => document.querySelector(sel)?.innerText === text",
            arg=[f"tr[data-id='{ny}'] .result", words["ny_done"]], timeout=10_000)
        async with app.app[POOL].acquire() as conn:
            assert await conn.fetchval(
                "SELECT run_at FROM scheduled_callbacks WHERE obligation_id = $1", ny) == \
                datetime(2026, 6, 10, 23, 30, tzinfo=UTC)
        await check_page(page, lang)
        assert page.errors == []
