"""Following Master.csv (cdr_csv) and queue_log on the PBX host into the ``cdr`` and
``queue_log`` tables, the same tables cdr_pgsql and realtime queue_log write.

* Bounded: at most ``max_read`` bytes a read, whole lines only; a line longer than
  ``max_line`` (not something Asterisk writes) is skipped and counted, never buffered.
* Rotation: the open file is read to its end before the follower moves to the new file at
  the path (logrotate's rename, Asterisk's ``logger rotate``); a file truncated in place
  (copytruncate) is read again from its start.
* Exactly once: the rows and the new position are written in one transaction, and the
  tables' unique keys make a repeated line harmless (a restart, two instances).
* A line that is not what Asterisk writes is logged with its position and skipped.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import asyncpg

from service.logs import get_logger
from service.reconcile.asterisk_logs import CDR_COLUMNS, LogFormatError, read_cdr

log = get_logger(__name__)

KINDS = ("cdr", "queue_log")


@dataclass
class FollowStats:
    rows: int = 0
    bad_lines: int = 0
    rotations: int = 0


def cdr_values(line: str, tz: ZoneInfo) -> dict[str, Any]:
    """One Master.csv line as the ``cdr`` table's columns (times in UTC, naive).

    >>> row = cdr_values('"KSL","0901","0312","from-pstn","T <0901>","Local/a;2","",'
    ...                  '"Queue","q","2026-11-22 11:27:07","","2026-11-22 11:27:24",17,0,'
    ...                  '"NO ANSWER","DOCUMENTATION","1795346827.1",""', ZoneInfo("Asia/Tokyo"))
    >>> row["start"], row["answer"], row["uniqueid"], row["duration"]
    (datetime.datetime(2026, 11, 22, 2, 27, 7), None, '1795346827.1', 17)
    """
    [parsed] = read_cdr(line, tz)  # the project's one CDR reader validates the line
    fields = next(csv.reader(io.StringIO(line)))
    raw = dict(zip(CDR_COLUMNS, fields, strict=False))

    def utc(moment: datetime | None) -> datetime | None:
        return moment.astimezone(UTC).replace(tzinfo=None) if moment else None

    try:
        duration = int(raw.get("duration") or 0)
    except ValueError as exc:
        raise LogFormatError(f"duration {raw.get('duration')!r}") from exc
    return {"accountcode": parsed.accountcode, "src": parsed.src, "dst": parsed.dst,
            "dcontext": parsed.dcontext, "clid": raw.get("clid", ""),
            "channel": parsed.channel, "dstchannel": parsed.dstchannel,
            "lastapp": parsed.lastapp, "lastdata": raw.get("lastdata", ""),
            "start": utc(parsed.start), "answer": utc(parsed.answer), "end": utc(parsed.end),
            "duration": duration, "billsec": parsed.billsec,
            "disposition": parsed.disposition, "uniqueid": parsed.uniqueid,
            "userfield": raw.get("userfield", "")}


def queue_log_values(line: str) -> dict[str, Any]:
    """One queue_log line as the ``queue_log`` table's columns (adaptive: data1..data5).

    >>> queue_log_values("1795346837|1795346827.1|q-ksl|op201|CONNECT|4|1795346833.2|3")["data2"]
    '1795346833.2'
    """
    parts = line.split("|")
    if len(parts) < 5:
        raise LogFormatError(f"not a queue_log line: {line[:60]!r}")
    try:
        when = datetime.fromtimestamp(float(parts[0]), UTC).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError) as exc:
        raise LogFormatError(f"bad time {parts[0][:20]!r}") from exc
    data = parts[5:]
    # Adaptive realtime keeps five data fields; anything past the fifth stays in the fifth.
    slots = [*data[:4], "|".join(data[4:])] if len(data) > 5 else data
    slots += [""] * (5 - len(slots))
    return {"time": when, "callid": parts[1], "queuename": parts[2], "agent": parts[3],
            "event": parts[4], "data": "|".join(data),
            **{f"data{i + 1}": slots[i] for i in range(5)}}


class FileFollower:
    """One file of one PBX; ``poll`` ingests what was appended since the last one."""

    def __init__(self, pbx_id: str, path: Path, kind: str, clock_tz: str, *,
                 max_read: int = 1 << 20, max_line: int = 64 << 10,
                 max_reads_per_poll: int = 50) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        self.pbx_id, self.path, self.kind = pbx_id, path, kind
        self.tz = ZoneInfo(clock_tz)
        self.max_read, self.max_line, self.max_reads = max_read, max_line, max_reads_per_poll
        self.handle: IO[bytes] | None = None
        self.inode = 0
        self.position = 0
        self.skipping = False
        self.stats = FollowStats()

    async def close(self) -> None:
        if self.handle is not None:
            await asyncio.to_thread(self.handle.close)
            self.handle = None

    async def poll(self, pool: asyncpg.Pool) -> int:
        """Ingest appended whole lines (at most ``max_reads_per_poll`` reads); rows written."""
        written = 0
        if self.handle is None and not await self._open(pool):
            return 0
        for _ in range(self.max_reads):
            assert self.handle is not None
            chunk = await asyncio.to_thread(self._read)
            if chunk is None:  # at the end of the open file: rotated or truncated?
                if not await self._rotated():
                    break
                continue
            lines, consumed = chunk
            written += await self._store(pool, lines, self.position + consumed)
            self.position += consumed
        return written

    async def _open(self, pool: asyncpg.Pool) -> bool:
        try:
            handle = await asyncio.to_thread(self.path.open, "rb")
        except FileNotFoundError:
            return False
        inode = os.fstat(handle.fileno()).st_ino
        size = os.fstat(handle.fileno()).st_size
        async with pool.acquire() as conn:
            saved = await conn.fetchrow(
                "SELECT inode, position FROM reconcile_positions WHERE pbx_id = $1 AND path = $2",
                self.pbx_id, str(self.path))
        # The same file as last time: go on from there; another (rotated while we were
        # away) or a shorter one (truncated): from its start.
        same = saved is not None and saved["inode"] == inode and saved["position"] <= size
        self.handle, self.inode = handle, inode
        self.position = int(saved["position"]) if same and saved else 0
        return True

    def _read(self) -> tuple[list[str], int] | None:
        """Whole lines from ``position`` (bounded); None at the end of the file."""
        assert self.handle is not None
        self.handle.seek(self.position)
        data = self.handle.read(self.max_read)
        if self.skipping and data:
            # Inside an overlong line: drop it through its newline.
            cut = data.find(b"\n")
            if cut < 0:
                return [], len(data)
            self.skipping = False
            return [], cut + 1
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) >= self.max_line:
                # A line longer than anything Asterisk writes: skip to its end.
                log.error("reconcile_line_too_long", path=str(self.path),
                          position=self.position)
                self.stats.bad_lines += 1
                self.skipping = True
                return [], len(data)
            return None
        text = data[:end + 1].decode("utf-8", "replace")
        return [line for line in text.split("\n") if line.strip()], end + 1

    async def _rotated(self) -> bool:
        """Move to the file now at the path, if it is another one or was truncated."""
        assert self.handle is not None
        try:
            current = await asyncio.to_thread(os.stat, self.path)
        except FileNotFoundError:
            return False  # rotated away, the new one not created yet: keep the old one
        if current.st_ino == self.inode and current.st_size >= self.position:
            return False
        await self.close()
        self.stats.rotations += 1
        log.info("reconcile_file_rotated", path=str(self.path))
        handle = await asyncio.to_thread(self.path.open, "rb")
        self.handle, self.inode, self.position = handle, os.fstat(handle.fileno()).st_ino, 0
        return True

    async def _store(self, pool: asyncpg.Pool, lines: list[str], position: int) -> int:
        rows = []
        for number, line in enumerate(lines):
            try:
                rows.append(cdr_values(line, self.tz) if self.kind == "cdr"
                            else queue_log_values(line))
            except (LogFormatError, ValueError) as exc:
                self.stats.bad_lines += 1
                log.error("reconcile_bad_line", path=str(self.path), position=self.position,
                          line_in_chunk=number, error=str(exc)[:200])
        source = f"file:{self.path}"
        async with pool.acquire() as conn, conn.transaction():
            written = 0
            for row in rows:
                columns = ["pbx_id", "source", *row]
                values = [self.pbx_id, source, *row.values()]
                names = ", ".join(f'"{c}"' for c in columns)
                marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
                status = await conn.execute(
                    f"INSERT INTO {self.kind} ({names}) VALUES ({marks}) "
                    "ON CONFLICT DO NOTHING", *values)
                written += int(status.rsplit(" ", 1)[-1])
            await conn.execute(
                """INSERT INTO reconcile_positions (pbx_id, path, inode, position)
                   VALUES ($1, $2, $3, $4)
                   ON CONFLICT (pbx_id, path) DO UPDATE SET inode = EXCLUDED.inode,
                       position = EXCLUDED.position, updated_at = now()""",
                self.pbx_id, str(self.path), self.inode, position)
        self.stats.rows += written
        return written
