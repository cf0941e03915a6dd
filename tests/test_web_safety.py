"""The web's Low items of issue 12, each against the real app and database: security
headers on every response, a safe ``next``, request ids, bad input as one-line JSON 400s,
body limits for chunked bodies, the CSV export, Secure cookies behind a trusted proxy, and
click-to-call from one's own extension only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app, database_ctx, web_ctx
from service.config import ConfigError, load_config
from service.web.api_calls import spreadsheet_safe
from service.web.safety import safe_next
from tests.webapp import PASSWORD, Seeded, seed, web_config

EVIL_NEXT = ("/%5Cevil.example/", "/%09/evil.example/", "/\\evil.example/", "//evil",
             "https://evil.example/", "/%2F%2Fevil.example", "javascript:alert(1)")


@pytest.fixture
async def api(db_url: str, pool, tmp_path: Path) -> AsyncIterator[tuple[TestClient, Seeded]]:
    seeded = await seed(pool)
    app = create_app(web_config(tmp_path, db_url, trust_proxy=("10.9.9.9",)),
                     [database_ctx, web_ctx])
    async with TestClient(TestServer(app)) as client:
        yield client, seeded


def bearer(seeded: Seeded, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {seeded.tokens[who]}"}


async def test_security_headers_on_every_response(api) -> None:
    client, s = api
    responses = [
        await client.get("/api/calls", headers=bearer(s, "admin")),       # API 200
        await client.get("/api/calls"),                                    # 401
        await client.get("/api/nothing-here"),                             # 404
        await client.post("/api/calls", headers=bearer(s, "admin")),       # 405
        await client.get("/api/calls?limit=0", headers=bearer(s, "admin")),  # 400
        await client.get("/login"),                                        # a page
        await client.get("/static/app.js"),                                # a static file
        await client.get("/healthz"),
    ]
    for response in responses:
        headers = response.headers
        where = f"{response.method} {response.url.path} {response.status}"
        assert headers["X-Frame-Options"] == "DENY", where
        assert headers["X-Content-Type-Options"] == "nosniff", where
        assert headers["Referrer-Policy"] == "no-referrer", where
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], where
        assert "Permissions-Policy" in headers and "Cross-Origin-Opener-Policy" in headers
    page_csp = responses[5].headers["Content-Security-Policy"]
    assert "script-src 'self'" in page_csp  # the pages' own policy is kept, made stricter
    assert responses[0].headers["Cache-Control"] == "no-store"
    for response in responses[2:5]:  # aiohttp's own errors are JSON under /api/ too
        assert response.content_type == "application/json"
        assert "error" in await response.json()


async def test_next_after_login_cannot_leave_the_site(api) -> None:
    client, _ = api
    for target in EVIL_NEXT:
        assert safe_next(target) == "/", target
        response = await client.get("/login", params={"next": target}, allow_redirects=False)
        assert response.status == 302 and response.headers["Location"] == "/login", target
    for target in ("/wallboard", "/portal?client=KSL"):
        assert safe_next(target) == target
        response = await client.get("/login", params={"next": target}, allow_redirects=False)
        assert response.status == 200


async def test_request_id_is_echoed_only_when_short_and_plain(api) -> None:
    client, _ = api
    response = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    for bad in ("x" * 5000, "a b", "<script>"):
        response = await client.get("/healthz", headers={"X-Request-Id": bad})
        echoed = response.headers["X-Request-Id"]
        assert echoed != bad and len(echoed) == 12


async def test_hostile_input_is_a_one_line_json_400(api) -> None:
    client, s = api
    admin = bearer(s, "admin")
    cases = [
        ("GET", "/api/calls?caller=%00", None, 400),
        ("GET", "/api/calls?before=99999999999999999999", None, 400),
        ("GET", "/api/calls?from=0001-01-01", None, 400),
        ("GET", "/api/calls?to=0001-01-01T00:00:00%2B14:00", None, 400),
        ("GET", "/api/calls.csv?from=not-a-date", None, 400),
        ("GET", "/api/calls/99999999999999999999", None, 404),
        ("GET", "/api/obligations/99999999999999999999/done", None, 405),
        ("POST", "/api/obligations/99999999999999999999/done", b"{}", 404),
        ("POST", "/api/messages", b"[" * 4000 + b"]" * 4000, 400),
        ("POST", "/api/messages", json.dumps({"client": "KSL", "disposition": "info_only",
                                             "body": "a\x00b"}).encode(), 400),
    ]
    for method, path, body, expected in cases:
        response = await client.request(method, path, data=body, headers={
            **admin, "Content-Type": "application/json"})
        text = await response.text()
        assert response.status == expected, (path, response.status, text[:200])
        assert response.content_type == "application/json", path
        assert "\n" not in text.strip() and "Traceback" not in text, path
        assert json.loads(text)["error"], path


async def test_body_limit_holds_for_chunked_bodies(api) -> None:
    client, s = api

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"client": "KSL", "disposition": "info_only", "body": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = await client.post("/api/messages", data=chunks(), headers={
        **bearer(s, "admin"), "Content-Type": "application/json"})
    assert response.status == 400
    assert "larger than" in (await response.json())["error"]


async def test_csv_export_refuses_bad_dates_before_the_200_and_guards_formulas(api) -> None:
    client, s = api
    response = await client.get("/api/calls.csv?to=2026-13-45", headers=bearer(s, "ksl"))
    assert response.status == 400
    response = await client.get("/api/calls.csv", headers=bearer(s, "ksl"))
    assert response.status == 200 and "caller_name" in await response.text()
    assert [spreadsheet_safe(v) for v in ("=HYPERLINK()", "\t=1", "\r+1", "-1", "@x", "ok")] \
        == ["'=HYPERLINK()", "'\t=1", "'\r+1", "'-1", "'@x", "ok"]


async def test_secure_cookie_only_behind_a_trusted_proxy(api, db_url: str, tmp_path: Path
                                                         ) -> None:
    client, _ = api
    login = {"username": "op", "password": PASSWORD}
    forwarded = {"X-Forwarded-Proto": "https"}
    # The test client is 127.0.0.1, not the trusted proxy 10.9.9.9: the header is ignored.
    response = await client.post("/api/login", json=login, headers=forwarded)
    assert response.status == 200 and "Secure" not in response.headers["Set-Cookie"]
    app = create_app(web_config(tmp_path, db_url, trust_proxy=("127.0.0.1",)),
                     [database_ctx, web_ctx])
    async with TestClient(TestServer(app)) as behind_proxy:
        response = await behind_proxy.post("/api/login", json=login, headers=forwarded)
        assert response.status == 200 and "Secure" in response.headers["Set-Cookie"]
        assert "Strict-Transport-Security" in response.headers


async def test_an_operator_calls_back_from_their_own_extension_only(api) -> None:
    client, s = api
    obligation = s.obligations["KSL"][4]
    path = f"/api/obligations/{obligation}/call"
    response = await client.post(path, json={"operator": "301"}, headers=bearer(s, "op"))
    assert response.status == 403
    # Their own extension (201): allowed through to the dialler (no PBX here: 409).
    response = await client.post(path, json={}, headers=bearer(s, "op"))
    assert response.status == 409
    # A supervisor may place the call for an operator.
    response = await client.post(path, json={"operator": "201"}, headers=bearer(s, "sup"))
    assert response.status == 409


def test_settings_that_cannot_be_are_refused() -> None:
    for environ, message in (({"ORIKAESHI_WEB_PORT": "99999"}, "web_port: 99999"),
                             ({"ORIKAESHI_AGI_PORT": "-1"}, "agi_port"),
                             ({"DATABASE_URL": "postgresql://u:p@h:port/x"}, "port"),
                             ({"DATABASE_URL": "mysql://h/x"}, "postgresql://"),
                             ({"ORIKAESHI_LOGIN_WORKERS": "0"}, "login_workers")):
        with pytest.raises(ConfigError, match=message):
            load_config(environ=environ)


async def test_an_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    import asyncio
    import os
    import sys

    env = {**os.environ, "DATABASE_URL": "postgresql://u:hunter2@127.0.0.1:1/x",
           "ORIKAESHI_DATA_DIR": str(tmp_path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "serve", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    lines = [line for line in err.decode().splitlines() if not line.startswith("{")]
    assert process.returncode == 1
    assert len(lines) == 1 and "cannot use the database" in lines[0], lines
    assert "hunter2" not in err.decode() and "Traceback" not in err.decode()


async def test_an_unexpected_error_is_a_one_line_json_500(db_url: str, tmp_path: Path,
                                                          capfd) -> None:
    from aiohttp import web

    from service.web.auth import public

    @public
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug\nwith a second line")

    app = create_app(web_config(tmp_path, db_url), [database_ctx])
    app.router.add_get("/api/broken", broken)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/broken", headers={"X-Request-Id": "req-42"})
        text = await response.text()
    assert response.status == 500 and response.content_type == "application/json"
    assert "\n" not in text.strip() and "bug" not in text
    assert json.loads(text)["request_id"] == "req-42"
    assert response.headers["X-Frame-Options"] == "DENY"
    log = capfd.readouterr().err
    assert "http_handler_failed" in log and "req-42" in log  # the traceback is in the log
