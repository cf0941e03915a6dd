"""The call flows' buttons as people on shift use them (issue 11), in Debian's Chromium driven
by Playwright, against the running service with the real database, the FastAGI server and an
AMI peer replaying a recorded call:

* the operator, on a call (the replay paused while 201 talks with the caller): presence
  (log in, pause with a reason, back), 手上げ with the state shown from the live stream while
  the supervisor joins (the ``handraise joined`` AGI a supervisor's phone runs), hands back,
  and takes over on the supervisor desk; 録音 for a client recorded on request; a complaint
  about the call, resolved on the desk; the result code after the call, in after-call work;
* recordings played and downloaded by a supervisor, a client user seeing only its own and
  the count of its complaints on the portal, nothing more.

The AMI peer is the replay server of tests (service/replay/server.py) answering, as
Asterisk does, the queue and MixMonitor actions it is sent (the recording goes on as
recorded: the PBX's own side is the live tests' business, tests/test_handraise_live.py and
friends); every action the pages caused is checked in ``server.actions``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import struct
import time
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from service.app import agi_ctx, create_app, database_ctx, ledger_ctx, routing_ctx, web_ctx
from service.appkeys import POOL
from service.clients.store import load_document
from service.config import PbxConfig
from service.replay.recording import load_recording
from service.replay.server import ReplayServer
from tests.agi_peer import agi_session
from tests.conftest import trace_dir
from tests.live_asterisk import free_port
from tests.test_browser import ARGS, CHROMIUM
from tests.test_browser_pages import check_page, open_as, shot
from tests.webapp import SAMPLE, seed, web_config

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium")]

# KSL is recorded on request and has result codes; MDC records every call.
CLIENTS = SAMPLE.read_text().replace(
    "    name_ja: 霞法律事務所",
    "    name_ja: 霞法律事務所\n    recording: on_demand\n"
    "    dispositions: [message_taken, info_given]")


class AnsweringPeer(ReplayServer):
    """The replay server, answering the queue-member, MixMonitor, Hangup and ConfBridge
    mute actions with Success as Asterisk does when they work (the replay server refuses
    what it does not perform)."""

    ACCEPTED = ("queueadd", "queueremove", "queuepause", "mixmonitor", "hangup",
                "confbridgemute", "confbridgeunmute")

    def _reply(self, action: dict[str, str], logged_in: asyncio.Event
               ) -> list[list[tuple[str, str | None]]]:
        if logged_in.is_set() and action.get("Action", "").lower() in self.ACCEPTED:
            return [[("Response", "Success"), ("ActionID", action.get("ActionID", "")),
                     ("Message", "Success")]]
        return super()._reply(action, logged_in)


@pytest.fixture
async def people() -> AsyncIterator[Any]:
    """Chromium with a browser context per person (each its own cookies: an operator and a
    supervisor on their own screens at once); ``await people(base, username, lang, size)``."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS,
                                                    headless=True)

        async def login(base: str, username: str, lang: str, size: str = "1366x768") -> Any:
            context = await chromium.new_context(locale="en-GB", bypass_csp=True,
                                                 accept_downloads=True)
            return await open_as(context, base, username, lang, size)

        try:
            yield login
        finally:
            await chromium.close()


@dataclasses.dataclass
class Service:
    base: str
    app: web.Application
    server: AnsweringPeer
    agi_port: int

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.app[POOL].acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        async with self.app[POOL].acquire() as conn:
            return await conn.fetchrow(sql, *args)

    def actions(self, name: str) -> list[dict[str, str]]:
        return [a for a in self.server.actions if a.get("Action") == name]


def talking_pause(recording: str) -> int:
    """How many events of the recording to serve so that the operator is talking with the
    caller and nothing else has happened yet: those up to half a second after the operator
    and the caller entered their bridge."""
    connection = load_recording(trace_dir(recording) / "ami.jsonl")[0]
    events = [m for m in connection.messages if m.is_event]
    talk = next(m.t for m in events if m.get("Event") == "BridgeEnter")
    assert talk is not None
    return sum(1 for m in events if m.t is not None and m.t <= talk + 0.5)


