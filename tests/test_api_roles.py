"""Every role against every resource: allowed, forbidden, not found.  Over HTTP, against a
real database; a client user can never see another client's data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app, database_ctx, web_ctx
from service.clock import SettableClock
from tests.webapp import PASSWORD, Seeded, seed, web_config

ROLES = ("admin", "sup", "op", "ksl", "mdc")


@pytest.fixture
async def api(db_url: str, pool, tmp_path: Path) -> AsyncIterator[tuple[TestClient, Seeded]]:
    seeded = await seed(pool)
    # A clock tests may set (the worklist's calling hours).
    app = create_app(web_config(tmp_path, db_url), [database_ctx, web_ctx], clock=SettableClock())
    async with TestClient(TestServer(app)) as client:
        yield client, seeded


async def call(client: TestClient, who: str | None, method: str, path: str,
               token: dict[str, str], json: object = None) -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {token[who]}"} if who else {}
    response = await client.request(method, path, headers=headers, json=json)
    body = await response.json() if response.content_type == "application/json" else None
    return response.status, body


async def test_every_role_against_every_resource(api) -> None:  # type: ignore[no-untyped-def]
    client, s = api
    ksl_call, mdc_call = s.calls["KSL"], s.calls["MDC"]
    ksl_ob = s.obligations["KSL"]
    screen = f"/api/screen?pbx=pbx1&linkedid={s.linkedids['KSL']}"
    message = {"client": "KSL", "disposition": "info_only", "body": "伝言です"}
    # (method, path, body, expected status per role: admin, sup, op, ksl, mdc)
    matrix = [
        ("GET", "/api/calls", None, (200, 200, 200, 200, 200)),
        ("GET", f"/api/calls/{ksl_call}", None, (200, 200, 200, 200, 404)),
        ("GET", f"/api/calls/{mdc_call}", None, (200, 200, 200, 404, 200)),
        ("GET", "/api/calls/987654321", None, (404, 404, 404, 404, 404)),
        ("GET", "/api/calls/not-a-number", None, (404, 404, 404, 404, 404)),
        ("GET", screen, None, (200, 200, 200, 403, 403)),
        ("GET", "/api/screen?pbx=pbx1&linkedid=nope", None, (404, 404, 404, 403, 403)),
        ("GET", "/api/clients", None, (200, 200, 200, 200, 200)),
        ("GET", "/api/clients/KSL", None, (200, 200, 200, 200, 404)),
        ("GET", "/api/clients/NOPE", None, (404, 404, 404, 404, 404)),
        ("GET", "/api/messages", None, (200, 200, 200, 200, 200)),
        ("POST", "/api/messages", message, (201, 201, 201, 403, 403)),
        ("GET", "/api/obligations", None, (200, 200, 200, 200, 200)),
        ("POST", f"/api/obligations/{ksl_ob[0]}/done", {}, (200, 409, 403, 409, 404)),
        ("POST", f"/api/obligations/{ksl_ob[1]}/done", {}, (200, 409, 403, 409, 404)),
        ("POST", f"/api/obligations/{ksl_ob[2]}/cancel", {"note": "dup"},
         (200, 409, 403, 403, 403)),
        ("POST", f"/api/obligations/{ksl_ob[3]}/call", {"operator": "201"},
         (409, 409, 409, 403, 403)),  # no PBX connected in this test: refused, recorded
        ("POST", "/api/obligations/987654/done", {}, (404, 404, 403, 404, 404)),
        ("GET", "/api/wallboard", None, (200, 200, 403, 200, 200)),
        ("GET", "/api/alerts", None, (200, 200, 403, 403, 403)),
        ("GET", "/api/escalations", None, (200, 200, 403, 403, 403)),
        ("POST", "/api/escalations", {"reason": "complaint", "operator": "201"},
         (404, 404, 404, 403, 403)),  # operator 201 is on no call
        ("POST", "/api/spy", {"operator": "201", "mode": "whisper"},
         (400, 404, 403, 403, 403)),  # the admin user has no phone to ring
        ("GET", "/api/spy", None, (200, 200, 403, 403, 403)),
        ("GET", "/api/users", None, (200, 403, 403, 403, 403)),
        ("GET", "/api/screen/current", None, (200, 200, 200, 403, 403)),
        ("GET", "/api/status", None, (200, 200, 403, 403, 403)),
        ("POST", "/api/alerts/ack", {"key": "overdue:1"}, (200, 200, 403, 403, 403)),
        ("POST", "/api/alerts/ack", {"key": "<b>"}, (400, 400, 403, 403, 403)),
    ]
    failures = []
    for method, path, body, expected in matrix:
        for who, status in zip(ROLES, expected, strict=True):
            got, _ = await call(client, who, method, path, s.tokens, body)
            if got != status:
                failures.append(f"{who} {method} {path}: {got}, expected {status}")
        anonymous, _ = await call(client, None, method, path, s.tokens, body)
        if anonymous != 401:
            failures.append(f"anonymous {method} {path}: {anonymous}, expected 401")
    assert failures == []


async def test_client_users_see_only_their_client(api) -> None:  # type: ignore[no-untyped-def]
    client, s = api
    for who, mine in (("ksl", "KSL"), ("mdc", "MDC")):
        for path in ("/api/calls", "/api/messages", "/api/obligations", "/api/clients"):
            status, body = await call(client, who, "GET", path, s.tokens)
            assert status == 200
            items = body["items"]  # type: ignore[index]
            assert items, path
            field = "code" if path == "/api/clients" else "client"
            assert {item[field] for item in items} == {mine}, path
        # Asking for the other client by filter gives nothing, not an error.
        other = "MDC" if mine == "KSL" else "KSL"
        status, body = await call(client, who, "GET", f"/api/calls?client={other}", s.tokens)
        assert status == 200 and body["items"] == []  # type: ignore[index]
        status, body = await call(client, who, "GET", "/api/wallboard", s.tokens)
        assert {d["client"] for d in body["today"]} == {mine}  # type: ignore[index]
        response = await client.get("/api/calls.csv",
                                    headers={"Authorization": f"Bearer {s.tokens[who]}"})
        text = (await response.read()).decode("utf-8-sig")
        assert response.status == 200 and mine in text and other not in text


async def test_staff_see_every_client(api) -> None:  # type: ignore[no-untyped-def]
    client, s = api
    _, body = await call(client, "sup", "GET", "/api/calls", s.tokens)
    assert {item["client"] for item in body["items"]} == {"KSL", "MDC"}  # type: ignore[index]


async def test_bad_input_gets_clear_400s(api) -> None:  # type: ignore[no-untyped-def]
    client, s = api
    cases = [
        ("GET", "/api/calls?limit=0", None, "limit"),
        ("GET", "/api/calls?limit=lots", None, "limit"),
        ("GET", "/api/calls?outcome=lost", None, "outcome must be one of"),
        ("GET", "/api/calls?from=yesterday", None, "from is not an ISO date/time"),
        ("GET", "/api/calls?caller=abc", None, "caller is not a phone number"),
        ("GET", "/api/obligations?state=lost", None, "state must be among"),
        ("POST", "/api/messages", {"client": "KSL", "disposition": "later", "body": "x"},
         "disposition must be one of"),
        ("POST", "/api/messages", {"client": "KSL", "disposition": "urgent"}, "body is required"),
        ("POST", "/api/spy", {"operator": "201", "mode": "shout"}, "mode must be one of"),
        ("POST", "/api/escalations", {"reason": "bored"}, "reason must be one of"),
        ("POST", "/api/users", {"username": "x", "role": "king", "password": "12345678"},
         "role must be one of"),
        ("POST", "/api/users", {"username": "x", "role": "operator", "password": "short"},
         "at least 8"),
    ]
    for method, path, body, words in cases:
        status, answer = await call(client, "admin", method, path, s.tokens, body)
        assert status == 400, (path, status, answer)
        assert words in answer["error"], (path, answer)  # type: ignore[index]
    response = await client.post("/api/messages", data=b"{not json",
                                 headers={"Authorization": f"Bearer {s.tokens['op']}",
                                          "Content-Type": "application/json"})
    assert response.status == 400 and (await response.json())["error"] == "body is not JSON"


async def test_cookie_sessions_need_the_csrf_token(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    response = await client.post("/api/login", json={"username": "op", "password": PASSWORD})
    assert response.status == 200
    csrf = (await response.json())["csrf_token"]
    assert "HttpOnly" in response.headers["Set-Cookie"]
    assert "SameSite=Strict" in response.headers["Set-Cookie"]
    message = {"client": "KSL", "disposition": "info_only", "body": "hello"}
    assert (await client.get("/api/me")).status == 200
    assert (await client.post("/api/messages", json=message)).status == 403
    assert (await client.post("/api/messages", json=message,
                              headers={"X-CSRF-Token": "wrong"})).status == 403
    assert (await client.post("/api/messages", json=message,
                              headers={"X-CSRF-Token": csrf})).status == 201
    assert (await client.post("/api/logout", json={},
                              headers={"X-CSRF-Token": csrf})).status == 200
    assert (await client.get("/api/me")).status == 401


async def test_failed_logins_are_limited_and_never_log_the_password(  # type: ignore[no-untyped-def]
        api, capfd) -> None:
    client, _ = api
    for _ in range(5):
        response = await client.post("/api/login",
                                     json={"username": "ksl", "password": "guess-12345"})
        assert response.status == 401
    response = await client.post("/api/login", json={"username": "ksl", "password": PASSWORD})
    assert response.status == 429 and "Retry-After" in response.headers
    other = await client.post("/api/login", json={"username": "mdc", "password": PASSWORD})
    assert other.status == 200
    logs = capfd.readouterr().err
    assert "login_failed" in logs and "guess-12345" not in logs and PASSWORD not in logs


async def test_openapi_document_lists_every_endpoint(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    document = await (await client.get("/api/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    for path in ("/api/calls", "/api/obligations/{obligation_id}/done", "/api/spy",
                 "/api/stream", "/api/wallboard"):
        assert path in document["paths"]
    assert "roles: admin, supervisor" in document["paths"]["/api/spy"]["post"]["description"]


async def test_me_says_which_zone_the_pages_show_times_in(api, pool) -> None:  # type: ignore[no-untyped-def]
    """A client user reads its client's time; staff the company's (company_timezone)."""
    client, seeded = api
    async with pool.acquire() as conn:
        await conn.execute("UPDATE clients SET timezone = 'America/New_York' WHERE code = 'MDC'")
    zones = {}
    for who in ("mdc", "ksl", "sup"):
        status, body = await call(client, who, "GET", "/api/me", seeded.tokens)
        assert status == 200 and isinstance(body, dict)
        zones[who] = body["timezone"]
    assert zones == {"mdc": "America/New_York", "ksl": "Asia/Tokyo", "sup": "Asia/Tokyo"}
