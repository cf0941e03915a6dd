"""``orikaeshi import handover DIR``: a handover bundle (or CSV files of open call backs and
messages from another company) into a client.  All in one transaction; every row is keyed
(calls by ``(pbx_id, linkedid)``, the rest by ``handover_imports``), so importing the same
folder twice changes nothing.

Imported calls are marked as seen by the call-back worker (their obligations come with the
bundle) and, being old, are not pushed to the client again; imported messages are not
delivered again either."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.handover.bundle import (
    CALLBACKS_COLUMNS,
    CALLBACKS_CSV,
    FILES,
    FORMAT,
    MESSAGES_COLUMNS,
    MESSAGES_CSV,
    VERSION,
)
from service.handover.export import HandoverError
from service.messages.service import DISPOSITIONS
from service.phone import to_e164
from service.reports.rules import push_kind
from service.reports.schedule import mark_pushed
from service.store import handover_sql
from service.store.callbacks_sql import DEFAULT_DEADLINE_S, open_or_join
from service.store.handover_sql import LOCAL_COLUMNS

MAX_LINE = 4 * 1024 * 1024  # one call with its stints and rings is a few kB


def _lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    if not path.exists():
        return out
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if len(line) > MAX_LINE:
                raise HandoverError(f"{path.name}:{number}: line longer than {MAX_LINE} bytes")
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                raise HandoverError(f"{path.name}:{number}: not JSON ({exc})") from exc
            if not isinstance(data, dict):
                raise HandoverError(f"{path.name}:{number}: not a JSON object")
            out.append((number, data))
    return out


def _convert(row: dict[str, Any], types: dict[str, str], where: str) -> dict[str, Any]:
    """Bundle values to the table's types; only the table's own columns are kept."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        kind = types.get(key)
        if kind is None:
            continue
        if value is not None and kind.startswith("timestamp"):
            try:
                value = datetime.fromisoformat(value)
            except (TypeError, ValueError) as exc:
                raise HandoverError(f"{where}: {key} {value!r} is not an ISO time") from exc
            if value.tzinfo is None:
                raise HandoverError(f"{where}: {key} {value.isoformat()} has no UTC offset")
        out[key] = value
    return out


async def import_handover(conn: asyncpg.Connection, folder: Path, *,
                          client: str | None = None, now: datetime) -> dict[str, int]:
    """Import ``folder`` (a bundle, or CSV files with ``client``); returns what was added.
    Nothing is imported when any row is refused (HandoverError says which)."""
    if not folder.is_dir():
        raise HandoverError(f"{folder} is not a folder")
    manifest_path = folder / FILES["manifest"]
    try:
        async with conn.transaction():
            if manifest_path.exists():
                return await _bundle(conn, folder, manifest_path, client, now)
            if client is None:
                raise HandoverError(f"{folder} has no {FILES['manifest']}: give --client for "
                                    f"{CALLBACKS_CSV} / {MESSAGES_CSV}")
            return await _csv(conn, folder, client, now)
    except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, TypeError,
            KeyError) as exc:
        # A value of the wrong type or out of the closed sets: the bundle is not ours to fix.
        raise HandoverError(f"{folder}: a row was refused: {type(exc).__name__}: {exc}") \
            from exc


async def _target(conn: asyncpg.Connection, code: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT code, timezone, callback_deadline_s FROM clients "
                              "WHERE code = $1", code)
    if row is None:
        raise HandoverError(f"no client {code} here: load its settings first (the bundle's "
                            f"{FILES['client']} is a clients-file fragment)")
    return row


