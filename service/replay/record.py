"""``orikaeshi record``: save a PBX's AMI stream for later replay.

Writes the ``ami.jsonl`` format of ../shared/asterisk-traces (``t`` = seconds since the
recording started, headers in wire order, duplicates kept), or the exact bytes with
``--raw``.  Reconnects after a disconnect and goes on, each session after its own banner.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import IO

from service.ami.adapter import check_action
from service.ami.parser import AmiMessage, AmiParser, BadMessage, Banner
from service.config import PbxConfig
from service.logs import get_logger

log = get_logger(__name__)


def _jsonl(message: AmiMessage, t: float, conn: int) -> str:
    headers: list[list[str]] = []
    for key, value in message.items():
        values = message.repeated.get(key, [value]) if message.repeated else [value]
        headers.extend([key, item] for item in values)
    return json.dumps({"t": round(t, 6), "conn": conn, "headers": headers}, ensure_ascii=False)


async def record(pbx: PbxConfig, out: Path, *, seconds: float | None = None,
                 raw: bool = False, read_timeout: float = 30.0) -> int:
    """Record until ``seconds`` have passed (or forever); return the number of messages."""
    start = time.monotonic()
    deadline = None if seconds is None else start + seconds
    count = 0
    conn = 0
    with out.open("ab") as handle:
        while deadline is None or time.monotonic() < deadline:
            conn += 1
            try:
                count += await _one_session(pbx, handle, raw, conn, start, deadline,
                                            read_timeout)
            except (OSError, TimeoutError) as exc:
                log.warning("record_session_ended", pbx=pbx.pbx_id, error=str(exc))
                await asyncio.sleep(1.0)
    return count


async def _one_session(pbx: PbxConfig, handle: IO[bytes], raw: bool, conn: int,
                       start: float, deadline: float | None, read_timeout: float) -> int:
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection(pbx.ami_host, pbx.ami_port)
    login = {"Action": "Login", "Username": pbx.ami_username, "Secret": pbx.ami_secret,
             "Events": "on", "ActionID": "record-1"}
    check_action(login)
    writer.write("".join(f"{k}: {v}\r\n" for k, v in login.items()).encode() + b"\r\n")
    parser = AmiParser()
    count = 0
    try:
        while deadline is None or time.monotonic() < deadline:
            timeout = read_timeout if deadline is None else min(
                read_timeout, max(0.01, deadline - time.monotonic()))
            try:
                async with asyncio.timeout(timeout):
                    data = await reader.read(65536)
            except TimeoutError:
                continue
            if not data:
                return count
            t = time.monotonic() - start
            if raw:
                handle.write(data)
            for item in parser.feed(data):
                if isinstance(item, Banner) and not raw:
                    banner = {"t": round(t, 6), "conn": conn,
                              "banner": "Asterisk Call Manager/" + item.version}
                    handle.write((json.dumps(banner) + "\n").encode())
                elif isinstance(item, AmiMessage):
                    count += 1
                    if not raw:
                        handle.write((_jsonl(item, t, conn) + "\n").encode("utf-8"))
                elif isinstance(item, BadMessage):
                    log.warning("record_bad_message", reason=item.reason)
            handle.flush()
    finally:
        writer.close()
    return count
