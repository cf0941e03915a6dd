"""The wallboard's banner shows continuous reconciliation's alerts (from GET /api/status), in
Japanese and English: a difference left past the settle window, and the reconciler stopped
reading.  Debian's Chromium driven by Playwright, against the running service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web

from service.app import PIPELINES
from service.clock import SettableClock
from service.status import RECONCILE_WORKER
from tests.live_asterisk import free_port
from tests.test_browser import CHROMIUM, browser  # noqa: F401  (the fixture)
from tests.test_browser_pages import open_as
from tests.test_reconcile_health import T0, reconciling_app
from tests.waiting import eventually
from tests.webapp import seed

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
