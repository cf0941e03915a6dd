"""Retention: a client's calls, messages, closed call backs and voicemail recordings past its
period are purged (a dry run counts exactly that), other clients and open call backs are
kept, and every purge is in the audit that admins read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from service.clients.schema import ClientsFileError, parse_clients
from service.clients.store import load_document
from service.retention.purge import purge
from tests.test_report_documents import orikaeshi
from tests.test_reports import CLIENTS, TOKYO, build_ledger

AS_OF = datetime(2026, 12, 21, tzinfo=TOKYO)
CUTOFF = AS_OF - timedelta(days=30)  # KSL keeps 30 days: everything before 21 November goes


def spool_message(spool: Path, box: str, number: int, recorded: datetime) -> None:
    folder = spool / "lab" / box / "INBOX"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"msg{number:04d}.txt").write_text(
        f";\n; Message Information file\n;\n[message]\norigmailbox={box}\n"
        f"origtime={int(recorded.timestamp())}\nduration=12\n")
    (folder / f"msg{number:04d}.wav").write_bytes(b"RIFF....WAVE")


async def ledger_keeping(pool, tmp_path, after: str, retention: str) -> None:  # type: ignore[no-untyped-def]
    """The replayed ledger, with ``retention`` for the client whose settings hold ``after``."""
    await build_ledger(pool, tmp_path)
    async with pool.acquire() as conn:
        await load_document(conn, CLIENTS.replace(after, f"{after}    retention: {retention}\n",
                                                  1), "clients.yaml")


async def test_purge_and_dry_run(pool, tmp_path) -> None:
    await ledger_keeping(pool, tmp_path, "    overage_price: 220\n", "30d")
    async with pool.acquire() as conn:
        calls = await conn.fetch("SELECT client, started_at FROM calls")
        messages = await conn.fetchval("SELECT count(*) FROM messages WHERE client = 'KSL'")
        open_before = await conn.fetchval(
            "SELECT count(*) FROM callback_obligations WHERE state = 'open'")
        others = await conn.fetchval("SELECT count(*) FROM calls WHERE client <> 'KSL'")
    old_ksl = [c for c in calls if c["client"] == "KSL" and c["started_at"] < CUTOFF]
    assert old_ksl and len(old_ksl) < len([c for c in calls if c["client"] == "KSL"])
    spool = tmp_path / "voicemail"
    spool_message(spool, "1001", 0, datetime(2026, 11, 2, 10, 0, tzinfo=TOKYO))   # old
    spool_message(spool, "1001", 1, datetime(2026, 11, 30, 10, 0, tzinfo=TOKYO))  # kept
    spool_message(spool, "1002", 0, datetime(2026, 10, 1, tzinfo=TOKYO))          # MDC: kept

    async with pool.acquire() as conn:
        [dry] = await purge(conn, AS_OF.astimezone(UTC), dry_run=True, actor="test",
                            voicemail_spool=spool)
        assert await conn.fetchval("SELECT count(*) FROM calls") == len(calls)
        [done] = await purge(conn, AS_OF.astimezone(UTC), dry_run=False, actor="admin-cli",
                             voicemail_spool=spool)
        remaining = await conn.fetch("SELECT client, started_at FROM calls")
        assert await conn.fetchval("SELECT count(*) FROM stints s WHERE NOT EXISTS (SELECT 1 "
                                   "FROM calls c WHERE (c.pbx_id, c.linkedid) = "
                                   "(s.pbx_id, s.linkedid))") == 0
        open_after = await conn.fetchval(
            "SELECT count(*) FROM callback_obligations WHERE state = 'open'")
        messages_after = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE client = 'KSL'")
        trail = await conn.fetch("SELECT actor, action, client, detail FROM data_access_audit "
                                 "ORDER BY id")
    assert dry.client == done.client == "KSL" and dry.cutoff == CUTOFF
    assert dry.rows == done.rows  # the dry run counted what the purge deleted
    assert done.rows["calls"] == len(old_ksl)
    assert done.rows["messages"] == messages - messages_after == 3  # taken on 20 November
    assert len(remaining) == len(calls) - len(old_ksl)
    assert all(r["started_at"] >= CUTOFF for r in remaining if r["client"] == "KSL")
    assert len([r for r in remaining if r["client"] != "KSL"]) == others
    assert open_after == open_before  # still owed: kept
    assert done.recordings == dry.recordings == 1
    assert sorted(p.name for p in (spool / "lab" / "1001" / "INBOX").iterdir()) == \
        ["msg0001.txt", "msg0001.wav"]
    assert len(list((spool / "lab" / "1002" / "INBOX").iterdir())) == 2
    assert [(t["actor"], t["action"], t["client"]) for t in trail] == \
        [("test", "purge_dry_run", "KSL"), ("admin-cli", "purge", "KSL")]
    assert f"calls={len(old_ksl)}" in trail[1]["detail"]


async def test_purge_command(pool, db_url, tmp_path) -> None:
    await ledger_keeping(pool, tmp_path, "    service_level: 5s\n", "10d")
    async with pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM calls")
    code, out, err = await orikaeshi(db_url, tmp_path, "purge", "--dry-run",
                                     "--as-of", "2026-12-20T00:00:00+09:00")
    assert code == 0, err
    text = out.decode()
    assert text.startswith("MDC: would delete from before 2026-12-10T00:00:00+09:00")
    assert "recordings: voicemail_spool_dir not set" in text
    async with pool.acquire() as conn:
        # The calls an open call back still lists are kept (it is owed), the others go.
        mdc = await conn.fetchval(
            "SELECT count(*) FROM calls c WHERE client = 'MDC' AND NOT EXISTS (SELECT 1 "
            "FROM obligation_calls oc JOIN callback_obligations o ON o.id = oc.obligation_id "
            "WHERE (oc.pbx_id, oc.linkedid) = (c.pbx_id, c.linkedid) AND o.state = 'open')")
        assert await conn.fetchval("SELECT count(*) FROM calls") == before
    assert f", {mdc} calls (" in text
    code, out, err = await orikaeshi(db_url, tmp_path, "purge", "--as-of", "yesterday")
    assert code == 2 and "not an ISO date/time" in err


def test_report_settings_in_the_clients_file() -> None:
    """Retention, plan counting, service level and pushes: read, defaulted, and refused with
    the line when wrong."""
    ksl = "    overage_price: 220\n"
    directory = parse_clients(CLIENTS.replace(ksl, ksl + "    retention: 400d\n"
                                              "    reports:\n      push: digest 15m\n"
                                              "      contacts: [boss@ksl.example]\n"))
    client = directory.clients["KSL"]
    assert client.retention_s == 400 * 86400 and client.push_mode == "digest"
    assert client.push_every_s == 900 and client.report_contacts == ("boss@ksl.example",)
    mdc, wsh = directory.clients["MDC"], directory.clients["WSH"]
    assert (mdc.plan_counts, mdc.service_level_s, mdc.retention_s) == ("offered", 5.0, None)
    assert (wsh.plan_counts, wsh.service_level_s, wsh.push_mode) == ("answered", 20.0,
                                                                      "immediate")
    bad = CLIENTS.replace(ksl, ksl + "    retention: 12h\n    reports:\n      push: weekly\n"
                          ).replace("plan_counts: answered", "plan_counts: calls")
    try:
        parse_clients(bad)
    except ClientsFileError as exc:
        errors = exc.errors
    else:
        raise AssertionError("accepted")
    assert any(":15:16:" in e and "retention: '12h' is shorter than a day" in e for e in errors)
    assert any("plan_counts: 'calls' is not one of answered, offered" in e for e in errors)
    assert any("reports.push: 'weekly' is not immediate" in e for e in errors)
