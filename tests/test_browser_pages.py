"""The pages as people on shift use them (issue 10), in Debian's Chromium driven by Playwright,
against the running service fed by replayed recordings: layout at 1920x1080, 1366x768 and
390x844 in Japanese and English, the words of each language, the operator's pop across a
reload and when another operator answers, the worklist's calling hours from the service's
clock, the PBX-down banner, and a client user's own calls and name.

Screenshots for docs/web.md: ``ORIKAESHI_SCREENSHOTS=docs/screenshots pytest ...`` writes
them while the tests run (the tests check the same pages the pictures show).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from service.app import create_app, database_ctx, ledger_ctx, web_ctx, workers_ctx
from service.appkeys import CLOCK, POOL
from service.clock import SettableClock
from service.config import PbxConfig
from service.replay.recording import load_recording
from service.replay.server import ReplayServer
from tests.conftest import trace_dir
from tests.live_asterisk import free_port
from tests.test_browser import ARGS, CHROMIUM, browser  # noqa: F401  (the fixture)
from tests.webapp import PASSWORD, seed, web_config

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium")]

SIZES = {"1920x1080": (1920, 1080), "1366x768": (1366, 768), "390x844": (390, 844)}
SHOTS = os.environ.get("ORIKAESHI_SCREENSHOTS")

# Text a page shows that is not in the page's language: ASCII words in a Japanese page (except
# acronyms Japanese uses as they are), Japanese in an English page.  Data (caller names,
# numbers, extensions, the brand, messages, client notes) is marked class="data" (or
# translate="no") and not scanned, nor the other language's name on the language switch
# (marked with its own lang).  Client names are not data: each language has its own.
SCAN = """(lang) => {
  const acronyms = new Set(["CSV", "PBX", "Webhook", "FAX"]);
  const foreign = lang === "ja" ? /[A-Za-z]{2,}/g
    : /[\\u3040-\\u30ff\\u3400-\\u9fff\\uff66-\\uff9f]/g;
  const found = [];
  const check = (text, where) => {
    for (const m of (text || "").match(foreign) || []) {
      if (!acronyms.has(m)) found.push(`${where}: ${text.trim().slice(0, 80)}`);
    }
  };
  // Data is marked translate="no"; a language's own name (the switch) carries its lang.
  const skip = (el) => !el || el.closest('.data, [translate="no"], script, style, noscript') ||
    (el.closest("[lang]") && el.closest("[lang]").lang !== lang);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (skip(el) || (!el.getClientRects().length && el.tagName !== "OPTION")) continue;
    check(walker.currentNode.textContent, el.tagName);
  }
  for (const el of document.querySelectorAll("[aria-label], [title], [placeholder]")) {
    if (skip(el)) continue;
    for (const a of ["aria-label", "title", "placeholder"]) check(el.getAttribute(a), a);
  }
  for (const el of document.querySelectorAll("[data-label]")) {
    if (el.getClientRects().length) check(el.dataset.label, "data-label");
  }
  check(document.title, "title");
  return found;
}"""

OVERFLOW = """() => ({width: document.documentElement.scrollWidth, height:
  document.documentElement.scrollHeight, viewW: innerWidth, viewH: innerHeight,
  lang: document.documentElement.lang})"""

# Every form control has a label; text is at WCAG AA contrast against the background it is
# drawn on (4.5:1, 3:1 for large text; disabled controls are exempt, as WCAG says), and so are
# control borders (3:1, non-text contrast).
ACCESS = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05); };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const problems = [];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    if (!el.labels.length && !el.getAttribute("aria-label")) problems.push(`no label: #${el.id}`);
    const style = getComputedStyle(el);
    const edge = ratio(rgb(style.borderTopColor), background(el.parentElement));
    if (el.type !== "checkbox" && !(edge >= 3)) {
      problems.push(`border ${style.borderTopColor}: #${el.id}`);
    }
  }
  for (const el of document.querySelectorAll("body *")) {
    if (!el.getClientRects().length || el.closest("button:disabled, .uplot")) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const style = getComputedStyle(el);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.6 && Number(style.fontWeight) >= 700);
    const r = ratio(rgb(style.color), background(el));
    if (!(r >= (large ? 3 : 4.5))) {  // NaN (an unread colour) fails too
      problems.push(`contrast ${r.toFixed(2)}: ${el.tagName}.${el.className} ` +
                    el.textContent.trim().slice(0, 30));
    }
  }
  return problems;
}"""