@contextlib.asynccontextmanager
async def serving(db_url: str, tmp_path: Path, recording: str = "supervisor_whisper_chanspy"
                  ) -> AsyncIterator[Service]:
    # Paced as recorded: the operator's page sees the call ring, then be answered.
    server = AnsweringPeer(load_recording(trace_dir(recording) / "ami.jsonl"), speed=1.0,
                           rebase_to=time.time(), gate=asyncio.Event(),
                           pause_at=[talking_pause(recording)])
    port = await server.start()
    spool = tmp_path / "spool"
    agi_port = free_port()
    config = web_config(tmp_path, db_url, ami_lock=False, agi_port=agi_port,
                        pbxs=(PbxConfig(pbx_id="pbx1", ami_port=port, ami_username="u",
                                        ami_secret="p", phone_channel="Local/{ext}@opphone/n",
                                        recordings_dir=spool),))
    config = dataclasses.replace(config, ledger_flush_interval_s=0.05)
    app = create_app(config, [database_ctx, routing_ctx, web_ctx, ledger_ctx, agi_ctx])
    runner = web.AppRunner(app)
    await runner.setup()
    web_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", web_port).start()
    try:
        yield Service(f"http://127.0.0.1:{web_port}", app, server, agi_port)
    finally:
        await runner.cleanup()
        await server.close()


async def phone_joins(service: Service, handraise_id: int, channel: str) -> None:
    """What a phone rung into the consult room runs when answered:
    ``AGI(agi://host/handraise,joined,<id>)`` (dialplan/handraise.conf)."""
    await agi_session(service.agi_port, [
        ("agi_network", "yes"), ("agi_network_script", "handraise"),
        ("agi_request", "agi://127.0.0.1/handraise"), ("agi_channel", channel),
        ("agi_language", "ja"), ("agi_type", "Local"), ("agi_uniqueid", "1795346900.9"),
        ("agi_version", "20.20.1"), ("agi_callerid", "301"), ("agi_calleridname", "sup"),
        ("agi_context", "orikaeshi-handraise-supervisor"), ("agi_extension", "hr"),
        ("agi_priority", "2"), ("agi_accountcode", ""),
        ("agi_arg_1", "joined"), ("agi_arg_2", str(handraise_id))])


async def says(page: Any, selector: str, text: str) -> None:
    """Wait until ``selector`` says ``text`` (a status line answers each action)."""
    await page.wait_for_function(
        "([s, t]) => { const e = document.querySelector(s); "
        "return e && e.textContent.includes(t); }", arg=[selector, text], timeout=15_000)


async def picture(page: Any, name: str) -> None:
    """A screenshot for docs/web.md, from the top of the page."""
    await page.evaluate("scrollTo(0, 0)")
    await shot(page, name)


async def text_of(page: Any, selector: str) -> str:
    """The text of ``selector`` once it has any (a status line is filled by the answer)."""
    await page.wait_for_function(
        "s => { const e = document.querySelector(s); return e && e.textContent.trim() !== ''; }",
        arg=selector, timeout=15_000)
    return str(await page.inner_text(selector))


