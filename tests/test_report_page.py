"""The monthly report page (/report) in a real headless Chromium against the running web app
over the replayed ledger: staff see every client on one page, a client user only its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from service.app import create_app, database_ctx, web_ctx
from service.store import web_sql
from service.web.auth import hash_password
from tests.live_asterisk import free_port
from tests.test_browser import CHROMIUM, browser  # noqa: F401  (the fixture)
from tests.test_reports import build_ledger
from tests.webapp import PASSWORD, web_config

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium")]


async def serve(pool: Any, db_url: str, tmp_path: Path) -> tuple[web.AppRunner, str]:
    await build_ledger(pool, tmp_path)
    async with pool.acquire() as conn:
        for name, role, client in (("sup", "supervisor", None), ("ksl", "client", "KSL")):
            await web_sql.create_user(conn, name, hash_password(PASSWORD), role, client=client)
    runner = web.AppRunner(create_app(web_config(tmp_path, db_url), [database_ctx, web_ctx]))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def logged_in_page(browser: Any, base: str, username: str) -> Any:  # noqa: F811
    page = await browser.new_page()
    # The API login sets the session cookie in the browser context the page uses.
    response = await page.request.post(f"{base}/api/login",
                                       data={"username": username, "password": PASSWORD})
    assert response.status == 200
    return page


async def test_supervisor_sees_every_client_then_one(browser, pool, db_url,  # noqa: F811
                                                     tmp_path) -> None:
    runner, base = await serve(pool, db_url, tmp_path)
    try:
        page = await logged_in_page(browser, base, "sup")
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{base}/report?month=2026-11")
        await page.wait_for_function("document.body.dataset.loaded === 'all'", timeout=20_000)
        rows = page.locator("#summary tbody tr")
        assert [await r.get_attribute("data-client") for r in await rows.all()] == \
            ["KSL", "MDC", "WSH"]
        api = await page.request.get(f"{base}/api/reports/monthly?month=2026-11")
        reports = {r["client"]: r for r in json.loads(await api.text())["items"]}
        ksl_cells = [await c.inner_text() for c in await rows.nth(0).locator("td").all()]
        assert ksl_cells[1] == "霞法律事務所"
        assert ksl_cells[2] == f"{reports['KSL']['calls']:,}"
        assert ksl_cells[10] == f"{reports['KSL']['plan']['overage_amount']:,}"
        # One client's report: figures, charts and downloads.
        await rows.nth(0).locator("a").click()
        await page.wait_for_function("document.body.dataset.loaded === 'KSL'", timeout=20_000)
        assert "霞法律事務所 (KSL)" in await page.inner_text("#client-name")
        figures = await page.inner_text("#figures")
        assert "サービスレベル（%）" in figures and "月末時点で未対応" in figures
        for chart in ("#chart-by-day", "#chart-by-hour"):
            await page.wait_for_function(
                f"document.querySelector('{chart}').complete && "
                f"document.querySelector('{chart}').naturalWidth > 0", timeout=20_000)
        href = await page.get_attribute("#download-pdf", "href")
        pdf = await page.request.get(f"{base}{href}")
        assert pdf.status == 200 and (await pdf.body()).startswith(b"%PDF")
        assert errors == []
    finally:
        await runner.cleanup()


async def test_client_user_sees_only_its_own_report(browser, pool, db_url,  # noqa: F811
                                                    tmp_path) -> None:
    runner, base = await serve(pool, db_url, tmp_path)
    try:
        page = await logged_in_page(browser, base, "ksl")
        # Asking for another client's report in the address gives the user's own.
        await page.goto(f"{base}/report?month=2026-11&client=MDC&lang=en")
        await page.wait_for_function("document.body.dataset.loaded === 'KSL'", timeout=20_000)
        options = await page.locator("#client option").all_inner_texts()
        assert options == ["KSL Kasumi Law Office"]
        assert "Kasumi Law Office (KSL)" in await page.inner_text("#client-name")
        assert "Service level (%)" in await page.inner_text("#figures")
        assert "MDC" not in await page.inner_text("main")
        other = await page.request.get(f"{base}/api/reports/monthly?month=2026-11&client=MDC")
        assert other.status == 404
    finally:
        await runner.cleanup()