PANELS = """() => [...document.querySelectorAll("main > section")].map((s) => {
  const r = s.getBoundingClientRect();
  return {id: s.id, top: r.top, left: r.left, bottom: r.bottom, right: r.right};
})"""


class App:
    def __init__(self, base: str, app: web.Application, server: ReplayServer | None) -> None:
        self.base, self.app, self.server = base, app, server

    def go(self) -> None:
        assert self.server is not None and self.server.gate is not None
        self.server.gate.set()


async def start(db_url: str, tmp_path: Path, recording: str | None, *, speed: float = 1.0,
                closed_pbx: bool = False, workers: bool = False,
                clock: datetime | None = None) -> tuple[web.AppRunner, App]:
    server = None
    if recording is not None:
        server = ReplayServer(load_recording(trace_dir(recording) / "ami.jsonl"), speed=speed,
                              rebase_to=time.time(), gate=asyncio.Event())
        port = await server.start()
    else:
        port = free_port()  # nothing listens there: the PBX link stays down
    assert closed_pbx or server is not None
    config = web_config(tmp_path, db_url, ami_lock=False, pbxs=(PbxConfig(
        pbx_id="pbx1", ami_port=port, ami_username="u", ami_secret="p",
        phone_channel="Local/{ext}@opphone/n"),))
    config = dataclasses.replace(config, ledger_flush_interval_s=0.05)
    contexts = [database_ctx, web_ctx, ledger_ctx] + ([workers_ctx] if workers else [])
    # A clock the test may set (later too: app[CLOCK].fixed).
    app = create_app(config, contexts, clock=SettableClock(clock))
    runner = web.AppRunner(app)
    await runner.setup()
    web_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", web_port).start()
    return runner, App(f"http://127.0.0.1:{web_port}", app, server)


