"""``orikaeshi export client KSL [--since DATE] --out DIR``: a client's whole history as a
documented bundle (service/handover/bundle.py has the format and the README)."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import asyncpg
import yaml

from service.handover.bundle import (
    CALLBACKS_COLUMNS,
    CALLBACKS_CSV,
    FILES,
    FORMAT,
    MESSAGES_COLUMNS,
    MESSAGES_CSV,
    README,
    VERSION,
)
from service.store import handover_sql
from service.store.handover_sql import LOCAL_COLUMNS


class HandoverError(ValueError):
    """The export or import cannot be done as asked (unknown client, bad bundle...)."""


def _plain(value: Any, zone: ZoneInfo) -> Any:
    """A database value as JSON: times ISO 8601 with the client's offset."""
    if isinstance(value, datetime):
        return value.astimezone(zone).isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _record(row: asyncpg.Record, zone: ZoneInfo, drop: set[str] = frozenset()  # type: ignore[assignment]
            ) -> dict[str, Any]:
    return {k: _plain(v, zone) for k, v in row.items() if k not in drop}


def _line(out: IO[str], data: dict[str, Any]) -> None:
    out.write(json.dumps(data, ensure_ascii=False) + "\n")


def client_fragment(source_text: str, code: str) -> str:
    """The client's settings as a clients-file fragment: its own text from the loaded
    clients file (comments and all), with the file's defaults, and the webhook secret left
    out.  Raises HandoverError if the client is not in the file."""
    root = yaml.compose(source_text)
    if not isinstance(root, yaml.MappingNode):
        raise HandoverError("the loaded clients file is not a mapping")
    top = {str(k.value): v for k, v in root.value}
    clients = top.get("clients")
    node = None
    if isinstance(clients, yaml.MappingNode):
        node = next((v for k, v in clients.value if str(k.value) == code), None)
    if node is None:
        raise HandoverError(f"client {code} is not in the loaded clients file")
    parts = [f"# Handover of {code}: its settings from the answering company's clients file.\n"]
    defaults = top.get("defaults")
    if defaults is not None:
        parts.append("defaults:\n" + _slice(source_text, defaults) + "\n")
    parts.append(f"clients:\n  {code}:\n" + _slice(source_text, node) + "\n")
    lines = []
    for line in "".join(parts).splitlines():
        if line.strip().startswith("webhook_secret:"):
            indent = line[: len(line) - len(line.lstrip())]
            line = f"{indent}webhook_secret: <not exported: agree a new one>"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _slice(text: str, node: yaml.Node) -> str:
    """The node's source text, re-indented as it stood (its first line lost its indent)."""
    body = text[node.start_mark.index:node.end_mark.index].rstrip()
    return " " * node.start_mark.column + body


async def export_client(conn: asyncpg.Connection, client: str, out: Path, *,
                        since: datetime | None = None,
                        now: datetime | None = None) -> dict[str, int]:
    """Write the bundle of ``client`` into ``out`` (created; must be empty); returns the
    counts written."""
    settings = await conn.fetchrow("SELECT code, timezone FROM clients WHERE code = $1", client)
    if settings is None:
        raise HandoverError(f"no client {client}")
    zone = ZoneInfo(settings["timezone"])
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise HandoverError(f"{out} is not empty")
    counts = {"calls": 0, "messages": 0, "obligations": 0, "voicemails": 0}
    document = await conn.fetchrow("SELECT source_text FROM routing_documents "
                                   "ORDER BY version DESC LIMIT 1")
    if document is not None:
        (out / FILES["client"]).write_text(client_fragment(document["source_text"], client),
                                           encoding="utf-8")
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        with (out / FILES["calls"]).open("w", encoding="utf-8") as calls_file, \
                (out / FILES["voicemails"]).open("w", encoding="utf-8") as voicemail_file:
            after = 0
            while True:
                batch = await handover_sql.calls_batch(conn, client, since, after)
                if not batch:
                    break
                after = batch[-1]["id"]
                stints, rings = await handover_sql.stints_and_rings(
                    conn, [(r["pbx_id"], r["linkedid"]) for r in batch])
                by_call: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
                for s in stints:
                    by_call.setdefault((s["pbx_id"], s["linkedid"]), {"stints": [], "rings": []})[
                        "stints"].append(_record(s, zone, {"pbx_id", "linkedid"}))
                for r in rings:
                    by_call.setdefault((r["pbx_id"], r["linkedid"]), {"stints": [], "rings": []})[
                        "rings"].append(_record(r, zone, {"pbx_id", "linkedid"}))
                for row in batch:
                    call = _record(row, zone, LOCAL_COLUMNS["calls"])
                    call.update(by_call.get((row["pbx_id"], row["linkedid"]),
                                            {"stints": [], "rings": []}))
                    _line(calls_file, call)
                    counts["calls"] += 1
                    if row["voicemail_left"]:
                        _line(voicemail_file, {
                            "pbx_id": row["pbx_id"], "linkedid": row["linkedid"],
                            "started_at": _plain(row["started_at"], zone),
                            "caller_number": row["caller_number"],
                            "caller_e164": row["caller_e164"],
                            "voicemail_box": row["voicemail_box"]})
                        counts["voicemails"] += 1
        with (out / FILES["obligations"]).open("w", encoding="utf-8") as file:
            rows = await handover_sql.obligations(conn, client, since)
            attempts, links = await handover_sql.obligation_links(conn, [r["id"] for r in rows])
            for row in rows:
                item = _record(row, zone, {"updated_at"})
                item["call_refs"] = [{"pbx_id": c["pbx_id"], "linkedid": c["linkedid"]}
                                 for c in links if c["obligation_id"] == row["id"]]
                item["attempts"] = [_record(a, zone, {"obligation_id"})
                                    for a in attempts if a["obligation_id"] == row["id"]]
                _line(file, item)
                counts["obligations"] += 1
        with (out / FILES["messages"]).open("w", encoding="utf-8") as file:
            for row in await handover_sql.messages(conn, client, since):
                _line(file, _record(row, zone))
                counts["messages"] += 1
    exported_at = (now or datetime.now(zone)).astimezone(zone)
    manifest = {"format": FORMAT, "version": VERSION, "bundle_id": str(uuid.uuid4()),
                "client": client, "timezone": settings["timezone"],
                "exported_at": exported_at.isoformat(),
                "since": since.astimezone(zone).isoformat() if since else None,
                "counts": counts, "files": FILES}
    (out / FILES["manifest"]).write_text(json.dumps(manifest, ensure_ascii=False, indent=2)
                                         + "\n", encoding="utf-8")
    (out / FILES["readme"]).write_text(README.format(
        client=client, exported_at=manifest["exported_at"], timezone=settings["timezone"],
        format=FORMAT, version=VERSION, since=f", since {manifest['since']}" if since else "",
        callbacks_csv=CALLBACKS_CSV, callbacks_columns=", ".join(CALLBACKS_COLUMNS),
        messages_csv=MESSAGES_CSV, messages_columns=", ".join(MESSAGES_COLUMNS),
        **{f"count_{k}": v for k, v in counts.items()}), encoding="utf-8")
    return counts