WORDS = {
    "ja": {"held": "保留中: スーパーバイザーを待っています",
           "joined": "スーパーバイザー 301 が参加しました",
           "handed_back": "お客様が戻りました", "taken_over": "スーパーバイザーが引き継ぎました",
           "paused": "離席中 · 研修", "back_desk": "オペレーター 201 に戻しました。",
           "take_desk": "引き継ぎました。", "rec": "録音中",
           "need": "保存できません: 解決・完了には対応結果が必要です",
           "resolved": "解決にしました", "wrapup": "後処理中",
           "saved": "区分を保存しました: 案内済み",
           "listen_ok": "モニター", "listen_refused": "「聞く」は使えません",
           "alert": "手上げ（お客様保留中）",
           "whisper": "ウィスパー: 301 の声はオペレーターにだけ",
           "pr_paused": "201: 離席中にしました。"},
    "en": {"held": "Caller on hold: waiting for a supervisor", "joined": "Supervisor 301 joined",
           "handed_back": "Handed back: the caller is with you again",
           "taken_over": "Taken over by the supervisor", "paused": "Paused · Training",
           "back_desk": "Handed back to operator 201.", "take_desk": "Taken over:",
           "rec": "Recording", "need": "Not saved: write the resolution",
           "resolved": "Resolved", "wrapup": "After-call work",
           "saved": "Result saved: Information given",
           "listen_ok": "Listening", "listen_refused": "Listen is not available",
           "alert": "Raised hand: caller on hold",
           "whisper": "Whisper: 301 now talks to the operator only",
           "pr_paused": "201: Paused."},
}


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_operator_and_supervisor_on_a_call(people, pool, db_url, tmp_path,
                                                 lang) -> None:
    words = WORDS[lang]
    await seed(pool)
    async with pool.acquire() as conn:
        await load_document(conn, CLIENTS, "clients.yaml")
    async with serving(db_url, tmp_path) as service:
        op = await people(service.base, "op", lang, "390x844")
        desk = await people(service.base, "sup", lang, "1366x768")
        await desk.goto(f"{service.base}/supervisor")
        await desk.wait_for_selector("#handraises")
        # Presence before any call: log in to the client's queue, pause for training, back.
        await op.wait_for_selector("#presence-state[data-state=unknown]")
        await op.fill("#pr-queues", "q-ksl")
        await op.click("#pr-login")
        await op.wait_for_selector("#presence-state[data-state=logged_in]")
        await op.select_option("#pr-reason", "training")
        await op.focus("#pr-pause")
        await op.keyboard.press("Enter")  # the keyboard works as well as a click
        await op.wait_for_selector("#presence-state[data-state=paused]")
        assert words["paused"] in await op.inner_text("#presence-state")
        assert await op.locator("#presence-since .timer").count() == 1
        span = await service.fetchrow(
            "SELECT state, reason, via, queues FROM presence_spans WHERE operator = '201' "
            "AND ended_at IS NULL")
        assert tuple(span) == ("paused", "training", "api", ["q-ksl"])
        assert service.actions("QueuePause")[0]["Reason"] == "training"
        assert service.actions("QueueAdd")[0]["Interface"] == "Local/201@opphone/n"
        await desk.reload()
        row = desk.locator("#presence tr[data-operator='201']")
        await row.wait_for()
        assert await row.get_attribute("data-state") == "paused"
        assert words["paused"].split(" · ")[1] in await row.inner_text()
        await op.click("#pr-unpause")
        await op.wait_for_selector("#presence-state[data-state=logged_in]")
        assert await service.fetchval(
            "SELECT count(*) FROM presence_spans WHERE operator = '201'") == 3

        # The call: 201 answers and talks; the replay holds there until the test goes on.
        service.server.gate.set()
        await op.wait_for_selector("#pop-state[data-state=talking]", timeout=30_000)
        # The replay holds once the operator and the caller are bridged (BRIDGEPEER set).
        async with asyncio.timeout(30):
            await service.server.paused.wait()
        linkedid = await service.fetchval(
            "SELECT linkedid FROM calls WHERE ended_at IS NULL AND client = 'KSL'")
        assert await op.locator("#recording-indicator").count() == 0
        await check_page(op, lang)
        await shot(op, f"operator-callflows-390x844-{lang}")

        # 録音 (KSL records on request): MixMonitor on the caller, the indicator shows.
        await op.click("#record-button")
        await op.wait_for_selector("#recording-indicator")
        assert await op.inner_text("#recording-indicator") == words["rec"]
        assert await op.locator("#record-button").count() == 0
        mix = service.actions("MixMonitor")
        assert len(mix) == 1 and mix[0]["File"] == f"orikaeshi/{linkedid}.wav"
        assert await service.fetchval(
            "SELECT reason FROM recordings WHERE linkedid = $1", linkedid) == "on_demand"

        # 手上げ: the caller to hold, the state on the pop, the row on the desk.
        for decision in ("hand_back", "take_over"):
            await op.click("#handraise-button")
            await op.wait_for_selector("#handraise-state[data-state=held]")
            assert words["held"] in await op.inner_text("#handraise-state")
            raised = await service.fetchrow(
                "SELECT id, operator, linkedid, client, ended_at FROM handraises "
                "ORDER BY id DESC LIMIT 1")
            assert (raised["operator"], raised["linkedid"], raised["client"],
                    raised["ended_at"]) == ("201", linkedid, "KSL", None)
            hold = [a for a in service.actions("Redirect")
                    if a["Context"] == "orikaeshi-handraise-hold"]
            assert hold[-1]["Exten"] == f"hr{raised['id']}"
            row = desk.locator(f"#handraises tr[data-id='{raised['id']}']")
            await row.wait_for(timeout=10_000)  # from the live stream, no reload
            assert await row.locator("button.take-over").is_disabled()  # nobody joined yet
            timer = await row.locator(".hold-timer").inner_text()
            await desk.wait_for_function(
                "([id, t]) => document.querySelector(`#handraises tr[data-id='${id}'] "
                ".hold-timer`).textContent !== t", arg=[raised["id"], timer])
            if decision == "hand_back":
                # The wallboard names the alert in words, with the operator and hold time.
                board = await desk.context.new_page()
                await board.set_viewport_size({"width": 1366, "height": 768})
                await board.goto(f"{service.base}/wallboard")
                alert = board.locator("#alerts .alert[data-kind=handraise]")
                await alert.wait_for(timeout=10_000)
                said = await alert.inner_text()
                assert words["alert"] in said and "201" in said
                await check_page(board, lang, fits=True)
                await board.close()
            # Listen: the API may not offer it yet; the answer is told in words either way.
            listen_path = f"/api/handraise/{raised['id']}/listen"
            async with desk.expect_response(
                    lambda r, path=listen_path: r.url.endswith(path)) as heard:
                await row.locator("button.listen").click()
            answer = await heard.value
            await says(desk, "#handraise-status",
                       words["listen_ok"] if answer.ok else words["listen_refused"])
            if answer.ok:  # nobody in the room yet: the supervisor's phone is rung, muted
                rung = service.actions("Originate")[-1]
                assert (rung["Channel"], rung["Context"], rung["Exten"]) == (
                    "Local/301@opphone/n", "orikaeshi-handraise-listen", f"hr{raised['id']}")
            # The supervisor's phone answers the room call: the operator sees who joined.
            await phone_joins(service, raised["id"], "PJSIP/301-0000001a")
            await op.wait_for_selector("#handraise-state[data-state=joined]", timeout=10_000)
            assert words["joined"] in await op.inner_text("#handraise-state")
            if decision == "take_over":
                # Whisper: the supervisor talks to the operator; the caller hears hold music.
                await row.locator("button.whisper").click()
                await says(desk, "#handraise-status", words["whisper"])
                unmute = service.actions("ConfbridgeUnmute")[-1]
                assert (unmute["Conference"], unmute["Channel"]) == (
                    f"orikaeshi-hr{raised['id']}", "PJSIP/301-0000001a")
            button = row.locator("button.take-over" if decision == "take_over"
                                 else "button.hand-back")
            await desk.wait_for_function(
                "id => !document.querySelector(`#handraises tr[data-id='${id}'] "
                "button.take-over`).disabled", arg=raised["id"])
            await button.focus()
            await desk.keyboard.press("Enter")
            await says(desk, "#handraise-status",
                       words["back_desk"] if decision == "hand_back" else words["take_desk"])
            state = "handed_back" if decision == "hand_back" else "taken_over"
            await op.wait_for_selector(f"#handraise-state[data-state={state}]", timeout=10_000)
            assert words[state] in await op.inner_text("#handraise-state")
            done = await service.fetchrow(
                "SELECT resolution, hold_s, help_s, helped_by FROM handraises WHERE id = $1",
                raised["id"])
            assert done["resolution"] == state and done["helped_by"] == "301"
            assert done["hold_s"] >= done["help_s"] >= 0
            moved = [a for a in service.actions("Redirect")
                     if a["Context"] == "orikaeshi-handraise-join"]
            assert moved[-1]["Exten"] == f"hr{raised['id']}"
            await desk.wait_for_selector(f"#handraises-recent li[data-id='{raised['id']}']"
                                         f"[data-resolution={state}]")
            assert await desk.locator(f"#handraises tr[data-id='{raised['id']}']").count() == 0
        # The one who left the room is hung up: the supervisor on hand back.
        assert service.actions("Hangup")[0]["Channel"] == "PJSIP/301-0000001a"
        assert await service.fetchval("SELECT count(*) FROM callflow_alerts WHERE "
                                      "kind = 'handraise' AND cleared_at IS NULL") == 0

        # 苦情 about this call, naming an operator, then resolved on the desk.
        await op.click("#complaint summary")
        await op.select_option("#cp-category", "operator_attitude")
        await op.fill("#cp-body", "前回の担当者の言葉遣いが失礼だったとのこと")
        await op.fill("#cp-named", "202")
        await op.click("#cp-form button[type=submit]")
        said = await text_of(op, "#cp-status")
        complaint = await service.fetchrow("SELECT * FROM complaints ORDER BY id DESC LIMIT 1")
        assert str(complaint["id"]) in said
        assert (complaint["client"], complaint["pbx_id"], complaint["linkedid"],
                complaint["named_operator"], complaint["created_by"], complaint["status"]) == \
            ("KSL", "pbx1", linkedid, "202", "op", "open")
        await desk.reload()
        row = desk.locator(f"#complaints tr[data-id='{complaint['id']}']")
        await row.wait_for()
        assert "202" in await row.inner_text()
        await row.locator("button.edit").click()
        await desk.select_option(f"#c{complaint['id']}-status", "resolved")
        await desk.click(f"#complaints tr[data-id='{complaint['id']}'] form button[type=submit]")
        await says(desk, "#complaints-status", words["need"])
        await desk.fill(f"#c{complaint['id']}-resolution", "謝罪し、担当を替えて折り返し済み")
        await desk.click(f"#complaints tr[data-id='{complaint['id']}'] form button[type=submit]")
        await says(desk, "#complaints-status", words["resolved"])
        assert await service.fetchval("SELECT status FROM complaints WHERE id = $1",
                                      complaint["id"]) == "resolved"
        await desk.select_option("#complaint-filter", "resolved")
        await desk.wait_for_selector(f"#complaints tr[data-id='{complaint['id']}']"
                                     "[data-status=resolved]")
        await check_page(desk, lang)
        await picture(desk, f"supervisor-1366x768-{lang}")

        # The call ends: after-call work until the result is chosen.
        service.server.proceed()
        await op.wait_for_selector("#wrapup-state[data-state=wrapup]", timeout=30_000)
        assert words["wrapup"] in await op.inner_text("#wrapup-state")
        await op.select_option("#wrapup-code", "info_given")
        await op.click("#wrapup-save")
        assert words["saved"] in await text_of(op, "#wrapup-status")
        await op.wait_for_selector("#wrapup-state[data-state=done]")
        kept = await service.fetchrow("SELECT code, operator, set_by FROM call_dispositions "
                                      "WHERE linkedid = $1", linkedid)
        assert tuple(kept) == ("info_given", "201", "op")
        for size in ((390, 844), (1366, 768)):
            await op.set_viewport_size({"width": size[0], "height": size[1]})
            await op.wait_for_function(f"innerWidth === {size[0]}")
            await check_page(op, lang)
        await picture(op, f"operator-wrapup-1366x768-{lang}")

        # The supervisor's hand on presence: 201 paused for a meeting, then their shift ended.
        await desk.reload()
        row = desk.locator("#presence tr[data-operator='201']")
        await row.wait_for()
        await desk.select_option("#pr-reason-201", "meeting")
        await row.locator("button.pr-pause").click()
        await says(desk, "#presence-status", words["pr_paused"])
        await desk.wait_for_selector("#presence tr[data-operator='201'][data-state=paused]")
        span = await service.fetchrow(
            "SELECT state, reason, via FROM presence_spans WHERE operator = '201' "
            "AND ended_at IS NULL")
        assert tuple(span) == ("paused", "meeting", "api")
        assert service.actions("QueuePause")[-1]["Reason"] == "meeting"
        await desk.locator("#presence tr[data-operator='201'] button.pr-logout").click()
        await desk.wait_for_selector("#presence tr[data-operator='201'][data-state=logged_out]")
        assert await service.fetchval(
            "SELECT state FROM presence_spans WHERE operator = '201' AND ended_at IS NULL"
        ) == "logged_out"
        assert service.actions("QueueRemove")[-1]["Interface"] == "Local/201@opphone/n"
        await check_page(desk, lang)
        assert op.errors == [] and desk.errors == []


