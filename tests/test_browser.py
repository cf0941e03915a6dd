"""The pages in a real headless Chromium (Debian's ``chromium``, driven by Playwright), against
the running service fed by replaying recordings of ../shared/asterisk-traces."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from service.app import create_app, database_ctx, ledger_ctx, web_ctx
from service.appkeys import POOL
from service.config import PbxConfig
from service.replay.recording import load_recording
from service.replay.server import ReplayServer
from tests.conftest import trace_dir
from tests.live_asterisk import free_port
from tests.webapp import PASSWORD, seed, web_config

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium")]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    profile = tempfile.mkdtemp(prefix="orikaeshi-chromium-")
    async with async_playwright() as playwright:
        # bypass_csp: the pages' Content-Security-Policy would also stop injected script from
        # running, which would hide an escaping bug; the tests check escaping itself (and the
        # header separately).
        context = await playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=ARGS, headless=True,
            locale="en-GB", bypass_csp=True)
        try:
            yield context
        finally:
            await context.close()
    shutil.rmtree(profile, ignore_errors=True)


class Running:
    def __init__(self, base: str, server: ReplayServer, app: web.Application) -> None:
        self.base, self.server, self.app = base, server, app

    def go(self) -> None:
        assert self.server.gate is not None
        self.server.gate.set()


async def start(db_url: str, tmp_path: Path, recording: str, *, speed: float) -> tuple[
        web.AppRunner, Running]:
    # The recording waits until the test opened its page (``running.go()``).
    server = ReplayServer(load_recording(trace_dir(recording) / "ami.jsonl"), speed=speed,
                          rebase_to=time.time(), gate=asyncio.Event())
    port = await server.start()
    config = web_config(tmp_path, db_url, ami_lock=False, pbxs=(PbxConfig(
        pbx_id="pbx1", ami_port=port, ami_username="u", ami_secret="p",
        phone_channel="Local/{ext}@opphone/n"),))
    config = dataclasses.replace(config, ledger_flush_interval_s=0.05)
    app = create_app(config, [database_ctx, web_ctx, ledger_ctx])
    runner = web.AppRunner(app)
    await runner.setup()
    web_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", web_port).start()
    return runner, Running(f"http://127.0.0.1:{web_port}", server, app)


HOME = {"sup": "/wallboard", "op": "/operator", "ksl": "/portal", "mdc": "/portal"}


async def login(page: Any, base: str, username: str) -> None:
    """Log in on the login page; land where that role's home page is."""
    await page.goto(f"{base}/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#submit")
    await page.wait_for_url(f"{base}{HOME[username]}", timeout=15_000)


async def test_supervisor_sees_a_live_call_end_and_whispers(browser, pool, db_url,
                                                           tmp_path) -> None:
    await seed(pool)
    runner, running = await start(db_url, tmp_path, "supervisor_whisper_chanspy", speed=1.5)
    try:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await login(page, running.base, "sup")
        assert page.url.endswith("/wallboard")
        running.go()
        # The call appears live, answered by operator 201; chosen, it offers the spy buttons.
        talking = page.locator("#live button.callrow[data-operator='201']")
        await talking.wait_for(timeout=30_000)
        assert await page.locator("#live [data-linkedid]", has_text="Kimura").count() == 1
        await talking.click()
        await page.locator("#spy button[data-mode=whisper]").click()
        await page.wait_for_function(
            "document.getElementById('status').textContent.includes('is ringing')",
            timeout=10_000)
        originate = [a for a in running.server.actions if a.get("Action") == "Originate"]
        assert len(originate) == 1
        assert originate[0]["Channel"] == "Local/301@opphone/n"
        assert originate[0]["Application"] == "ChanSpy"
        assert originate[0]["Data"] == "Local/201@operators-00000001;1,qwdE"
        async with running.app[POOL].acquire() as conn:
            audit = await conn.fetchrow("SELECT * FROM spy_audit")
        assert (audit["supervisor"], audit["operator"], audit["mode"], audit["result"]) == \
            ("sup", "201", "whisper", "originated")
        # The call ends: it leaves the live list and is counted as answered today.
        await page.wait_for_function(
            "!document.querySelector('#live tr[data-linkedid]')", timeout=40_000)
        await page.wait_for_function(
            "document.querySelector('#today .client[data-client=KSL] .answered')"
            ".textContent === '2'", timeout=15_000)  # seeded one + this one
        assert errors == []
    finally:
        await runner.cleanup()
        await running.server.close()


async def test_escalation_alert_appears(browser, pool, db_url, tmp_path) -> None:
    await seed(pool)
    runner, running = await start(db_url, tmp_path, "repeat_caller_escalated", speed=3)
    try:
        page = await browser.new_page()
        await login(page, running.base, "sup")
        running.go()
        alert = page.locator("#alerts .alert[data-kind=repeat_caller]")
        await alert.wait_for(timeout=40_000)
        assert "Matsumoto" in await alert.inner_text()
    finally:
        await runner.cleanup()
        await running.server.close()