async def until(app: App, sql: str, expected: object, timeout: float = 30.0) -> None:
    """Wait until ``sql`` gives ``expected`` (the ledger writes in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        async with app.app[POOL].acquire() as conn:
            if await conn.fetchval(sql) == expected:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"{sql} did not give {expected!r} within {timeout}s")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def serving(db_url: str, tmp_path: Path, recording: str | None, **options: Any
                  ) -> AsyncIterator[App]:
    """The service for the length of a test block (see ``start``)."""
    runner, app = await start(db_url, tmp_path, recording, **options)
    try:
        yield app
    finally:
        await runner.cleanup()
        if app.server is not None:
            await app.server.close()


async def open_as(browser: Any, base: str, username: str, lang: str,  # noqa: F811
                  size: str = "1366x768") -> Any:
    page = await browser.new_page()
    width, height = SIZES[size]
    await page.set_viewport_size({"width": width, "height": height})
    await page.add_init_script(f"localStorage.setItem('lang', '{lang}')")
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    await page.goto(f"{base}/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#submit")
    await page.wait_for_function("location.pathname !== '/login' && location.pathname !== '/'",
                                 timeout=15_000)
    return page


async def check_page(page: Any, lang: str, *, fits: bool = False) -> None:
    """The page in its language, no horizontal overflow; ``fits``: no scrolling at all and
    every panel inside the viewport (the wallboard on a desk screen)."""
    box = await page.evaluate(OVERFLOW)
    assert box["lang"] == lang
    assert box["width"] <= box["viewW"], f"{page.url} overflows: {box}"
    assert await page.evaluate(SCAN, lang) == [], page.url
    assert await page.evaluate(ACCESS) == [], page.url
    if fits:
        assert box["height"] <= box["viewH"], f"{page.url} scrolls: {box}"
        for panel in await page.evaluate(PANELS):
            assert panel["top"] >= 0 and panel["left"] >= 0, panel
            assert panel["bottom"] <= box["viewH"] and panel["right"] <= box["viewW"], panel


async def shot(page: Any, name: str) -> None:
    if SHOTS:  # the folder exists: made by whoever asks for the pictures
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


async def seed_floor(pool: asyncpg.Pool, calls: int = 40, operators: int = 17) -> None:
    """A busy floor beside the replay: ``operators`` queue members in every state and
    ``calls`` live calls (waiting and talking) of another PBX; with the burst's own calls and
    operators the wallboard shows at least 50 live calls and 30 operators."""
    now = datetime.now(UTC)
    statuses = ("in_use", "not_in_use", "ringing", "unavailable", "in_use", "in_use")
    names = ("田中太郎", "株式会社テスト", "佐藤花子", "ｽｽﾞｷ ｲﾁﾛｳ", "Yamada Koji")
    async with pool.acquire() as conn:
        for n in range(operators):
            await conn.execute(
                """INSERT INTO operator_states (pbx_id, queue, interface, operator, member_name,
                       status, paused, paused_reason, status_since)
                   VALUES ('pbx-floor', 'q-ksl', $1, $2, $3, $4, $5, $6, $7)""",
                f"Local/{500 + n}@operators/n", str(500 + n), f"op{500 + n}",
                statuses[n % len(statuses)], n % 7 == 3, "休憩" if n % 7 == 3 else "",
                now - timedelta(seconds=30 + n * 17))
        for n in range(calls):
            client = ("KSL", "MDC", "WSH")[n % 3]
            linkedid = f"floor.{n}"
            started = now - timedelta(seconds=20 + n * 9)
            talking = n % 2 == 0
            await conn.execute(
                """INSERT INTO calls (pbx_id, linkedid, direction, client, caller_number,
                       caller_e164, caller_name, started_at, queued_at, answered_at,
                       answered_by)
                   VALUES ('pbx-floor', $1, 'inbound', $2, $3, $4, $5, $6, $6, $7, $8)""",
                linkedid, client, f"090{n:08d}", f"+8190{n:08d}", names[n % len(names)],
                started, started + timedelta(seconds=8) if talking else None,
                str(500 + n % operators) if talking else None)
            await conn.execute(
                """INSERT INTO stints (pbx_id, linkedid, seq, queue, joined_at, connected_at,
                       agent, result) VALUES ('pbx-floor', $1, 1, $2, $3, $4, $5, $6)""",
                linkedid, f"q-{client.lower()}", started,
                started + timedelta(seconds=8) if talking else None,
                str(500 + n % operators) if talking else None,
                "answered" if talking else "waiting")


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_wallboard_fits_a_desk_screen_during_a_burst(browser, pool, db_url, tmp_path,  # noqa: F811
                                                           lang) -> None:
    await seed(pool)
    await seed_floor(pool)
    async with serving(db_url, tmp_path, "burst_concurrent", speed=1.0) as app:
        page = await open_as(browser, app.base, "sup", lang, "1920x1080")
        assert page.url.endswith("/wallboard")
        app.go()
        # The burst reaches the board: 50 live calls and 30 operators at least.
        await page.wait_for_function(
            "document.querySelectorAll('#live [data-linkedid]').length >= 50 && "
            "document.querySelectorAll('#operators [data-operator]').length >= 30",
            timeout=30_000)
        for size in ("1920x1080", "1366x768"):
            width, height = SIZES[size]
            await page.set_viewport_size({"width": width, "height": height})
            await asyncio.sleep(0.3)  # a resize is laid out on the next frame
            await check_page(page, lang, fits=True)
            # Every live call and every operator is in sight: their panels do not scroll.
            for panel in ("#live", "#operators"):
                sizes = await page.eval_on_selector(
                    panel, "e => [e.scrollHeight, e.clientHeight, e.querySelectorAll("
                           "'[data-linkedid], [data-operator]').length]")
                await shot(page, f"wallboard-{size}-{lang}")
                assert sizes[0] <= sizes[1] + 1, f"{size} {panel} scrolls: {sizes}"
        # Words, not codes: operator states, queues by client name, ticking waits.
        text = await page.inner_text("#operators")
        assert ("通話中" if lang == "ja" else "On a call") in text
        assert "in_use" not in text and "not_in_use" not in text
        queues = await page.inner_text("#queues")
        assert ("霞法律事務所" if lang == "ja" else "Kasumi Law Office") in queues
        assert "q-ksl" not in queues
        first = await page.locator("#queues tr[data-queue=q-ksl] .timer").inner_text()
        await page.wait_for_function(
            "t => document.querySelector('#queues tr[data-queue=q-ksl] .timer')"
            ".textContent !== t", arg=first, timeout=5_000)
        waiting = page.locator("#live .callrow .badge.b-waiting").first
        assert await waiting.inner_text() == ("待ち" if lang == "ja" else "Waiting")
        # Per client today against its own thresholds (WSH: 30 s, target 70 %).
        wsh = await page.inner_text("#today .client[data-client=WSH]")
        assert ("30秒以内" if lang == "ja" else "within 30s") in wsh
        assert ("目標 70%" if lang == "ja" else "target 70%") in wsh
        await page.set_viewport_size({"width": 390, "height": 844})
        await asyncio.sleep(0.3)
        await check_page(page, lang)
        await shot(page, f"wallboard-390x844-{lang}")
        assert page.errors == []


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_every_page_at_every_size_in_its_language(browser, pool, db_url, tmp_path,  # noqa: F811
                                                        lang) -> None:
    await seed(pool)
    async with serving(db_url, tmp_path, "burst_concurrent", speed=1.0,
                       clock=datetime(2026, 6, 10, 1, 0, tzinfo=UTC)) as app:  # 10:00 JST
        app.go()
        pages = {"sup": ["/worklist", "/operator"], "ksl": ["/portal"], "op": ["/operator"]}
        for username, paths in pages.items():
            page = await open_as(browser, app.base, username, lang, "1920x1080")
            for path in paths:
                await page.goto(f"{app.base}{path}")
                await page.wait_for_selector("main section", timeout=10_000)
                await page.wait_for_load_state("networkidle")
                for size, (width, height) in SIZES.items():
                    await page.set_viewport_size({"width": width, "height": height})
                    await asyncio.sleep(0.2)
                    await check_page(page, lang)
                    await shot(page, f"{path.strip('/')}-{username}-{size}-{lang}")
            assert page.errors == []
            await page.close()
        login = await browser.new_page()
        await login.add_init_script(f"localStorage.setItem('lang', '{lang}')")
        for size, (width, height) in SIZES.items():
            await login.set_viewport_size({"width": width, "height": height})
            await login.goto(f"{app.base}/login")
            await check_page(login, lang)
            await shot(login, f"login-{size}-{lang}")
        # A wrong password is told in the page's language.
        await login.fill("#username", "sup")
        await login.fill("#password", "wrong password")
        await login.click("#submit")
        await login.wait_for_function("document.getElementById('status').textContent !== ''")
        assert await login.inner_text("#status") == (
            "ユーザー名またはパスワードが違います。" if lang == "ja"
            else "Wrong user name or password.")
        await check_page(login, lang)


async def test_language_is_chosen_on_the_login_page_and_remembered(browser, pool, db_url,  # noqa: F811
                                                                   tmp_path) -> None:
    await seed(pool)
    async with serving(db_url, tmp_path, None, closed_pbx=True) as app:
        page = await browser.new_page()  # the browser's locale is en-GB: English first
        await page.goto(f"{app.base}/login")
        assert await page.evaluate("document.documentElement.lang") == "en"
        assert await page.inner_text("#submit") == "Log in"
        await page.click("#lang-ja")
        await page.wait_for_function("document.documentElement.lang === 'ja'")
        assert await page.inner_text("#submit") == "ログイン"
        assert await page.get_attribute("#lang-ja", "aria-pressed") == "true"
        await page.fill("#username", "ksl")
        await page.fill("#password", PASSWORD)
        await page.click("#submit")
        await page.wait_for_url(f"{app.base}/portal")
        await page.wait_for_selector("#subtitle")
        assert await page.evaluate("document.documentElement.lang") == "ja"
        assert await page.inner_text("#subtitle") == "霞法律事務所"
        assert "クライアント" in await page.inner_text("header .who")
        # The switch in the header goes back to English, and stays after a reload.
        await page.click("header button.lang")
        await page.wait_for_function("document.documentElement.lang === 'en'")
        await page.reload()
        await page.wait_for_selector("#subtitle")
        assert await page.inner_text("#subtitle") == "Kasumi Law Office"
        assert "(Client)" in await page.inner_text("header .who")


async def test_operator_pop_survives_a_reload_and_is_marked_when_another_answers(
        browser, pool, db_url, tmp_path) -> None:  # noqa: F811
    """201's phone rings, 201 reloads the page (the pop comes back from the live state), then
    202 answers: 201's pop says so and the message form goes."""
    await seed(pool)
    async with serving(db_url, tmp_path, "ring_no_answer_then_answered", speed=1.0) as app:
        page = await open_as(browser, app.base, "op", "ja", "390x844")
        assert page.url.endswith("/operator")
        await page.wait_for_selector("#no-call")
        app.go()
        await page.wait_for_selector("#pop-state[data-state=ringing]", timeout=30_000)
        assert await page.inner_text("#client-name") == "霞法律事務所"
        number = await page.inner_text("#caller-number")
        assert number.startswith("0") and "-" in number and "+81" not in number
        assert await page.locator("#message-form").count() == 1
        await check_page(page, "ja")
        await shot(page, "operator-ringing-390x844-ja")
        await page.reload()
        await page.wait_for_selector("#pop-state[data-state=ringing]", timeout=10_000)
        assert await page.inner_text("#client-name") == "霞法律事務所"
        assert await page.inner_text("#caller-number") == number
        before = await page.inner_text("#pop-timer")
        await page.wait_for_function(
            "t => document.getElementById('pop-timer').textContent !== t", arg=before)
        await page.wait_for_selector("#pop-state[data-state=taken]", timeout=30_000)
        assert "202" in await page.inner_text("#pop-state")
        assert await page.locator("#message-form").count() == 0
        assert page.errors == []


