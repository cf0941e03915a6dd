"""A durable, append-only spool for ledger records while PostgreSQL is away.

One JSON line per batch, fsynced before ``append`` returns, so a record handed to the spool
survives a crash or a restart of the service.  Replay reads the batches in order; a torn last
line (a crash during the write) is reported and skipped, never silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from service.logs import get_logger

log = get_logger(__name__)


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def pending(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def append(self, batch: list[Any]) -> None:
        line = json.dumps(batch, ensure_ascii=False, separators=(",", ":")) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def batches(self) -> Iterator[list[Any]]:
        """The spooled batches, oldest first."""
        if not self.pending:
            return
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.endswith(b"\n"):
                    log.error("spool_torn_line", path=str(self.path), line=number,
                              size=len(raw))
                    continue
                try:
                    yield json.loads(raw)
                except ValueError:
                    log.error("spool_bad_line", path=str(self.path), line=number)

    def clear(self) -> None:
        """Forget the spooled batches once they are safely in the database."""
        fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
