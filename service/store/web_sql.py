"""SQL of users, sessions, API tokens and login failures."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
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
    """A new password ends every session and API token made before it (a password is
    changed because it may be known to someone else)."""
    await conn.execute("UPDATE users SET password_hash = $2, credentials_since = "
                       "clock_timestamp() WHERE id = $1", user_id, password_hash)


async def end_credentials(conn: asyncpg.Connection, user_id: int, *,
                          disable: bool = False) -> None:
    """Void every session and token of a user now; ``disable`` also refuses new logins."""
    await conn.execute("UPDATE users SET credentials_since = clock_timestamp(), "
                       "active = active AND NOT $2 WHERE id = $1", user_id, disable)
    await conn.execute("DELETE FROM web_sessions WHERE user_id = $1", user_id)
    await conn.execute("UPDATE api_tokens SET revoked = true WHERE user_id = $1", user_id)


async def enable_user(conn: asyncpg.Connection, user_id: int) -> None:
    await conn.execute("UPDATE users SET active = true WHERE id = $1", user_id)


async def revoke_token(conn: asyncpg.Connection, user_id: int, name: str | None,
                       token: str | None = None) -> int:
    """Revoke a user's tokens by name (or the one whose value is ``token``); how many."""
    result = await conn.execute(
        "UPDATE api_tokens SET revoked = true WHERE user_id = $1 AND NOT revoked "
        "AND ($2::text IS NULL OR name = $2) AND ($3::text IS NULL OR token_hash = $3)",
        user_id, name, digest(token) if token else None)
    return int(result.split()[-1])


async def revoke_token_value(conn: asyncpg.Connection, token: str) -> None:
    """Bearer logout: the token used for the request stops working."""
    await conn.execute("UPDATE api_tokens SET revoked = true WHERE token_hash = $1",
                       digest(token))


async def user_by_name(conn: asyncpg.Connection, username: str) -> User | None:
    """A user whether active or not (the CLI manages disabled users too)."""
    row = await conn.fetchrow("SELECT * FROM users WHERE username = $1", username)
    return None if row is None else _user(row)


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
           WHERE s.token_hash = $1 AND s.expires_at > now() AND u.active
             AND s.created_at >= u.credentials_since""", digest(token))
    return None if row is None else (_user(row), row["csrf_token"])


async def end_session(conn: asyncpg.Connection, token: str) -> None:
    await conn.execute("DELETE FROM web_sessions WHERE token_hash = $1", digest(token))


async def new_api_token(conn: asyncpg.Connection, user_id: int, name: str,
                        lifetime: timedelta | None = None) -> str:
    """A bearer token, shown once; it expires after ``lifetime`` (None: never)."""
    token = "ork_" + secrets.token_urlsafe(32)
    await conn.execute("INSERT INTO api_tokens (user_id, token_hash, name, expires_at) "
                       "VALUES ($1, $2, $3, now() + $4::interval)",
                       user_id, digest(token), name, lifetime)
    return token


async def token_user(conn: asyncpg.Connection, token: str) -> User | None:
    row = await conn.fetchrow(
        """UPDATE api_tokens t SET last_used_at = now() FROM users u
           WHERE t.token_hash = $1 AND NOT t.revoked AND u.id = t.user_id AND u.active
             AND (t.expires_at IS NULL OR t.expires_at > now())
             AND t.created_at >= u.credentials_since
           RETURNING u.*""", digest(token))
    return None if row is None else _user(row)


async def reserve_login_attempt(conn: asyncpg.Connection, keys: list[str],
                                window: timedelta,
                                wait_for: Callable[[str, int, float], float]) -> float:
    """Count one login attempt against every key, atomically; or refuse it.

    Under the keys' row locks: failures older than ``window`` are forgotten; if
    ``wait_for(key, failures, seconds_since_last)`` says some key must still wait, nothing is
    counted and the longest wait is returned; else the attempt is counted as a failure now
    (``give_back_login_attempt`` returns it on success) and 0.0 is returned.  Concurrent
    guesses therefore queue on the lock and each sees the ones before it.
    """
    keys = sorted(set(keys))
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO login_throttle (key, failures, last_at) "
            "SELECT k, 0, now() FROM unnest($1::text[]) AS k ON CONFLICT (key) DO NOTHING",
            keys)
        rows = await conn.fetch(
            """SELECT key, CASE WHEN last_at < now() - $2::interval THEN 0 ELSE failures END
                          AS failures,
                      extract(epoch FROM clock_timestamp() - last_at)::float8 AS since
               FROM login_throttle WHERE key = ANY($1) ORDER BY key FOR UPDATE""",
            keys, window)
        wait = max((wait_for(r["key"], r["failures"], r["since"]) for r in rows),
                   default=0.0)
        if wait > 0:
            return wait
        await conn.execute(
            """UPDATE login_throttle SET last_at = clock_timestamp(),
                      failures = CASE WHEN last_at < now() - $2::interval THEN 1
                                      ELSE failures + 1 END
               WHERE key = ANY($1)""", keys, window)
    return 0.0


async def give_back_login_attempt(conn: asyncpg.Connection, forget: list[str],
                                  decrement: list[str]) -> None:
    """A successful login: its source stops being suspect for that name (``forget``), and
    the attempt no longer counts against the source as a whole (``decrement``)."""
    await conn.execute("DELETE FROM login_throttle WHERE key = ANY($1)", forget)
    await conn.execute("UPDATE login_throttle SET failures = greatest(failures - 1, 0) "
                       "WHERE key = ANY($1)", decrement)


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