async def test_operator_pop_restored_during_a_call_and_message_taken(browser, pool, db_url,  # noqa: F811
                                                                     tmp_path) -> None:
    await seed(pool)
    async with serving(db_url, tmp_path, "supervisor_whisper_chanspy", speed=1.0) as app:
        page = await open_as(browser, app.base, "op", "en", "1366x768")
        app.go()
        await page.wait_for_selector("#pop-state[data-state=talking]", timeout=30_000)
        await page.reload()
        await page.wait_for_selector("#pop-state[data-state=talking]", timeout=10_000)
        assert await page.inner_text("#client-name") == "Kasumi Law Office"
        assert "お電話ありがとうございます" in await page.inner_text("#greeting")
        await shot(page, "operator-talking-1366x768-en")
        await page.fill("#body", "Please call back about the contract")
        await page.click("#message-form button[type=submit]")
        await page.wait_for_function(
            "document.getElementById('status').textContent === 'Message sent.'")
        # Escalation asks first; going back does nothing.
        await page.click("#escalate-button")
        dialog = page.locator("dialog.confirm")
        await dialog.wait_for()
        assert "supervisors" in await dialog.inner_text()
        await dialog.locator("button", has_text="Back").click()
        async with app.app[POOL].acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM escalations") == 0
            message = await conn.fetchrow("SELECT * FROM messages WHERE taken_by = '201'")
        assert message["client"] == "KSL"
        await check_page(page, "en")
        assert page.errors == []


