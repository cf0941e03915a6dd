"""Asterisk's side of FastAGI, for tests and benchmarks: send the agi_* headers, answer every
command line, collect what the server sent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence


def default_reply(command: str) -> str:
    """What Asterisk answers: EXEC gives the application's result (0 when it ran), SET
    VARIABLE gives 1."""
    return "200 result=0" if command.startswith("EXEC ") else "200 result=1"


async def agi_session(port: int, headers: Sequence[tuple[str, str]],
                      reply: Callable[[str], str] = default_reply,
                      timeout: float = 10.0, source: str | None = None) -> list[str]:
    """One session against 127.0.0.1:port (from the loopback address ``source``, e.g. a
    second "PBX" at 127.0.0.2); returns the command lines received."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(source, 0) if source else None)
    block = "".join(f"{k}: {v}\n" for k, v in headers) + "\n"
    writer.write(block.encode("utf-8"))
    commands: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    line = await reader.readline()
                except ConnectionResetError:  # a refused session may be reset
                    break
                if not line:
                    break
                command = line.decode("utf-8").rstrip("\n")
                commands.append(command)
                writer.write((reply(command) + "\n").encode("utf-8"))
                await writer.drain()
    finally:
        writer.close()
    return commands


def route_headers(did: str, caller: str, name: str = "Tanaka",
                  uniqueid: str = "1795346827.1", script: str = "route") -> list[tuple[str, str]]:
    """Headers as Asterisk sends them for AGI(agi://host/route,<DID>) (from agi.jsonl)."""
    return [("agi_network", "yes"), ("agi_network_script", script),
            ("agi_request", f"agi://127.0.0.1/{script}"),
            ("agi_channel", f"Local/{did}@from-pstn-00000000;2"), ("agi_language", "en"),
            ("agi_type", "Local"), ("agi_uniqueid", uniqueid), ("agi_version", "GIT-master"),
            ("agi_callerid", caller), ("agi_calleridname", name), ("agi_callingpres", "0"),
            ("agi_callingani2", "0"), ("agi_callington", "0"), ("agi_callingtns", "0"),
            ("agi_dnid", "unknown"), ("agi_rdnis", "unknown"), ("agi_context", "from-pstn"),
            ("agi_extension", did), ("agi_priority", "4"), ("agi_enhanced", "0.0"),
            ("agi_accountcode", ""), ("agi_threadid", "140439889888960"), ("agi_arg_1", did)]
