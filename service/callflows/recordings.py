"""Call recordings (MixMonitor, dialplan/recording.conf): rows, playback rules, retention.

One file per call, ``orikaeshi/<linkedid>.wav`` under the PBX's monitor spool
(``[[pbx]] recordings_dir``).  Who may play one: admins and supervisors, and a client's users
for that client's calls only; operators may not.  Every playback or download is audited
(``recording_audit``) before a byte is sent.  :func:`delete_recordings_before` removes files
and marks rows deleted, for the retention rules.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from service.ami.adapter import AmiClient, AmiError
from service.logs import get_logger

log = get_logger(__name__)

PLAYERS = ("admin", "supervisor", "client")
_LINKEDID = re.compile(r"^[0-9]{1,20}\.[0-9]{1,10}$")


class RecordingError(Exception):
    """The recording cannot be started or served (the message says why)."""


def file_name(linkedid: str) -> str:
    """The file MixMonitor writes for a call, relative to the monitor spool.

    >>> file_name("1796159055.0")
    'orikaeshi/1796159055.0.wav'
    """
    if not _LINKEDID.match(linkedid):
        raise RecordingError(f"not a linkedid: {linkedid!r}")
    return f"orikaeshi/{linkedid}.wav"


def may_play(role: str, user_client: str | None, recording_client: str | None) -> bool:
    """Whether a user may play a recording: staff above operators, or the call's client.

    >>> may_play("supervisor", None, "KSL"), may_play("client", "KSL", "KSL")
    (True, True)
    >>> may_play("client", "MDC", "KSL"), may_play("operator", None, "KSL")
    (False, False)
    """
    if role in ("admin", "supervisor"):
        return True
    return role == "client" and user_client is not None and user_client == recording_client


def on_demand_allowed(policy: str) -> bool:
    """A recording may be started from the page only for a client whose policy says so
    ("all" already records every call; "none" means never).

    >>> on_demand_allowed("on_demand"), on_demand_allowed("none"), on_demand_allowed("all")
    (True, False, False)
    """
    return policy == "on_demand"


async def record_started(conn: asyncpg.Connection, *, pbx_id: str, linkedid: str,
                         client: str | None, reason: str, requested_by: str | None,
                         at: datetime) -> int:
    """Keep the row of a recording that has started (the same call twice: one row)."""
    recording_id: int = await conn.fetchval(
        """INSERT INTO recordings (pbx_id, linkedid, client, file_name, reason, requested_by,
               started_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (pbx_id, linkedid) DO UPDATE SET deleted_at = NULL
           RETURNING id""",
        pbx_id, linkedid, client, file_name(linkedid), reason, requested_by, at)
    return recording_id


async def start_on_demand(ami: AmiClient, conn: asyncpg.Connection, *, pbx_id: str,
                          caller_channel: str, linkedid: str, client: str | None,
                          requested_by: str, at: datetime) -> int:
    """Start MixMonitor on the caller's channel now (a client whose policy is on_demand:
    :func:`on_demand_allowed`)."""
    try:
        answer = await ami.send_action({"Action": "MixMonitor", "Channel": caller_channel,
                                        "File": file_name(linkedid), "Options": "b"})
    except AmiError as exc:
        raise RecordingError(f"the PBX did not start the recording: {exc}") from exc
    if getattr(answer, "response", "") != "Success":
        raise RecordingError("the PBX refused the recording: " +
                             getattr(answer, "message", ""))
    recording_id = await record_started(conn, pbx_id=pbx_id, linkedid=linkedid, client=client,
                                        reason="on_demand", requested_by=requested_by, at=at)
    await audit(conn, recording_id, requested_by, "staff", "start", at)
    return recording_id


async def audit(conn: asyncpg.Connection, recording_id: int, username: str, role: str,
                action: str, at: datetime) -> None:
    await conn.execute("INSERT INTO recording_audit (recording_id, username, role, action, at) "
                       "VALUES ($1, $2, $3, $4, $5)", recording_id, username, role, action, at)


async def recordings(conn: asyncpg.Connection, clients: list[str] | None, *,
                     linkedid: str | None, limit: int, before_id: int | None
                     ) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT id, pbx_id, linkedid, client, reason, requested_by, started_at
             FROM recordings
            WHERE deleted_at IS NULL AND ($1::text[] IS NULL OR client = ANY ($1))
              AND ($2::text IS NULL OR linkedid = $2) AND ($3::bigint IS NULL OR id < $3)
            ORDER BY id DESC LIMIT $4""", clients, linkedid, before_id, limit + 1)
    return [dict(r) for r in rows]


async def recording(conn: asyncpg.Connection, recording_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM recordings WHERE id = $1 AND deleted_at IS NULL", recording_id)
    return row


def audio_path(recordings_dir: Path, name: str) -> Path:
    """The file of a recording, refusing any name that would leave the spool."""
    path = (recordings_dir / name).resolve()
    if recordings_dir.resolve() not in path.parents:
        raise RecordingError(f"{name!r} is outside the recordings directory")
    return path


async def delete_recordings_before(conn: asyncpg.Connection, recordings_dirs: dict[str, Path],
                                   before: datetime, client: str | None = None) -> int:
    """Delete the recordings of calls started before ``before`` (one client's, or every
    client's): the files, then the rows are marked deleted (the audit stays).  Returns how
    many were deleted.  ``recordings_dirs`` maps pbx_id to its spool."""
    rows = await conn.fetch(
        """SELECT id, pbx_id, file_name FROM recordings
            WHERE deleted_at IS NULL AND started_at < $1
              AND ($2::text IS NULL OR client = $2)""", before, client)
    deleted = 0
    for row in rows:
        spool = recordings_dirs.get(row["pbx_id"])
        if spool is None:
            log.warning("recording_spool_unknown", pbx=row["pbx_id"])
            continue
        try:
            audio_path(spool, row["file_name"]).unlink(missing_ok=True)
        except OSError as exc:
            log.error("recording_not_deleted", recording=row["id"], error=str(exc))
            continue
        await conn.execute("UPDATE recordings SET deleted_at = now() WHERE id = $1", row["id"])
        deleted += 1
    return deleted