async def _bundle(conn: asyncpg.Connection, folder: Path, manifest_path: Path,
                  client: str | None, now: datetime) -> dict[str, int]:
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HandoverError(f"{manifest_path}: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise HandoverError(f"{manifest_path}: not an {FORMAT} bundle of version {VERSION}")
    bundle = str(manifest["bundle_id"])
    code = (await _target(conn, client or manifest["client"]))["code"]
    added = {"calls": 0, "messages": 0, "obligations": 0}
    call_types = await handover_sql.column_types(conn, "calls")
    for table in LOCAL_COLUMNS["calls"]:
        call_types.pop(table, None)
    stint_types = await handover_sql.column_types(conn, "stints")
    ring_types = await handover_sql.column_types(conn, "ring_attempts")
    for number, line in _lines(folder / FILES["calls"]):
        where = f"{FILES['calls']}:{number}"
        call = _convert(line, call_types, where)
        if not call.get("pbx_id") or not call.get("linkedid"):
            raise HandoverError(f"{where}: pbx_id and linkedid are required")
        call["client"] = code
        call["callbacks_seen_at"] = now  # its obligations come with the bundle
        result = await handover_sql.insert(conn, "calls", call, "(pbx_id, linkedid) DO NOTHING")
        added["calls"] += result.endswith(" 1")
        kind = push_kind(call.get("outcome"), call.get("forward_answered"),
                         call.get("caller_e164"), bool(call.get("voicemail_left")))
        if kind is not None and call.get("started_at") is not None:
            await mark_pushed(conn, code, kind, f"{call['pbx_id']}/{call['linkedid']}",
                              call["started_at"], now)
        for key, types, table in (("stints", stint_types, "stints"),
                                  ("rings", ring_types, "ring_attempts")):
            for item in line.get(key) or []:
                row = _convert(item, types, where)
                row.update(pbx_id=call["pbx_id"], linkedid=call["linkedid"])
                await handover_sql.insert(conn, table, row)
    obligation_types = await handover_sql.column_types(conn, "callback_obligations")
    for column in LOCAL_COLUMNS["callback_obligations"]:
        obligation_types.pop(column, None)
    attempt_types = await handover_sql.column_types(conn, "callback_attempts")
    local_ids: dict[Any, int] = {}
    for number, line in _lines(folder / FILES["obligations"]):
        where = f"{FILES['obligations']}:{number}"
        key = f"{bundle}:obligation:{line.get('id')}"
        local = await handover_sql.imported(conn, key)
        if local is None:
            row = _convert(line, obligation_types, where)
            row["client"] = code
            local = await handover_sql.insert(conn, "callback_obligations", row,
                                              returning="id")
            if local is None:  # an open one for the number is here already: join it
                local = await conn.fetchval(
                    "UPDATE callback_obligations SET calls = calls + $3 WHERE client = $1 "
                    "AND caller_e164 = $2 AND state = 'open' RETURNING id",
                    code, row.get("caller_e164"), int(row.get("calls") or 1))
            else:
                added["obligations"] += 1
            await handover_sql.mark_imported(conn, key, "obligation", local)
        local_ids[line.get("id")] = int(local)
        for attempt in line.get("attempts") or []:
            values = _convert(attempt, attempt_types, where)
            values["obligation_id"] = local
            await handover_sql.insert(conn, "callback_attempts", values)
        for link in line.get("call_refs") or []:
            await conn.execute("INSERT INTO obligation_calls (pbx_id, linkedid, obligation_id) "
                               "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                               link["pbx_id"], link["linkedid"], local)
    message_types = await handover_sql.column_types(conn, "messages")
    message_types.pop("id", None)
    for number, line in _lines(folder / FILES["messages"]):
        key = f"{bundle}:message:{line.get('id')}"
        if await handover_sql.imported(conn, key) is not None:
            continue
        row = _convert(line, message_types, f"{FILES['messages']}:{number}")
        row["client"] = code
        if row.get("obligation_id") is not None:
            row["obligation_id"] = local_ids.get(row["obligation_id"])
        local = await handover_sql.insert(conn, "messages", row, returning="id")
        await mark_pushed(conn, code, "message", str(local), row.get("created_at") or now, now)
        await handover_sql.mark_imported(conn, key, "message", local)
        added["messages"] += 1
    return added


def _csv_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8-sig", newline="") as file:
        reader = csv.DictReader(file)
        missing = [c for c in columns[:1] if c not in (reader.fieldnames or [])]
        if missing:
            raise HandoverError(f"{path.name}: the header needs {', '.join(columns)}")
        return [(n, {k: (v or "").strip() for k, v in row.items() if k})
                for n, row in enumerate(reader, start=2)]


def _time(text: str, zone: ZoneInfo, where: str, name: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise HandoverError(f"{where}: {name} {text!r} is not an ISO date/time") from exc
    return value if value.tzinfo else value.replace(tzinfo=zone)


def _key(client: str, kind: str, row: dict[str, str]) -> str:
    digest = hashlib.sha256(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
    return f"csv:{client}:{kind}:{digest.hexdigest()}"


async def _csv(conn: asyncpg.Connection, folder: Path, client: str,
               now: datetime) -> dict[str, int]:
    target = await _target(conn, client)
    zone = ZoneInfo(target["timezone"])
    added = {"calls": 0, "messages": 0, "obligations": 0}
    callbacks = _csv_rows(folder / CALLBACKS_CSV, CALLBACKS_COLUMNS)
    messages = _csv_rows(folder / MESSAGES_CSV, MESSAGES_COLUMNS)
    if not callbacks and not messages:
        raise HandoverError(f"{folder}: nothing to import (no {FILES['manifest']}, "
                            f"{CALLBACKS_CSV} or {MESSAGES_CSV})")
    for number, row in callbacks:
        where = f"{CALLBACKS_CSV}:{number}"
        key = _key(client, "callback", row)
        if await handover_sql.imported(conn, key) is not None:
            continue
        opened = _time(row.get("opened_at", ""), zone, where, "opened_at")
        if opened is None:
            raise HandoverError(f"{where}: opened_at is required")
        reason = row.get("reason") or "missed"
        if reason not in ("missed", "message"):
            raise HandoverError(f"{where}: reason must be missed or message")
        local = await open_or_join(conn, client, to_e164(row.get("number")),
                                   row.get("number") or None, opened,
                                   target["callback_deadline_s"] or DEFAULT_DEADLINE_S, reason,
                                   None)
        due = _time(row.get("due_at", ""), zone, where, "due_at")
        await conn.execute(
            "UPDATE callback_obligations SET note = $3, due_at = CASE WHEN state = 'open' "
            "THEN coalesce($2, due_at) ELSE due_at END WHERE id = $1",
            local, due, ("handover: " + row["note"]) if row.get("note") else "handover")
        await handover_sql.mark_imported(conn, key, "obligation", local)
        added["obligations"] += 1
    for number, row in messages:
        where = f"{MESSAGES_CSV}:{number}"
        key = _key(client, "message", row)
        if await handover_sql.imported(conn, key) is not None:
            continue
        taken = _time(row.get("taken_at", ""), zone, where, "taken_at")
        if taken is None or not row.get("body"):
            raise HandoverError(f"{where}: taken_at and body are required")
        disposition = row.get("disposition") or "info_only"
        if disposition not in DISPOSITIONS:
            raise HandoverError(f"{where}: disposition must be one of {', '.join(DISPOSITIONS)}")
        local = await conn.fetchval(
            """INSERT INTO messages (client, caller_number, caller_e164, caller_name,
                   disposition, body, taken_by, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id""",
            client, row.get("number") or None, to_e164(row.get("number")),
            row.get("name") or None, disposition, row["body"], row.get("taken_by") or None,
            taken)
        await mark_pushed(conn, client, "message", str(local), taken, now)
        await handover_sql.mark_imported(conn, key, "message", local)
        added["messages"] += 1
    return added
