"""引き継ぎ: a client's history exported from one database (recordings replayed into it) and
imported into an empty one gives the same calls, messages and obligations; importing twice
changes nothing; open call backs and messages from another company come in as CSV."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from service.clients.schema import parse_clients
from service.clients.store import load_document
from service.reports.schedule import collect_pushes, send_pushes
from service.store.db import create_pool
from tests.conftest import fresh_database
from tests.test_report_documents import orikaeshi
from tests.test_reports import TOKYO, build_ledger


@pytest.fixture
async def empty_db(pg_server_url: str, template_db: str) -> AsyncIterator[str]:
    """A second fresh, migrated database: the other answering company's."""
    async for url in fresh_database(pg_server_url, "orikaeshi_t_other", template_db):
        yield url


CALL_KEY = "pbx_id, linkedid"


async def snapshot(conn: asyncpg.Connection, client: str) -> dict[str, list[Any]]:
    """Everything of the client that the handover carries, without local ids."""
    def rows(records: list[asyncpg.Record], drop: set[str]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in drop} for r in records]

    obligations = await conn.fetch(
        "SELECT * FROM callback_obligations WHERE client = $1 ORDER BY opened_at, caller_e164",
        client)
    number = {o["id"]: i for i, o in enumerate(obligations)}  # ids differ between databases
    return {
        "calls": rows(await conn.fetch(f"SELECT * FROM calls WHERE client = $1 ORDER BY "
                                       f"{CALL_KEY}", client),
                      {"id", "callbacks_seen_at", "updated_at"}),
        "stints": rows(await conn.fetch(f"SELECT s.* FROM stints s JOIN calls c USING "
                                        f"({CALL_KEY}) WHERE c.client = $1 ORDER BY "
                                        f"{CALL_KEY}, seq", client), set()),
        "rings": rows(await conn.fetch(f"SELECT r.* FROM ring_attempts r JOIN calls c USING "
                                       f"({CALL_KEY}) WHERE c.client = $1 ORDER BY "
                                       "member_uniqueid", client), set()),
        "obligations": rows(obligations, {"id", "updated_at"}),
        "attempts": sorted((number[a["obligation_id"]], a["pbx_id"], a["linkedid"],
                            a["placed_by"], a["started_at"], a["answered_at"], a["result"])
                           for a in await conn.fetch("SELECT * FROM callback_attempts")
                           if a["obligation_id"] in number),
        "obligation_calls": sorted((number[c["obligation_id"]], c["pbx_id"], c["linkedid"])
                                   for c in await conn.fetch("SELECT * FROM obligation_calls")
                                   if c["obligation_id"] in number),
        "messages": [{**m, "obligation_id": number.get(m["obligation_id"])} for m in rows(
            await conn.fetch("SELECT * FROM messages WHERE client = $1 ORDER BY created_at",
                             client), {"id"})],
    }


