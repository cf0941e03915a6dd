"""``orikaeshi users``: what an admin runs to let people in, as a process against a real
database."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg

from service.store import web_sql
from service.web.auth import verify_password


async def orikaeshi(db_url: str, tmp_path: Path, *args: str,
                    password: str | None = None) -> tuple[int, str, str]:
    env = {**os.environ, "DATABASE_URL": db_url, "ORIKAESHI_DATA_DIR": str(tmp_path)}
    env.pop("ORIKAESHI_PASSWORD", None)
    if password is not None:
        env["ORIKAESHI_PASSWORD"] = password
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "users", *args, env=env, cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


SAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "clients.sample.yaml"


async def load_sample_clients(db_url: str) -> None:
    from service.clients.store import load_document

    text = SAMPLE.read_text(encoding="utf-8")
    conn = await asyncpg.connect(db_url)
    try:
        await load_document(conn, text, "clients.sample.yaml")
    finally:
        await conn.close()


async def test_add_list_passwd_token(db_url: str, tmp_path: Path) -> None:
    await orikaeshi(db_url, tmp_path, "list")  # migrates the database
    await load_sample_clients(db_url)
    code, out, _ = await orikaeshi(db_url, tmp_path, "add", "sato", "--role", "supervisor",
                                   "--extension", "301", "--name", "佐藤", password="first pass")
    assert (code, out.strip()) == (0, "created sato (supervisor)")
    code, out, _ = await orikaeshi(db_url, tmp_path, "add", "ksl", "--role", "client",
                                   "--client", "KSL", password="client pass")
    assert code == 0
    code, out, _ = await orikaeshi(db_url, tmp_path, "list")
    rows = [line.split() for line in out.splitlines()]
    assert ["sato", "supervisor", "301"] in rows and ["ksl", "client", "KSL"] in rows

    code, out, _ = await orikaeshi(db_url, tmp_path, "passwd", "sato", password="second pass")
    assert (code, out.strip()) == (0, "password changed")
    code, out, _ = await orikaeshi(db_url, tmp_path, "token", "sato", "--name", "wallboard")
    token = out.strip()
    assert code == 0 and token.startswith("ork_")

    conn = await asyncpg.connect(db_url)
    try:
        found = await web_sql.user_for_login(conn, "sato")
        assert found is not None
        user, password_hash = found
        assert (user.role, user.extension, user.display_name) == ("supervisor", "301", "佐藤")
        assert verify_password(password_hash, "second pass")
        assert not verify_password(password_hash, "first pass")
        by_token = await web_sql.token_user(conn, token)
        assert by_token is not None and by_token.username == "sato"
        assert await web_sql.token_user(conn, token + "x") is None
    finally:
        await conn.close()


async def test_mistakes_are_refused_with_a_reason(db_url: str, tmp_path: Path) -> None:
    code, _, err = await orikaeshi(db_url, tmp_path, "add", "x", "--role", "client",
                                   password="long enough")
    assert code == 2 and "--client is required" in err
    code, _, err = await orikaeshi(db_url, tmp_path, "add", "x", "--role", "operator",
                                   password="short")
    assert code == 2 and "at least 8 characters" in err
    assert (await orikaeshi(db_url, tmp_path, "add", "x", "--role", "operator",
                            password="long enough"))[0] == 0
    code, _, err = await orikaeshi(db_url, tmp_path, "add", "x", "--role", "operator",
                                   password="long enough")
    assert code == 1 and "x exists" in err
    for command in ("passwd", "token"):
        code, _, err = await orikaeshi(db_url, tmp_path, command, "nobody",
                                       password="long enough")
        assert code == 1 and "no user nobody" in err
    code, _, err = await orikaeshi(db_url, tmp_path, "passwd", "x", password="short")
    assert code == 2 and "at least 8 characters" in err


async def test_a_client_user_needs_a_real_client(db_url: str, tmp_path: Path) -> None:
    code, _, err = await orikaeshi(db_url, tmp_path, "add", "x", "--role", "client",
                                   "--client", "NOPE", password="long enough")
    assert code == 2 and "no client NOPE" in err


async def test_ending_an_accounts_access(db_url: str, tmp_path: Path) -> None:
    """passwd, revoke-token, disable: each ends what it says, over the real API."""
    from aiohttp.test_utils import TestClient, TestServer

    from service.app import create_app, database_ctx
    from tests.webapp import web_config

    assert (await orikaeshi(db_url, tmp_path, "add", "sato", "--role", "supervisor",
                            password="first pass"))[0] == 0
    tokens = {}
    for name in ("wallboard", "script"):
        code, out, _ = await orikaeshi(db_url, tmp_path, "token", "sato", "--name", name)
        tokens[name] = out.strip()
    code, out, _ = await orikaeshi(db_url, tmp_path, "token", "sato", "--name", "old",
                                   "--days", "1")
    tokens["old"] = out.strip()
    app = create_app(web_config(tmp_path, db_url), [database_ctx])
    async with TestClient(TestServer(app)) as client:
        async def status(token: str) -> int:
            response = await client.get("/api/me",
                                        headers={"Authorization": f"Bearer {token}"})
            return response.status

        async def login(password: str) -> int:
            response = await client.post("/api/login",
                                         json={"username": "sato", "password": password})
            return response.status

        assert [await status(t) for t in tokens.values()] == [200, 200, 200]
        # Token expiry: the database's clock moved past it.
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 s' "
                               "WHERE name = 'old'")
        finally:
            await conn.close()
        assert await status(tokens["old"]) == 401
        # Bearer logout ends that token only.
        response = await client.post("/api/logout", json={},
                                     headers={"Authorization": f"Bearer {tokens['script']}"})
        assert response.status == 200
        assert (await status(tokens["script"]), await status(tokens["wallboard"])) == (401, 200)
        # revoke-token by name.
        code, out, _ = await orikaeshi(db_url, tmp_path, "revoke-token", "sato",
                                       "--name", "wallboard")
        assert (code, out.strip()) == (0, "revoked 1 token")
        assert await status(tokens["wallboard"]) == 401
        # A password change ends the cookie session and every token made before it.
        code, out, _ = await orikaeshi(db_url, tmp_path, "token", "sato", "--name", "new")
        new_token = out.strip()
        assert await login("first pass") == 200
        assert (await client.get("/api/me")).status == 200
        assert (await orikaeshi(db_url, tmp_path, "passwd", "sato",
                                password="second pass"))[0] == 0
        assert (await client.get("/api/me")).status == 401
        assert await status(new_token) == 401
        assert await login("first pass") == 401
        assert await login("second pass") == 200
        # disable: the session ends, logins are refused; enable lets them in again.
        code, _, _ = await orikaeshi(db_url, tmp_path, "token", "sato", "--name", "later")
        code, out, _ = await orikaeshi(db_url, tmp_path, "disable", "sato")
        assert code == 0 and "disabled sato" in out
        assert (await client.get("/api/me")).status == 401
        assert await login("second pass") == 401
        code, _, err = await orikaeshi(db_url, tmp_path, "token", "sato")
        assert code == 1 and "is disabled" in err
        assert (await orikaeshi(db_url, tmp_path, "enable", "sato"))[0] == 0
        assert await login("second pass") == 200
