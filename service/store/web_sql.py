"""SQL of users, sessions, API tokens and login failures."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import asyncpg


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    client: str | None
    extension: str | None
    display_name: str

    @property
    def clients(self) -> list[str] | None:
        """The clients this user may see: one for a client user, all (None) otherwise."""
        return [self.client] if self.role == "client" and self.client else None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: asyncpg.Record) -> User:
    return User(row["id"], row["username"], row["role"], row["client"], row["extension"],
                row["display_name"])


async def create_user(conn: asyncpg.Connection, username: str, password_hash: str, role: str,
                      *, client: str | None = None, extension: str | None = None,
                      display_name: str = "") -> User:
    row = await conn.fetchrow(
        """INSERT INTO users (username, password_hash, role, client, extension, display_name)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING *""",
        username, password_hash, role, client, extension, display_name)
    assert row is not None
    return _user(row)


async def user_for_login(conn: asyncpg.Connection, username: str) -> tuple[User, str] | None:
    row = await conn.fetchrow("SELECT * FROM users WHERE username = $1 AND active", username)
    return None if row is None else (_user(row), row["password_hash"])


async def set_password_hash(conn: asyncpg.Connection, user_id: int, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id,
                       password_hash)


async def new_session(conn: asyncpg.Connection, user_id: int, lifetime: timedelta
                      ) -> tuple[str, str]:
    """(cookie token, CSRF token); only the cookie's hash is stored."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    await conn.execute(
        "INSERT INTO web_sessions (token_hash, user_id, csrf_token, expires_at) "
        "VALUES ($1, $2, $3, now() + $4::interval)", digest(token), user_id, csrf, lifetime)
    return token, csrf


async def session_user(conn: asyncpg.Connection, token: str) -> tuple[User, str] | None:
    row = await conn.fetchrow(
        """SELECT u.*, s.csrf_token FROM web_sessions s JOIN users u ON u.id = s.user_id
           WHERE s.token_hash = $1 AND s.expires_at > now() AND u.active""", digest(token))
    return None if row is None else (_user(row), row["csrf_token"])


async def end_session(conn: asyncpg.Connection, token: str) -> None:
    await conn.execute("DELETE FROM web_sessions WHERE token_hash = $1", digest(token))


async def new_api_token(conn: asyncpg.Connection, user_id: int, name: str) -> str:
    token = "ork_" + secrets.token_urlsafe(32)
    await conn.execute("INSERT INTO api_tokens (user_id, token_hash, name) VALUES ($1, $2, $3)",
                       user_id, digest(token), name)
    return token


async def token_user(conn: asyncpg.Connection, token: str) -> User | None:
    row = await conn.fetchrow(
        """UPDATE api_tokens t SET last_used_at = now() FROM users u
           WHERE t.token_hash = $1 AND NOT t.revoked AND u.id = t.user_id AND u.active
           RETURNING u.*""", digest(token))
    return None if row is None else _user(row)


async def recent_failures(conn: asyncpg.Connection, username: str, address: str,
                          window: timedelta) -> tuple[int, int]:
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM login_failures
                    WHERE username = $1 AND at > now() - $3::interval) AS by_user,
                  (SELECT count(*) FROM login_failures
                    WHERE address = $2 AND at > now() - $3::interval) AS by_address""",
        username, address, window)
    assert row is not None
    return int(row["by_user"]), int(row["by_address"])


async def note_failure(conn: asyncpg.Connection, username: str, address: str) -> None:
    await conn.execute("INSERT INTO login_failures (username, address) VALUES ($1, $2)",
                       username[:200], address[:100])


async def list_users(conn: asyncpg.Connection) -> list[User]:
    return [_user(r) for r in await conn.fetch("SELECT * FROM users ORDER BY username")]
