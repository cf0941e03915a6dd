"""Throw-away databases on the configured server, for ``replay`` and for tests."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from service.store.db import migrate_url


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database.

    >>> with_database("postgresql://postgres:@/postgres?host=/tmp/pg", "x")
    'postgresql://postgres:@/x?host=/tmp/pg'
    """
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@asynccontextmanager
async def scratch_database(server_url: str, prefix: str = "orikaeshi_scratch",
                           keep: bool = False) -> AsyncIterator[str]:
    """Create a migrated database, yield its URL, drop it afterwards (unless ``keep``)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(server_url, name)
    try:
        await migrate_url(url)
        yield url
    finally:
        if not keep:
            admin = await asyncpg.connect(server_url, timeout=10)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