async def test_worklist_calling_hours_from_the_service_clock(browser, pool, db_url,  # noqa: F811
                                                             tmp_path) -> None:
    seeded = await seed(pool)
    night = datetime(2026, 6, 9, 18, 22, tzinfo=UTC)  # 03:22 on 06-10 in Tokyo
    async with serving(db_url, tmp_path, "answered_agent_hangup", speed=0,
                       clock=night) as app:
        app.go()
        page = await open_as(browser, app.base, "sup", "ja", "1366x768")
        await page.goto(f"{app.base}/worklist")
        await page.wait_for_selector("#obligations tr[data-id]")
        rows = page.locator("#obligations tr[data-id]")
        assert await rows.count() == 12  # both clients' six
        buttons = page.locator("#obligations button.call")
        assert await buttons.count() == 12
        assert all([await buttons.nth(i).is_disabled() for i in range(12)])
        hours = await page.inner_text(f"#hours-{seeded.obligations['KSL'][0]}")
        assert hours == "発信不可・06/10 08:00 から発信可（08:00-21:00）"
        assert await page.locator("#obligations .caller-name").count() == 12
        await check_page(page, "ja")
        await shot(page, "worklist-closed-1366x768-ja")
        # Morning: the same rows may be dialled; the answer appears in the row clicked.
        app.app[CLOCK].fixed = night + timedelta(hours=6)
        await page.reload()
        await page.wait_for_selector("#obligations tr[data-id]")
        row = page.locator(f"#obligations tr[data-id='{seeded.obligations['MDC'][2]}']")
        button = row.locator("button.call")
        assert not await button.is_disabled()
        await button.click()
        result = row.locator(".result")
        await result.wait_for(timeout=10_000)
        assert await result.inner_text() == "発信中: まずあなたの電話が鳴ります。"
        originate = [a for a in app.server.actions if a.get("Action") == "Originate"]
        assert originate and originate[0]["Exten"] == "09000000012"
        # Cancel asks for a reason and the row leaves the list, live.
        victim = seeded.obligations["KSL"][1]
        target = page.locator(f"#obligations tr[data-id='{victim}']")
        await target.locator("button.cancel").click()
        await page.fill(f"#note-{victim}", "番号違い")
        await target.locator("form button[type=submit]").click()
        await page.wait_for_selector(f"#obligations tr[data-id='{victim}']", state="detached",
                                     timeout=10_000)
        async with app.app[POOL].acquire() as conn:
            row_state = await conn.fetchrow(
                "SELECT state, note FROM callback_obligations WHERE id = $1", victim)
        assert tuple(row_state) == ("cancelled", "番号違い")
        # A call back opened elsewhere (a script, another instance) appears without a click.
        async with app.app[POOL].acquire() as conn:
            new_id = await conn.fetchval(
                """INSERT INTO callback_obligations (client, caller_e164, caller_number, state,
                       reason, opened_at, due_at) VALUES ('WSH', '+819099990000',
                       '09099990000', 'open', 'missed', now(), now() + interval '1 day')
                   RETURNING id""")
        await page.wait_for_selector(f"#obligations tr[data-id='{new_id}']", timeout=10_000)
        assert page.errors == []
        # A client user is not offered the worklist (nor its 発信 buttons).
        client = await open_as(browser, app.base, "ksl", "ja", "390x844")
        await client.goto(f"{app.base}/worklist")
        await client.wait_for_url(f"{app.base}/portal?denied=worklist")
        assert await client.locator("button.call").count() == 0
        assert "worklist" not in await client.inner_text("header nav")


