"""``orikaeshi purge``: each client's calls, messages, closed call backs, outbound decisions,
scheduled call backs that are over, Asterisk's CDR / queue_log copies of purged calls and
voicemail recordings older than its retention period are deleted (a dry run counts them);
what an open call back or a reconciliation difference still needs is kept
(service/store/retention_sql.py).  Clients without a retention period keep everything.
Every purge is written to the audit."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from service.clients.store import current_directory
from service.localtime import local_iso
from service.logs import get_logger
from service.store import retention_sql
from service.store.reports_sql import audit

log = get_logger(__name__)


def cutoff(now: datetime, retention_s: float | None) -> datetime | None:
    """Data from before this instant is past the retention period (None: kept for ever).

    >>> from datetime import UTC
    >>> cutoff(datetime(2026, 12, 20, tzinfo=UTC), 30 * 86400).isoformat()
    '2026-11-20T00:00:00+00:00'
    """
    return None if retention_s is None else now - timedelta(seconds=retention_s)


@dataclass
class ClientPurge:
    client: str
    cutoff: datetime
    rows: dict[str, int]
    recordings: int = 0
    recording_files: list[Path] = field(default_factory=list)
    timezone: str | None = None  # the client's: the cutoff is shown in it


def old_recordings(spool: Path, mailbox: str, before: datetime) -> list[Path]:
    """Files of voicemail messages in Asterisk's spool for ``mailbox`` (``1001@lab``: folder
    ``<spool>/lab/1001``) recorded before ``before``: each ``msgNNNN.txt`` says its
    ``origtime`` (epoch seconds); its sibling audio files (``msgNNNN.*``) go with it."""
    box, _, context = mailbox.partition("@")
    folder = spool / (context or "default") / box
    if not folder.is_dir():
        return []
    found: list[Path] = []
    for info in sorted(folder.glob("*/msg*.txt")):
        try:
            text = info.read_text(encoding="utf-8", errors="replace")[:8192]
        except OSError:
            continue
        origtime = next((line.split("=", 1)[1].strip() for line in text.splitlines()
                         if line.startswith("origtime=")), "")
        if origtime.isdigit() and int(origtime) < before.timestamp():
            found.extend(sorted(info.parent.glob(info.stem + ".*")))
    return found


async def purge(conn: asyncpg.Connection, now: datetime, *, dry_run: bool, actor: str,
                client: str | None = None, voicemail_spool: Path | None = None
                ) -> list[ClientPurge]:
    """Purge (or count, with ``dry_run``) every client with a retention period."""
    directory = await current_directory(conn)
    results = []
    for row in await retention_sql.clients_with_retention(conn, client):
        before = cutoff(now, row["retention_s"])
        assert before is not None
        if dry_run:
            rows = await retention_sql.count(conn, row["code"], before)
        else:
            rows = await retention_sql.delete(conn, row["code"], before)
        result = ClientPurge(row["code"], before, rows, timezone=row["timezone"])
        settings = directory.clients.get(row["code"]) if directory else None
        if voicemail_spool is not None and settings is not None and settings.voicemail:
            files = await asyncio.to_thread(old_recordings, voicemail_spool,
                                            settings.voicemail, before)
            result.recording_files = files
            result.recordings = len([f for f in files if f.suffix == ".txt"])
            if not dry_run:
                for path in files:
                    await asyncio.to_thread(path.unlink, True)
        await audit(conn, actor, "purge_dry_run" if dry_run else "purge", row["code"],
                    f"before={local_iso(before, row['timezone'])} "
                    f"recordings={result.recordings} " +
                    " ".join(f"{k}={v}" for k, v in rows.items()))
        if not dry_run:
            log.info("purged", client=row["code"], before=before.isoformat(),
                     recordings=result.recordings, **rows)
        results.append(result)
    return results
