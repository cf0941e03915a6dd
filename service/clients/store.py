"""The clients file in PostgreSQL: every loaded version, and one row per client.

Routing reads the newest version (re-parsed from its text, so the database and the file can
never mean different things); loading notifies every instance on ``orikaeshi_routing``.
"""

from __future__ import annotations

import asyncpg

from service.clients.model import Directory
from service.clients.schema import parse_clients
from service.store.reports_sql import save_report_settings

NOTIFY_CHANNEL = "orikaeshi_routing"


async def load_document(conn: asyncpg.Connection, text: str, source: str,
                        loaded_by: str | None = None) -> tuple[int, Directory]:
    """Validate ``text`` (raises ClientsFileError) and make it the routing data."""
    directory = parse_clients(text, source)
    async with conn.transaction():
        version = await conn.fetchval(
            "INSERT INTO routing_documents (document, source, source_text, loaded_by) "
            "VALUES ($1::jsonb, $2, $3, $4) RETURNING version",
            _summary(directory), source, text, loaded_by)
        for client in directory.clients.values():
            await conn.execute(
                """INSERT INTO clients (code, name, active, dids, timezone, queue,
                       greeting_script, notes, plan_calls, callback_deadline_s,
                       calling_hours_start, calling_hours_end, repeat_earlier_calls,
                       repeat_window_s, repeat_enabled, short_abandon_s, version,
                       report_webhook, report_webhook_secret, report_emails, updated_at)
                   VALUES ($1, $2, true, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                           $15, $16, $17, $18, $19, now())
                   ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, active = true,
                       dids = EXCLUDED.dids, timezone = EXCLUDED.timezone,
                       queue = EXCLUDED.queue, greeting_script = EXCLUDED.greeting_script,
                       notes = EXCLUDED.notes, plan_calls = EXCLUDED.plan_calls,
                       callback_deadline_s = EXCLUDED.callback_deadline_s,
                       calling_hours_start = EXCLUDED.calling_hours_start,
                       calling_hours_end = EXCLUDED.calling_hours_end,
                       repeat_earlier_calls = EXCLUDED.repeat_earlier_calls,
                       repeat_window_s = EXCLUDED.repeat_window_s,
                       repeat_enabled = EXCLUDED.repeat_enabled,
                       short_abandon_s = EXCLUDED.short_abandon_s,
                       report_webhook = EXCLUDED.report_webhook,
                       report_webhook_secret = EXCLUDED.report_webhook_secret,
                       report_emails = EXCLUDED.report_emails,
                       version = EXCLUDED.version, updated_at = now()""",
                client.code, client.name, list(client.dids), client.timezone, client.queue,
                client.greeting_script, client.notes, client.plan_calls,
                client.callback_deadline_s, client.calling_hours[0], client.calling_hours[1],
                client.repeat.earlier_calls, client.repeat.window_s, client.repeat.enabled,
                client.short_abandon_s, version, client.report_webhook,
                client.report_webhook_secret, list(client.report_emails))
            await save_report_settings(conn, client)
            # The wallboard's thresholds (migration 0011).
            await conn.execute(
                """UPDATE clients SET service_level_target = $2, long_wait_s = $3
                   WHERE code = $1""",
                client.code, client.wallboard.service_level_target, client.wallboard.long_wait_s)
        # A client removed from the file keeps its row (its calls still name it), inactive.
        await conn.execute("UPDATE clients SET active = false, updated_at = now() "
                           "WHERE version <> $1 AND active", version)
        await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}, '{int(version)}'")
    return version, _with_version(directory, version)


async def current_directory(conn: asyncpg.Connection) -> Directory | None:
    row = await conn.fetchrow("SELECT version, source, source_text FROM routing_documents "
                              "ORDER BY version DESC LIMIT 1")
    if row is None:
        return None
    return _with_version(parse_clients(row["source_text"], row["source"]), row["version"])


async def current_version(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM routing_documents"))


def _with_version(directory: Directory, version: int) -> Directory:
    from dataclasses import replace

    return replace(directory, version=version)


def _summary(directory: Directory) -> str:
    import json

    return json.dumps({"clients": {c.code: {"name": c.name, "dids": list(c.dids),
                                            "queue": c.queue}
                                   for c in directory.clients.values()},
                       "unknown_did_queue": directory.unknown_did.queue,
                       "supervisor_queue": directory.supervisor_queue}, ensure_ascii=False)