async def test_pbx_down_banner(browser, pool, db_url, tmp_path) -> None:  # noqa: F811
    await seed(pool)
    async with serving(db_url, tmp_path, None, closed_pbx=True) as app:
        page = await open_as(browser, app.base, "sup", "en", "1366x768")
        banner = page.locator("#banner")
        await banner.wait_for(timeout=15_000)  # within 15 s of the page opening
        text = await banner.inner_text()
        assert "PBX link down: pbx1 (127.0.0.1:" in text
        alert = page.locator("#alerts .alert[data-kind=pbx_down]")
        await alert.wait_for(timeout=10_000)
        await check_page(page, "en", fits=True)
        await shot(page, "wallboard-pbx-down-1366x768-en")
        # Acknowledged by a supervisor: stored, and shown as seen.
        await alert.locator("button.ack").click()
        await page.wait_for_selector("#alerts .alert.acked[data-kind=pbx_down]")
        async with app.app[POOL].acquire() as conn:
            assert await conn.fetchval("SELECT acked_by FROM alert_acks "
                                       "WHERE key LIKE 'pbx_down:pbx1:%'") == "sup"
        assert page.errors == []


async def test_repeat_caller_alert_and_the_supervisors_pop(browser, pool, db_url,  # noqa: F811
                                                           tmp_path) -> None:
    await seed(pool)
    async with serving(db_url, tmp_path, "repeat_caller_escalated", speed=2.0) as app:
        board = await open_as(browser, app.base, "sup", "ja", "1920x1080")
        pop = await board.context.new_page()
        pop.errors = []
        pop.on("pageerror", lambda error: pop.errors.append(str(error)))
        await pop.set_viewport_size({"width": 1366, "height": 768})
        await pop.goto(f"{app.base}/operator")
        await pop.wait_for_selector("#no-call")
        app.go()
        alert = board.locator("#alerts .alert[data-kind=repeat_caller]")
        await alert.wait_for(timeout=40_000)
        text = await alert.inner_text()
        assert "リピーター" in text and "2回目の着信" in text and "Matsumoto" in text
        assert "escalated" not in text
        await shot(board, "wallboard-repeat-caller-1920x1080-ja")
        # Supervisor 301 answers it: the pop says what the short whisper no longer does.
        await pop.wait_for_selector("#repeat", timeout=40_000)
        assert "2回目の着信" in await pop.inner_text("#repeat")
        assert await pop.inner_text("#repeat-first") != "ありません"
        await shot(pop, "operator-repeat-caller-1366x768-ja")
        await check_page(pop, "ja")
        assert board.errors == [] and pop.errors == []