async def test_client_user_cannot_see_another_clients_calls(browser, pool, db_url,
                                                            tmp_path) -> None:
    hostile = '<img src=x onerror="window.__pwned=1">\r\nInjected: yes'
    seeded = await seed(pool, caller_name=hostile)
    runner, running = await start(db_url, tmp_path, "hangup_during_greeting", speed=0)
    try:
        page = await browser.new_page()
        running.go()
        await login(page, running.base, "mdc")
        assert page.url.endswith("/portal")
        assert [await page.inner_text(h) for h in ("#h-calls", "#l-missed", "#export")] == \
            ["Calls", "Missed calls only", "Download CSV"]
        await page.locator("#calls tr[data-id]").first.wait_for(timeout=10_000)
        # Only MDC's own calls, and the hostile name shown as text, never run as HTML.
        ids = await page.locator("#calls tr[data-id]").evaluate_all(
            "rows => rows.map(r => Number(r.dataset.id))")
        assert seeded.calls["MDC"] in ids and seeded.calls["KSL"] not in ids
        name = page.locator("#calls .caller-name", has_text="onerror").first
        assert "<img" in await name.inner_text()
        assert await page.evaluate("window.__pwned === undefined")
        assert await page.locator("img").count() == 0
        # Every URL a curious user might try.
        ksl = seeded.calls["KSL"]
        for path, expected in ((f"/api/calls/{ksl}", 404), ("/api/clients/KSL", 404),
                               (f"/api/obligations/{seeded.obligations['KSL'][0]}/done", 404),
                               ("/api/alerts", 403), ("/api/users", 403),
                               (f"/api/screen?pbx=pbx1&linkedid={seeded.linkedids['KSL']}",
                                403)):
            method = "POST" if path.endswith("/done") else "GET"
            status = await page.evaluate(
                "async ([p, m]) => { const r = await fetch(p, {method: m, headers: "
                "{'X-CSRF-Token': sessionStorage.getItem('csrf'), 'Content-Type': "
                "'application/json'}, body: m === 'POST' ? '{}' : undefined}); return r.status; }",
                [path, method])
            assert status == expected, path
        csp = await page.evaluate(
            "async () => (await fetch('/portal')).headers.get('content-security-policy')")
        assert "script-src 'self'" in csp
        listing = await page.evaluate(
            "async () => (await (await fetch('/api/calls?client=KSL')).json()).items.length")
        assert listing == 0
        csv = await page.evaluate("async () => await (await fetch('/api/calls.csv')).text()")
        assert "MDC" in csv and "KSL" not in csv
        # Mark a call back done from the portal: reported, by this client user.
        done = page.locator("#obligations tr[data-id] button").first
        await done.click()
        await asyncio.sleep(0.5)
        async with running.app[POOL].acquire() as conn:
            states = await conn.fetch("SELECT client, fulfilment, fulfilled_by FROM "
                                      "callback_obligations WHERE state = 'fulfilled'")
        assert [tuple(r) for r in states] == [("MDC", "reported", "mdc")]
    finally:
        await runner.cleanup()
        await running.server.close()


async def test_operator_gets_a_screen_pop_and_takes_a_message(browser, pool, db_url,
                                                              tmp_path) -> None:
    await seed(pool)
    runner, running = await start(db_url, tmp_path, "answered_agent_hangup", speed=2)
    try:
        page = await browser.new_page()
        await page.add_init_script("localStorage.setItem('lang', 'ja')")
        await login(page, running.base, "op")
        assert page.url.endswith("/operator")
        assert await page.inner_text("#no-call") == "着信はありません。"
        await asyncio.sleep(1.0)  # the page's live stream is open
        running.go()
        await page.locator("#client-name").wait_for(timeout=30_000)
        assert [await page.inner_text(h) for h in ("#h-message", "#h-history")] \
            == ["伝言", "この発信者の履歴"]
        assert await page.inner_text("#client-name") == "霞法律事務所"
        assert "お電話ありがとうございます" in await page.inner_text("#greeting")
        assert await page.inner_text("#caller-name") == "Tanaka"
        await page.fill("#body", "契約書の件で折り返しをお願いします")
        await page.select_option("#disposition", "callback_requested")
        await page.click("#message-form button[type=submit]")
        await page.wait_for_function(
            "document.getElementById('status').textContent === '送信しました'")
        async with running.app[POOL].acquire() as conn:
            message = await conn.fetchrow("SELECT * FROM messages WHERE taken_by = '201'")
        assert message["client"] == "KSL" and message["obligation_id"] is not None
        assert message["caller_name"] == "Tanaka"
    finally:
        await runner.cleanup()
        await running.server.close()


