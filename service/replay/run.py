"""``orikaeshi replay``: a recording through the real adapter and ledger into a database.

The output (``--json``) is one JSON object per inbound call; its fields are a documented
contract (docs/replay-json.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from service.config import Config, PbxConfig
from service.ledger.pipeline import LedgerPipeline, build_pipeline
from service.replay.recording import has_times, load_recording
from service.replay.server import ReplayServer

REPORT_FIELDS = (
    "pbx", "linkedid", "client", "caller", "caller_number", "caller_name", "did", "started_at",
    "answered_at", "ended_at", "outcome", "wait_s", "talk_s", "answered_by", "escalated",
    "escalation_reason", "fallback_routed", "voicemail_left", "voicemail_box", "queues",
    "end_seen",
)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def inbound_report(conn: asyncpg.Connection, pbx_id: str) -> list[dict[str, Any]]:
    """The replay contract: one dict per inbound call of ``pbx_id``, oldest first."""
    rows = await conn.fetch(
        """SELECT c.*, coalesce((SELECT array_agg(s.queue ORDER BY s.seq) FROM stints s
                                 WHERE s.pbx_id = c.pbx_id AND s.linkedid = c.linkedid),
                                '{}') AS queues
           FROM calls c WHERE c.pbx_id = $1 AND c.direction = 'inbound'
           ORDER BY c.started_at, c.linkedid""", pbx_id)
    return [{
        "pbx": r["pbx_id"], "linkedid": r["linkedid"], "client": r["client"],
        "caller": r["caller_e164"], "caller_number": r["caller_number"],
        "caller_name": r["caller_name"], "did": r["did"],
        "started_at": _iso(r["started_at"]), "answered_at": _iso(r["answered_at"]),
        "ended_at": _iso(r["ended_at"]), "outcome": r["outcome"],
        "wait_s": None if r["wait_s"] is None else round(r["wait_s"], 3),
        "talk_s": None if r["talk_s"] is None else round(r["talk_s"], 3),
        "answered_by": r["answered_by"], "escalated": r["escalated"],
        "escalation_reason": r["escalation_reason"], "fallback_routed": r["fallback_routed"],
        "voicemail_left": r["voicemail_left"], "voicemail_box": r["voicemail_box"],
        "queues": list(r["queues"]), "end_seen": r["end_seen"],
    } for r in rows]


@dataclasses.dataclass
class ReplayResult:
    pipeline: LedgerPipeline
    server: ReplayServer


async def replay_into(pool: asyncpg.Pool, config: Config, server: ReplayServer,
                      pbx_id: str = "replay", settle_s: float = 30.0) -> ReplayResult:
    """Serve ``server``'s recording to a real pipeline until every event is in the ledger."""
    port = await server.start()
    pbx = PbxConfig(pbx_id=pbx_id, ami_host="127.0.0.1", ami_port=port,
                    ami_username="replay", ami_secret="replay")
    fast = dataclasses.replace(config, ami_reconnect_min_s=0.05, ami_reconnect_max_s=0.2)
    pipeline = build_pipeline(fast, pbx, pool)
    runner = asyncio.create_task(pipeline.run(), name="replay-pipeline")
    try:
        async with asyncio.timeout(None if server.speed else settle_s * 20):
            await server.finished.wait()
        # A Ping is answered after everything sent before it: once it returns, every event
        # has been read and queued; then wait for the queue and the writer.
        await pipeline.client.logged_in.wait()
        await pipeline.client.send_action({"Action": "Ping"})
        await pipeline.client.drained()
        await pipeline.writer.flush(final=True)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await server.close()
    return ReplayResult(pipeline, server)


def open_server(path: Path, **options: Any) -> ReplayServer:
    return ReplayServer(load_recording(path), **options)


def untimed_warning(path: Path, server: ReplayServer) -> str | None:
    """One line for stderr when the recording carries no event times: the ledger then takes
    waits, talks and the short-abandon rule from Asterisk's own figures (HoldTime,
    TalkTime), and started/answered/ended times are those of the replay, not the PBX's."""
    if has_times(server.connections):
        return None
    return (f"orikaeshi replay: warning: {path} has no event times (no Timestamp, no EventTV "
            "anchor): waits and talks come from Asterisk's HoldTime/TalkTime, call times are "
            "replay times")