async def test_barge_asks_first_and_spy_buttons_fit(browser, pool, db_url,  # noqa: F811
                                                    tmp_path) -> None:
    await seed(pool)
    async with serving(db_url, tmp_path, "supervisor_whisper_chanspy", speed=1.0) as app:
        app.go()
        for lang in ("en", "ja"):  # the buttons fit their card in both languages
            page = await open_as(browser, app.base, "sup", lang, "1366x768")
            row = page.locator("#live button.callrow[data-operator='201']")
            await row.wait_for(timeout=30_000)
            await row.focus()
            await page.keyboard.press("Enter")  # keyboard: a talking call is a button
            spy = page.locator("#spy")
            await spy.wait_for()
            card = await spy.bounding_box()
            for mode in ("listen", "whisper", "barge"):
                box = await spy.locator(f"button[data-mode={mode}]").bounding_box()
                assert box["x"] >= card["x"]
                assert box["x"] + box["width"] <= card["x"] + card["width"]
        await spy.locator("button[data-mode=barge]").click()
        dialog = page.locator("dialog.confirm")
        await dialog.wait_for()
        assert "割り込み" in await dialog.inner_text()
        await dialog.locator("button", has_text="戻る").click()
        assert [a for a in app.server.actions if a.get("Action") == "Originate"] == []
        await spy.locator("button[data-mode=barge]").click()
        await dialog.locator("button.primary").click()
        await page.wait_for_function(
            "document.getElementById('status').textContent.includes('呼び出しています')")
        originate = [a for a in app.server.actions if a.get("Action") == "Originate"]
        assert len(originate) == 1 and originate[0]["Data"].endswith(",qBdE")
        assert page.errors == []


async def test_client_user_sees_its_own_calls_and_name(browser, pool, db_url,  # noqa: F811
                                                       tmp_path) -> None:
    seeded = await seed(pool)
    async with serving(db_url, tmp_path, "burst_concurrent", speed=0) as app:
        app.go()
        # The burst's three clinic calls (one answered, two turned away: queue full) beside
        # the two seeded ones, all ended in the ledger.
        await until(app, "SELECT count(*) FROM calls WHERE client = 'MDC' "
                         "AND ended_at IS NOT NULL", 5)
        mdc = 5
        page = await open_as(browser, app.base, "mdc", "en", "390x844")
        assert page.url.endswith("/portal")
        assert await page.inner_text("#subtitle") == "Midori Clinic"
        await page.wait_for_selector("#calls-table tr[data-id]")
        ids = await page.locator("#calls-table tr[data-id]").evaluate_all(
            "rows => rows.map(r => Number(r.dataset.id))")
        assert len(ids) == mdc and seeded.calls["KSL"] not in ids
        started = await page.locator("#calls-table tr[data-id]").evaluate_all(
            "rows => rows.map(r => r.dataset.started)")
        assert started == sorted(started, reverse=True)  # newest first
        # Outcome filter: only calls the queue turned away as full.
        await page.select_option("#outcome", "queue_full")
        await page.wait_for_function(
            "[...document.querySelectorAll('#calls-table tr[data-id]')].length === 2")
        # A date range before any call shows "None".
        await page.select_option("#outcome", "")
        await page.fill("#from", "2020-01-01")
        await page.fill("#to", "2020-01-02")
        await page.wait_for_selector("#calls-table td.empty")
        assert await page.inner_text("#calls-table td.empty") == "None"
        assert await page.get_attribute("#report-link", "href") == "/report"
        assert [await a.inner_text() for a in await page.locator("header nav a").all()] == \
            ["Portal", "Monthly report"]
        await check_page(page, "en")
        # An operator who opens /wallboard is sent to their own page, told why.
        op = await open_as(browser, app.base, "op", "en", "1366x768")
        await op.goto(f"{app.base}/wallboard")
        await op.wait_for_url(f"{app.base}/operator?denied=wallboard")
        await op.wait_for_selector("#denied")
        assert op.errors == [] and page.errors == []
        icon = await page.evaluate("async () => (await fetch('/favicon.ico')).status")
        assert icon == 200
