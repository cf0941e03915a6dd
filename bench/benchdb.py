"""The benches' big databases: kept between runs while they are what the bench needs, built
again otherwise; bulk loads without the secondary indexes, built once at the end."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from service.store.db import migrate_url
from service.store.scratch import with_database


async def kept_or_new(server_url: str, name: str,
                      is_current: Callable[[asyncpg.Connection], Awaitable[bool]]
                      ) -> tuple[str, bool]:
    """The database ``name`` (migrated) and True when ``is_current`` says the one there is
    still right; else it is dropped and created empty (migrated), and False."""
    url = with_database(server_url, name)
    admin = await asyncpg.connect(server_url)
    try:
        if await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            conn = await asyncpg.connect(url)
            try:
                current = await is_current(conn)
            except asyncpg.UndefinedTableError:
                current = False
            finally:
                await conn.close()
            if current:
                await migrate_url(url)
                return url, True
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    await migrate_url(url)
    return url, False


async def drop_secondary_indexes(conn: asyncpg.Connection, table: str) -> list[str]:
    """Drop the table's indexes but its keys (as the migrations made them); returns their
    definitions, to build them again after a bulk load (far faster than row by row)."""
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 "
        "AND indexname NOT LIKE '%pkey' AND indexname NOT LIKE '%_key'", table)
    for index in indexes:
        await conn.execute(f'DROP INDEX "{index["indexname"]}"')
    return [index["indexdef"] for index in indexes]


async def kept_with_layout(server_url: str, name: str, layout: str) -> tuple[str, bool]:
    """:func:`kept_or_new` for a database whose builder wrote ``layout`` as the comment of
    its ``calls`` table once built (a changed layout builds it again)."""

    async def is_current(conn: asyncpg.Connection) -> bool:
        return bool(await conn.fetchval("SELECT obj_description('calls'::regclass)") == layout)

    return await kept_or_new(server_url, name, is_current)
