"""The wallboard's banner shows continuous reconciliation's alerts (from GET /api/status), in
Japanese and English: a difference left past the settle window, and the reconciler stopped
reading; and a difference is resolved on the /reconcile page.  Debian's Chromium driven by
Playwright, against the running service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web

from service.app import PIPELINES, create_app, database_ctx, web_ctx
from service.clock import SettableClock
from service.status import RECONCILE_WORKER
from tests.live_asterisk import free_port
from tests.test_browser import CHROMIUM, browser  # noqa: F401  (the fixture)
from tests.test_browser_pages import open_as
from tests.test_reconcile_health import T0, reconciling_app
from tests.waiting import eventually
from tests.webapp import seed, web_config

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium")]

BANNERS = {
    "ja": ["pbx1 の台帳と Asterisk 記録の差異が 1 件、11/22 12:00 から残っています。"
           "照合ページで確認してください。",
           "pbx1 の Asterisk 記録との照合が止まっています（最後の成功 11/22 12:00）。"
           "不明な通話が確定されません。"],
    "en": ["1 difference(s) between the ledger and Asterisk's records for pbx1 are left "
           "since 22/11, 12:00: see the reconcile page.",
           "Reconciliation with Asterisk's records for pbx1 stopped reading (last success "
           "22/11, 12:00): unknown calls are not being settled."],
}


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_reconcile_alerts_on_the_wallboard_banner(browser, pool, db_url,  # noqa: F811
                                                        tmp_path, lang: str) -> None:
    await seed(pool)
    clock = SettableClock(T0)  # 12:00 in Tokyo
    app, ami, _, _ = await reconciling_app(pool, db_url, tmp_path, clock)
    runner = web.AppRunner(app)
    await runner.setup()
    web_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", web_port).start()
    try:
        link = app[PIPELINES]["pbx1"].client
        await eventually(lambda: link.logged_in.is_set(), 10, what="the AMI login")
        worker = app[RECONCILE_WORKER]
        await eventually(lambda: worker.reading is not None, 20, what="the first pass")
        # Past the settle window, and three passes missed: both alerts.
        clock.fixed = T0 + timedelta(hours=4)
        page = await open_as(browser, f"http://127.0.0.1:{web_port}", "sup", lang)
        await page.goto(f"http://127.0.0.1:{web_port}/wallboard")
        banner = page.locator("#banner")
        await banner.wait_for(timeout=15_000)
        lines = [line.strip() for line in (await banner.inner_text()).splitlines()
                 if line.strip()]
        assert sorted(lines) == sorted(BANNERS[lang])
        assert page.errors == []
    finally:
        await runner.cleanup()
        await ami.close()


async def test_a_difference_is_resolved_on_the_reconcile_page(browser, pool, db_url,  # noqa: F811
                                                              tmp_path) -> None:
    """The supervisor's /reconcile page: a difference's times in its call's client's zone
    (New York here), resolved with what was done; shown resolved by whom."""
    seeded = await seed(pool)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE clients SET timezone = 'America/New_York' WHERE code = 'MDC'")
        await conn.execute(
            """INSERT INTO reconcile_differences (pbx_id, kind, linkedid, detail, started_at,
                   first_seen) VALUES ('pbx1', 'missing_in_cdr', $1, 'no CDR row', $2, $2)""",
            seeded.linkedids["MDC"], T0)
    app = create_app(web_config(tmp_path, db_url), [database_ctx, web_ctx])
    runner = web.AppRunner(app)
    await runner.setup()
    web_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", web_port).start()
    try:
        base = f"http://127.0.0.1:{web_port}"
        page = await open_as(browser, base, "sup", "ja")
        await page.goto(f"{base}/reconcile")
        row = page.locator("#differences tbody tr").first
        await row.locator("form.resolve").wait_for(timeout=10_000)
        cells = await row.locator("td").all_inner_texts()
        # 2026-11-22 03:00 UTC is 22:00 the day before in New York (EST).
        assert cells[1] == "MDC" and cells[4].startswith("2026/11/21 22:00:00")
        await row.locator("input").fill("PBX の再起動で CDR が失われた")
        await row.locator("button").click()
        await page.wait_for_selector("#differences .resolved", timeout=10_000)
        text = await page.inner_text("#differences .resolved")
        assert text.startswith("解決済み resolved: sup ")
        assert text.endswith("PBX の再起動で CDR が失われた")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT resolved_by FROM reconcile_differences") == "sup"
        assert page.errors == []
    finally:
        await runner.cleanup()
