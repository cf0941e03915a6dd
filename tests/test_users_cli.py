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


async def test_add_list_passwd_token(db_url: str, tmp_path: Path) -> None:
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