def tone(path: Path, seconds: float = 0.6) -> None:
    """A short 8 kHz mono 16-bit WAV, as MixMonitor writes them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8000 * 2 * math.pi
                                                                          * 440)))
                                 for i in range(int(8000 * seconds))))


async def recorded_calls(pool: asyncpg.Pool, spool: Path, linkedids: dict[str, str]
                         ) -> dict[str, int]:
    ids = {}
    async with pool.acquire() as conn:
        for client, linkedid in linkedids.items():
            tone(spool / "orikaeshi" / f"{linkedid}.wav")
            ids[client] = await conn.fetchval(
                "INSERT INTO recordings (pbx_id, linkedid, client, file_name, reason, "
                "started_at) VALUES ('pbx1', $1, $2, $3, 'policy', $4) RETURNING id",
                linkedid, client, f"orikaeshi/{linkedid}.wav",
                datetime.now(UTC) - timedelta(minutes=29))
    return ids


async def played(page: Any, recording_id: int) -> None:
    """Press play and wait until the audio element has the file's length (it was served)."""
    row = page.locator(f"#recordings tr[data-id='{recording_id}']")
    await row.locator("button.play").click()
    await page.wait_for_function(
        "id => { const a = document.getElementById(`audio-${id}`); "
        "return a && a.readyState >= 1 && a.duration > 0.5; }", arg=recording_id,
        timeout=15_000)


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_recordings_played_and_the_portal_sees_only_a_count(people, pool, db_url,
                                                                  tmp_path, lang) -> None:
    seeded = await seed(pool)
    async with serving(db_url, tmp_path) as service:
        ids = await recorded_calls(pool, tmp_path / "spool", seeded.linkedids)
        async with pool.acquire() as conn:
            for client, body in (("KSL", "対応が遅い"), ("KSL", "折り返しがない"),
                                 ("MDC", "受付の説明が違った")):
                await conn.execute("INSERT INTO complaints (client, category, body, created_by)"
                                   " VALUES ($1, 'service', $2, 'sup')", client, body)
        # A supervisor plays and downloads any client's recording; each is audited.
        desk = await people(service.base, "sup", lang, "1366x768")
        await desk.goto(f"{service.base}/supervisor")
        await desk.wait_for_selector("#recordings tr[data-id]")
        assert sorted(await desk.locator("#recordings tr[data-id]").evaluate_all(
            "rows => rows.map(r => r.dataset.client)")) == ["KSL", "MDC"]
        await played(desk, ids["MDC"])
        async with desk.expect_download() as download:
            await desk.locator(f"#recordings tr[data-id='{ids['MDC']}'] a.download").click()
        saved = await (await download.value).path()
        original = tmp_path / "spool" / "orikaeshi" / f"{seeded.linkedids['MDC']}.wav"
        assert await asyncio.to_thread(Path(saved).read_bytes) == \
            await asyncio.to_thread(original.read_bytes)
        audit = await service.fetchrow(
            "SELECT array_agg(DISTINCT action ORDER BY action) AS actions, "
            "array_agg(DISTINCT username) AS who FROM recording_audit WHERE recording_id = $1",
            ids["MDC"])
        assert (audit["actions"], audit["who"]) == (["download", "play"], ["sup"])
        await check_page(desk, lang)
        # A file that is gone is told, not a silent player.
        (tmp_path / "spool" / "orikaeshi" / f"{seeded.linkedids['KSL']}.wav").rename(
            tmp_path / "gone.wav")
        await desk.locator(f"#recordings tr[data-id='{ids['KSL']}'] button.play").click()
        assert await text_of(desk, "#recordings-status") != ""
        (tmp_path / "gone.wav").rename(
            tmp_path / "spool" / "orikaeshi" / f"{seeded.linkedids['KSL']}.wav")
        # The client user: only its own recordings, and of complaints only how many.
        portal = await people(service.base, "ksl", lang, "390x844")
        await portal.wait_for_selector("#recordings tr[data-id]")
        assert await portal.locator("#recordings tr[data-id]").evaluate_all(
            "rows => rows.map(r => Number(r.dataset.id))") == [ids["KSL"]]
        await played(portal, ids["KSL"])
        assert await service.fetchval(
            "SELECT count(*) FROM recording_audit WHERE username = 'ksl' AND action = 'play' "
            "AND recording_id = $1", ids["KSL"]) >= 1
        assert await portal.get_attribute("#complaint-count", "data-count") == "2"
        assert await portal.inner_text("#complaint-count") == ("2件" if lang == "ja"
                                                                else "2 complaint(s)")
        text = await portal.inner_text("main")
        assert "対応が遅い" not in text and "折り返しがない" not in text
        # The count follows the dates shown (none in 2020).
        await portal.fill("#from", "2020-01-01")
        await portal.fill("#to", "2020-01-02")
        await portal.wait_for_selector("#complaint-count[data-count='0']")
        await portal.fill("#from", "")
        await portal.fill("#to", "")
        await portal.wait_for_selector("#complaint-count[data-count='2']")
        assert await portal.locator("#complaints").count() == 0
        # Another client's recording is not there for it, not even by its address.
        status = await portal.evaluate(
            "async id => (await fetch(`/api/recordings/${id}/audio`)).status", ids["MDC"])
        assert status == 404
        await check_page(portal, lang)
        await shot(portal, f"portal-recordings-390x844-{lang}")
        # An operator is offered neither the desk nor recordings.
        op = await people(service.base, "op", lang, "1366x768")
        assert "/supervisor" not in [await a.get_attribute("href")
                                     for a in await op.locator("header nav a").all()]
        await op.goto(f"{service.base}/supervisor")
        await op.wait_for_url(f"{service.base}/operator?denied=supervisor")
        assert await op.locator("#recordings").count() == 0
        assert desk.errors == [] and portal.errors == [] and op.errors == []