async def test_export_then_import_into_an_empty_database(pool, db_url, empty_db,
                                                         tmp_path) -> None:
    await build_ledger(pool, tmp_path)
    bundle = tmp_path / "bundle"
    code, out, err = await orikaeshi(db_url, tmp_path, "export", "client", "KSL",
                                     "--out", str(bundle))
    assert code == 0, err
    files = sorted(p.name for p in bundle.iterdir())
    assert files == ["README.md", "calls.jsonl", "client.yaml", "manifest.json",
                     "messages.jsonl", "obligations.jsonl", "voicemails.jsonl"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    async with pool.acquire() as conn:
        before = await snapshot(conn, "KSL")
    assert manifest["counts"]["calls"] == len(before["calls"]) > 20
    assert manifest["counts"]["obligations"] == len(before["obligations"]) > 3
    assert before["attempts"] and before["stints"] and before["rings"]
    # Numbers as presented and in E.164, times with the client's offset.
    first = json.loads((bundle / "calls.jsonl").read_text().splitlines()[0])
    assert first["started_at"].endswith("+09:00")
    assert {"caller_number", "caller_e164", "stints", "rings"} <= set(first)
    voicemails = [json.loads(line) for line in (bundle / "voicemails.jsonl").open()]
    assert voicemails and all(v["voicemail_box"] for v in voicemails)
    readme = (bundle / "README.md").read_text()
    assert "E.164" in readme and "calls.jsonl" in readme and "callbacks.csv" in readme
    # The settings travel as a clients-file fragment that validates.
    fragment = (bundle / "client.yaml").read_text()
    ksl = parse_clients(fragment, "client.yaml").clients["KSL"]
    assert (ksl.plan_calls, ksl.plan_counts, ksl.overage_price, ksl.name_ja) == \
        (10, "answered", 220, "霞法律事務所")

    # Into the other company's empty database, twice.
    other = await create_pool(empty_db, max_size=2)
    try:
        async with other.acquire() as conn:
            code, _, err = await orikaeshi(empty_db, tmp_path, "import", "handover",
                                           str(bundle))
            assert code == 2 and "no client KSL here" in err  # settings first
            await load_document(conn, fragment, "client.yaml")
            code, out, err = await orikaeshi(empty_db, tmp_path, "import", "handover",
                                             str(bundle))
            assert code == 0, err
            assert f"{len(before['calls'])} calls" in out.decode()
            after = await snapshot(conn, "KSL")
            code, out, err = await orikaeshi(empty_db, tmp_path, "import", "handover",
                                             str(bundle))
            assert code == 0 and "imported: 0 calls, 0 messages, 0 obligations" in out.decode()
            again = await snapshot(conn, "KSL")
            # Imported history is neither pushed nor turned into new obligations, even by
            # a push worker whose "now" is right after the burst's calls.
            assert await conn.fetchval("SELECT count(*) FROM calls WHERE "
                                       "callbacks_seen_at IS NULL") == 0
            assert await collect_pushes(conn, datetime(2026, 12, 1, 0, 5, tzinfo=TOKYO)) == 0
            assert await send_pushes(conn, datetime(2026, 12, 1, 0, 5, tzinfo=TOKYO)) == 0
            assert await conn.fetchval("SELECT count(*) FROM message_deliveries") == 0
    finally:
        await other.close()
    for table in before:
        assert after[table] == before[table], table
        assert again[table] == before[table], table
    async with pool.acquire() as conn:
        trail = await conn.fetch("SELECT action, client FROM data_access_audit")
    assert [tuple(r) for r in trail] == [("handover_export", "KSL")]


async def test_open_call_backs_and_messages_from_another_company(pool, db_url,
                                                                 tmp_path) -> None:
    await build_ledger(pool, tmp_path)
    folder = tmp_path / "from-other"
    folder.mkdir()
    (folder / "callbacks.csv").write_text(
        "\ufeffnumber,name,opened_at,due_at,reason,note\n"
        "090-7777-1234,山田一郎,2026-11-28T10:00,2026-11-29T10:00,missed,二度目の連絡\n"
        "非通知,,2026-11-28T11:00,,missed,\n", encoding="utf-8")
    (folder / "messages.csv").write_text(
        "taken_at,number,name,disposition,body,taken_by\n"
        "2026-11-28T12:00+09:00,0312349999,株式会社テスト,callback_requested,見積の件,旧会社\n",
        encoding="utf-8")
    for attempt in range(2):
        code, out, err = await orikaeshi(db_url, tmp_path, "import", "handover", str(folder),
                                         "--client", "KSL")
        assert code == 0, err
        expected = "2 obligations" if attempt == 0 else "0 obligations"
        assert expected in out.decode()
    async with pool.acquire() as conn:
        owed = await conn.fetchrow("SELECT * FROM callback_obligations WHERE caller_e164 = "
                                   "'+819077771234'")
        withheld = await conn.fetchrow("SELECT * FROM callback_obligations WHERE note = "
                                       "'handover' AND caller_number = '非通知'")
        message = await conn.fetchrow("SELECT * FROM messages WHERE body = '見積の件'")
    assert owed["state"] == "open" and owed["note"] == "handover: 二度目の連絡"
    assert owed["due_at"].isoformat() == "2026-11-29T01:00:00+00:00"
    assert withheld["state"] == "cannot_call_back"
    assert message["caller_e164"] == "+81312349999" and message["taken_by"] == "旧会社"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "callbacks.csv").write_text("number,opened_at\n0312345678,yesterday\n")
    code, _, err = await orikaeshi(db_url, tmp_path, "import", "handover", str(bad),
                                   "--client", "KSL")
    assert code == 2 and "callbacks.csv:2: opened_at 'yesterday'" in err
    assert "Traceback" not in err
