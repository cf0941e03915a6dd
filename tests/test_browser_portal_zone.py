"""The client's portal reads its days in the client's own zone, in Debian's Chromium driven by
Playwright: a New York client picking 9 June sees its call of 22:00 on 9 June New York time
(11:00 on the 10th in Tokyo), shown as 06/09 22:00, and not a call of 10 June; the CSV link
asks for the same New York day."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.test_browser import CHROMIUM, browser  # noqa: F401  (the fixture)
from tests.test_browser_pages import check_page, open_as, serving
from tests.webapp import seed

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(),
                                 reason="no Chromium")]

EVENING_NY = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)    # 06-09 22:00 EDT, 06-10 11:00 JST
NEXT_DAY_NY = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # 06-10 10:00 EDT, 06-10 23:00 JST


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_portal_days_are_the_clients_days(browser, pool, db_url, tmp_path,  # noqa: F811
                                                lang: str) -> None:
    await seed(pool)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE clients SET timezone = 'America/New_York' WHERE code = 'MDC'")
        ids = [await conn.fetchval(
            """INSERT INTO calls (pbx_id, linkedid, direction, client, did, caller_number,
                   caller_e164, uniqueids, started_at, answered_at, ended_at, outcome, wait_s,
                   talk_s, answered_by)
               VALUES ('pbx1', $1, 'inbound', 'MDC', '0663330001', '09022223333',
                       '+819022223333', $2, $3::timestamptz, $3::timestamptz,
                       $3::timestamptz + interval '1 minute', 'answered', 2,
                       60, '201') RETURNING id""", f"ny.{i}", [f"ny.{i}"], at)
            for i, at in enumerate((EVENING_NY, NEXT_DAY_NY))]
    async with serving(db_url, tmp_path, None, closed_pbx=True) as app:
        page = await open_as(browser, app.base, "mdc", lang, "1366x768")
        await page.wait_for_selector("#calls-table")
        await page.fill("#from", "2026-06-09")
        await page.fill("#to", "2026-06-09")
        await page.wait_for_function(
            "(ids) => [...document.querySelectorAll('#calls-table tr[data-id]')]"
            ".map((tr) => +tr.dataset.id).join() === String(ids[0])", arg=ids, timeout=10_000)
        shown = await page.inner_text(f"#calls-table tr[data-id='{ids[0]}'] td")
        assert shown == ("06/09 22:00" if lang == "ja" else "09/06, 22:00")
        href = await page.get_attribute("#export", "href")
        query = parse_qs(urlsplit(href or "").query)
        assert (query["from"], query["to"]) == (["2026-06-09T00:00:00-04:00"],
                                                ["2026-06-10T00:00:00-04:00"])
        await check_page(page, lang)
        assert page.errors == []
