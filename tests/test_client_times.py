"""Every time a person reads is in the client's time zone (issue 13, item 5): push and
reminder e-mails, the CSV export of calls, and the CLI outputs (`orikaeshi purge`, `report
audit`, `route explain`, `reconcile`).  One client is moved to New York, so that a time shown
in UTC, the server's zone or Japan's by mistake cannot pass."""

from __future__ import annotations

import doctest
import io
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

import service.localtime
import service.reports.schedule
from service.app import create_app, database_ctx, web_ctx
from service.reconcile.command import print_findings
from service.reconcile.compare import Difference, Findings
from service.reports.schedule import remind_overdue
from service.store.reports_sql import audit
from tests.test_report_documents import orikaeshi
from tests.webapp import SAMPLE, seed, web_config

NY = "America/New_York"
# 2026-07-01 14:00 UTC = 10:00 EDT in New York = 23:00 JST in Tokyo.
AT = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)


def test_formatting_rules() -> None:
    for module in (service.localtime, service.reports.schedule):
        assert doctest.testmod(module).failed == 0, module.__name__


async def _new_york(pool, code: str = "WSH") -> None:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        await conn.execute("UPDATE clients SET timezone = $2 WHERE code = $1", code, NY)


async def test_reminder_email_in_the_clients_zone(pool) -> None:  # type: ignore[no-untyped-def]
    await seed(pool)
    await _new_york(pool)
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO callback_obligations (client, caller_e164, caller_number, state,
                   reason, opened_at, due_at) VALUES ('WSH', '+819099990000', '09099990000',
                   'open', 'missed', $1, $2)""", AT - timedelta(days=1), AT)
        assert await remind_overdue(conn, AT + timedelta(hours=1)) == 1
        body = await conn.fetchval(
            "SELECT text_body FROM message_deliveries WHERE kind = 'reminder'")
    assert body == "09099990000  期限 / due 2026-07-01 10:00 EDT  着信 / calls 1"


async def test_csv_export_in_the_clients_zone(pool, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seeded = await seed(pool)
    await _new_york(pool, "MDC")
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO calls (pbx_id, linkedid, direction, client, caller_e164, started_at,
                   answered_at, ended_at, outcome)
               VALUES ('pbx1', 'ny.1', 'inbound', 'MDC', '+819011112222', $1, $2, $3,
                       'answered')""", AT, AT + timedelta(seconds=5), AT + timedelta(minutes=2))
    app = create_app(web_config(tmp_path, db_url), [database_ctx, web_ctx])
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/calls.csv",
                                    headers={"Authorization": f"Bearer {seeded.tokens['sup']}"})
        text = (await response.read()).decode("utf-8-sig")
    header, *lines = text.splitlines()
    columns = header.split(",")
    row = next(dict(zip(columns, line.split(","), strict=False)) for line in lines
               if ",MDC," in line and "2026-07-01" in line)
    assert (row["started_at"], row["answered_at"], row["ended_at"]) == (
        "2026-07-01T10:00:00-04:00", "2026-07-01T10:00:05-04:00", "2026-07-01T10:02:00-04:00")
    tokyo = next(dict(zip(columns, line.split(","), strict=False)) for line in lines
                 if ",KSL," in line)
    assert tokyo["started_at"].endswith("+09:00")


async def test_cli_outputs_in_the_clients_zone(pool, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    await seed(pool)
    await _new_york(pool)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE clients SET retention_s = 86400 * 30 WHERE code = 'WSH'")
        await audit(conn, "sato", "report_view", "WSH", "month=2026-06")
        await conn.execute("UPDATE data_access_audit SET at = $1", AT)
    # purge: each client's cutoff in its zone (an --as-of given in UTC).
    code, out, err = await orikaeshi(db_url, tmp_path, "purge", "--dry-run",
                                     "--as-of", "2026-07-31T14:00:00+00:00")
    assert code == 0, err
    lines = out.decode().splitlines()
    assert any(line.startswith("WSH: would delete from before 2026-07-01T10:00:00-04:00")
               for line in lines), lines
    assert any(line.startswith("KSL: would delete from before 2024-07-31T23:00:00+09:00")
               for line in lines), lines  # KSL keeps 730 days, in Tokyo
    # report audit: the row's client's zone.
    code, out, err = await orikaeshi(db_url, tmp_path, "report", "audit", "--client", "WSH")
    assert code == 0, err
    purged, viewed = out.decode().splitlines()  # newest first
    assert viewed.startswith("2026-07-01T10:00:00-04:00  sato")
    assert "purge_dry_run    WSH      before=2026-07-01T10:00:00-04:00" in purged
    # route explain: the moment in the DID's client's zone (the clients file's).
    clients = tmp_path / "clients.yaml"
    clients.write_text(SAMPLE.read_text().replace(
        "    plan_calls: 1000\n", f"    plan_calls: 1000\n    timezone: {NY}\n", 1))
    code, out, err = await orikaeshi(db_url, tmp_path, "route", "explain", "--did",
                                     "0501234567", "--caller", "09011112222", "--clients",
                                     str(clients), "--at", "2026-07-01T14:00:00+00:00")
    assert code == 0, err
    assert out.decode().splitlines()[0] == \
        "call to 0501234567 from 09011112222 at 2026-07-01T10:00:00-04:00"


def test_reconcile_output_in_the_clients_zone() -> None:
    findings = Findings(calls_checked=2, settlements=[], additions=[], fallback_flags=[],
                        differences=[Difference("missing_in_cdr", "1.1", "no CDR row", AT),
                                     Difference("outcome", "1.2", "disagree", AT)])
    out = io.StringIO()
    with redirect_stdout(out):
        print_findings(findings, 0, as_json=False, dry_run=True, zones={"1.1": NY},
                       default_zone="Europe/London")
    assert out.getvalue().splitlines() == [
        "missing_in_cdr: 1.1 2026-07-01T10:00:00-04:00 no CDR row",
        "outcome: 1.2 2026-07-01T15:00:00+01:00 disagree"]  # no client known: the company's


async def test_audit_rows_of_no_client_in_the_companys_zone(pool, db_url: str) -> None:  # type: ignore[no-untyped-def]
    import argparse
    import dataclasses

    from service.config import Config
    from service.reports.commands import audit_command

    async with pool.acquire() as conn:
        await audit(conn, "sato", "report_view", None, "month=2026-06")
        await conn.execute("UPDATE data_access_audit SET at = $1", AT)
    config = dataclasses.replace(Config(), database_url=db_url, company_timezone="Europe/London")
    out = io.StringIO()
    with redirect_stdout(out):
        assert await audit_command(argparse.Namespace(client=None, limit=10), config) == 0
    assert out.getvalue().startswith("2026-07-01T15:00:00+01:00  sato")
