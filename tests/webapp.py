"""A running web application over a real database, with a user of every role and calls,
call backs and messages for two clients (KSL and MDC), for API and browser tests."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from service.clients.store import load_document
from service.config import Config
from service.messages.service import NewMessage, take_message
from service.store import web_sql
from service.store.callbacks_sql import open_or_join
from service.web.auth import hash_password
from tests.replaying import config_for

SAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "clients.sample.yaml"
PASSWORD = "correct horse battery"
USERS = {  # username: (role, client, extension)
    "admin": ("admin", None, None),
    "sup": ("supervisor", None, "301"),
    "op": ("operator", None, "201"),
    "ksl": ("client", "KSL", None),
    "mdc": ("client", "MDC", None),
}


@dataclass
class Seeded:
    tokens: dict[str, str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)        # client -> a call id
    linkedids: dict[str, str] = field(default_factory=dict)    # client -> its linkedid
    obligations: dict[str, list[int]] = field(default_factory=dict)


async def seed(pool: asyncpg.Pool, *, caller_name: str = "田中太郎") -> Seeded:
    seeded = Seeded()
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        await load_document(conn, SAMPLE.read_text(), "clients.sample.yaml")
        password_hash = hash_password(PASSWORD)
        for username, (role, client, extension) in USERS.items():
            user = await web_sql.create_user(conn, username, password_hash, role, client=client,
                                             extension=extension, display_name=username)
            seeded.tokens[username] = await web_sql.new_api_token(conn, user.id, "test")
        for i, (client, did) in enumerate((("KSL", "0312345678"), ("MDC", "0663330001"))):
            linkedid = f"1795346827.{i}"
            seeded.calls[client] = await conn.fetchval(
                """INSERT INTO calls (pbx_id, linkedid, direction, client, did, caller_number,
                       caller_e164, caller_name, uniqueids, started_at, answered_at, ended_at,
                       outcome, wait_s, talk_s, answered_by)
                   VALUES ('pbx1', $1, 'inbound', $2, $3, '09011112222', '+819011112222',
                           $4, $5, $6, $7, $8, 'answered', 3.5, 40, '201') RETURNING id""",
                linkedid, client, did, caller_name, [linkedid], now - timedelta(minutes=30),
                now - timedelta(minutes=29), now - timedelta(minutes=28))
            seeded.linkedids[client] = linkedid
            await conn.execute(
                """INSERT INTO calls (pbx_id, linkedid, direction, client, did, caller_number,
                       caller_e164, started_at, ended_at, outcome, wait_s)
                   VALUES ('pbx1', $1, 'inbound', $2, $3, '0312340000', '+81312340000',
                           $4, $5, 'abandoned', 12)""",
                f"{linkedid}9", client, did, now - timedelta(minutes=20),
                now - timedelta(minutes=19))
            seeded.obligations[client] = [
                await open_or_join(conn, client, f"+8190{n:08d}", f"090{n:08d}",
                                   now - timedelta(hours=1), 86400, "missed", None)
                for n in range(i * 10, i * 10 + 6)]
            await take_message(conn, NewMessage(client=client, disposition="info_only",
                                                body=f"message for {client}",
                                                caller_number="09011112222",
                                                caller_name=caller_name))
    return seeded


def web_config(tmp_path: Path, db_url: str, **changes: Any) -> Config:
    return dataclasses.replace(config_for(tmp_path), database_url=db_url, **changes)
