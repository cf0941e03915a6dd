"""At start: is the configured clients file the version the service routes with?

The file only seeds an empty database; after that ``orikaeshi clients load FILE`` makes a
new version.  An admin who edits the file and restarts must not be left guessing: the
service says whether the file matches the loaded version, and, with
``clients_file_load = true``, loads it (when it is valid) as a new version.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from service.clients.schema import ClientsFileError
from service.clients.store import load_document
from service.logs import get_logger

log = get_logger(__name__)


async def check_clients_file(pool: asyncpg.Pool, path: Path | None, *, load: bool) -> str:
    """Compare ``path`` with the newest loaded version; returns what was found:
    ``none`` (no file configured), ``unreadable``, ``not_loaded`` (the routing cache seeds
    it), ``same``, ``differs``, ``loaded`` or ``invalid``."""
    if path is None:
        return "none"
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except OSError as exc:
        log.error("clients_file_unreadable", file=str(path), error=str(exc))
        return "unreadable"
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT version, source, source_text, loaded_at, loaded_by "
                                  "FROM routing_documents ORDER BY version DESC LIMIT 1")
        if row is None:
            return "not_loaded"
        if row["source_text"] == text:
            log.info("clients_file_matches", file=str(path), version=row["version"])
            return "same"
        if not load:
            log.warning(
                "clients_file_differs", file=str(path), version=row["version"],
                loaded_from=row["source"], loaded_at=row["loaded_at"].isoformat(),
                hint=f"routing uses version {row['version']}; to use the file run "
                     f"`orikaeshi clients load {path}`, or set clients_file_load = true")
            return "differs"
        try:
            version, _ = await load_document(conn, text, str(path),
                                             loaded_by="serve (clients_file_load)")
        except ClientsFileError as exc:
            log.error("clients_file_invalid", file=str(path), version_kept=row["version"],
                      errors=exc.errors)
            return "invalid"
    log.warning("clients_file_loaded", file=str(path), version=version,
                previous=row["version"])
    return "loaded"
