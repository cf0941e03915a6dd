"""The monthly report as documents (PDF, xlsx, CSV, HTML) from the command line, and over the
API with its roles and the audit of who looked at which client's data."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from pathlib import Path

import asyncpg
import openpyxl
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pypdf import PdfReader

from service.app import create_app, database_ctx, web_ctx
from service.store import web_sql
from service.web.auth import hash_password
from tests.test_reports import build_ledger
from tests.webapp import PASSWORD, web_config

COMPANY = "株式会社テスト電話代行"
HOSTILE_NAME = '=HYPERLINK("http://evil.example","x")'


async def orikaeshi(db_url: str, tmp_path: Path, *args: str) -> tuple[int, bytes, str]:
    env = {**os.environ, "DATABASE_URL": db_url, "ORIKAESHI_DATA_DIR": str(tmp_path),
           "ORIKAESHI_COMPANY_NAME": COMPANY}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", *args, env=env, cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out, err.decode()


@pytest.fixture
async def ledger(pool: asyncpg.Pool, tmp_path: Path) -> asyncpg.Pool:
    await build_ledger(pool, tmp_path)
    async with pool.acquire() as conn:
        # A caller-controlled name that a spreadsheet would run as a formula.
        await conn.execute("UPDATE calls SET caller_name = $1 WHERE pbx_id = 'pbx7'",
                           HOSTILE_NAME)
    return pool


async def test_pdf_has_extractable_japanese_text(ledger, db_url, tmp_path) -> None:
    out = tmp_path / "ksl.pdf"
    code, _, err = await orikaeshi(db_url, tmp_path, "report", "month", "--client", "KSL",
                                   "--month", "2026-11", "--format", "pdf", "--out", str(out))
    assert code == 0, err
    code, raw, _ = await orikaeshi(db_url, tmp_path, "report", "month", "--client", "KSL",
                                   "--month", "2026-11")
    report = json.loads(raw)
    text = "".join(page.extract_text() for page in PdfReader(out).pages)
    for words in ("月次受電報告書", "2026年11月", "霞法律事務所", "御中", COMPANY, "サービスレベル",
                  "短時間放棄", "超過料金（円）", "日別の着信数", "時間帯別の着信数"):
        assert words in text, words
    assert f"{report['plan']['overage_amount']:,}" in text
    english = tmp_path / "ksl-en.pdf"
    code, _, err = await orikaeshi(db_url, tmp_path, "report", "month", "--client", "KSL",
                                   "--month", "2026-11", "--format", "pdf", "--lang", "en",
                                   "--out", str(english))
    assert code == 0, err
    text = "".join(page.extract_text() for page in PdfReader(english).pages)
    assert "Monthly call report" in text and "November 2026" in text
    assert "Service level" in text and COMPANY in text


async def test_xlsx_has_numbers_as_numbers_and_numbers_as_text(ledger, db_url,
                                                                tmp_path) -> None:
    out = tmp_path / "ksl.xlsx"
    code, _, err = await orikaeshi(db_url, tmp_path, "report", "month", "--client", "WSH",
                                   "--month", "2026-11", "--format", "xlsx", "--out", str(out))
    assert code == 0, err
    book = openpyxl.load_workbook(out)
    summary = book["概要"]
    figures = {row[1].value: row[2] for row in summary.iter_rows(min_row=7)
               if len(row) > 2 and row[1].value}
    assert figures["着信数"].data_type == "n" and isinstance(figures["着信数"].value, int)
    assert figures["着信数"].value > 0
    assert figures["短時間放棄（5 秒以内）"].value >= 1
    days = book["日別"]
    assert days["A2"].is_date and days["B2"].data_type == "n"
    missed = book["不在着信一覧"]
    rows = list(missed.iter_rows(min_row=2))
    assert rows, "WSH missed calls in November"
    async with ledger.acquire() as conn:
        expected = await conn.fetch(
            "SELECT caller_number, caller_e164, caller_name FROM calls WHERE client = 'WSH' "
            "AND outcome IN ('abandoned', 'short_abandon', 'no_agents') AND started_at < "
            "'2026-12-01T00:00:00+09:00' ORDER BY started_at")
    assert len(rows) == len(expected)
    for row, call in zip(rows, expected, strict=True):
        assert row[0].is_date
        assert row[1].data_type == "s" and row[1].value == call["caller_number"]
        assert row[2].data_type == "s" and row[2].value == call["caller_e164"]
        assert not str(row[1].value).startswith("'")
    hostile = [row for row in rows if row[3].value == HOSTILE_NAME]
    assert hostile and hostile[0][3].data_type == "s"  # text, not a formula


async def test_csv_and_html(ledger, db_url, tmp_path) -> None:
    code, raw, err = await orikaeshi(db_url, tmp_path, "report", "month", "--client", "MDC",
                                     "--month", "2026-11", "--format", "csv")
    assert code == 0, err
    assert raw.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    values = {row[1]: row[2] for row in lines[1:]}
    code, raw_json, _ = await orikaeshi(db_url, tmp_path, "report", "month", "--client", "MDC",
                                        "--month", "2026-11")
    report = json.loads(raw_json)
    assert values["着信数"] == str(report["calls"])
    assert values["超過件数"] == str(report["plan"]["overage_calls"])
    code, page, _ = await orikaeshi(db_url, tmp_path, "report", "month", "--client", "MDC",
                                    "--month", "2026-11", "--format", "html", "--lang", "en")
    html = page.decode()
    assert code == 0 and "Monthly call report" in html and "data:image/png;base64," in html
    assert COMPANY in html


async def test_bad_requests_are_clear_errors(ledger, db_url, tmp_path) -> None:
    code, _, err = await orikaeshi(db_url, tmp_path, "report", "month", "--client", "KSL",
                                   "--month", "November")
    assert code == 2 and "not a month" in err and "Traceback" not in err
    code, _, err = await orikaeshi(db_url, tmp_path, "report", "month", "--client", "NOPE",
                                   "--month", "2026-11")
    assert code == 2 and "no client NOPE" in err
    code, _, err = await orikaeshi(db_url, tmp_path, "report", "month", "--month", "2026-11",
                                   "--format", "pdf")
    assert code == 2 and "--client" in err


async def test_api_roles_scope_and_audit(ledger, db_url, tmp_path) -> None:
    tokens = {}
    async with ledger.acquire() as conn:
        for name, role, client in (("admin", "admin", None), ("sup", "supervisor", None),
                                   ("op", "operator", None), ("ksl", "client", "KSL")):
            user = await web_sql.create_user(conn, name, hash_password(PASSWORD), role,
                                             client=client)
            tokens[name] = await web_sql.new_api_token(conn, user.id, "t")
    app = create_app(web_config(tmp_path, db_url), [database_ctx, web_ctx])
    async with TestClient(TestServer(app)) as http:
        async def get(who: str, path: str) -> tuple[int, bytes, str]:
            response = await http.get(path, headers={"Authorization": f"Bearer {tokens[who]}"})
            return response.status, await response.read(), response.content_type

        base = "/api/reports/monthly?month=2026-11"
        status, body, _ = await get("sup", base)
        assert status == 200
        assert [r["client"] for r in json.loads(body)["items"]] == ["KSL", "MDC", "WSH"]
        status, body, _ = await get("ksl", base)  # a client user: its own report only
        assert status == 200 and json.loads(body)["client"] == "KSL"
        assert (await get("ksl", base + "&client=MDC"))[0] == 404
        assert (await get("op", base))[0] == 403
        assert (await get("sup", base + "&client=NOPE"))[0] == 404
        assert (await get("sup", "/api/reports/monthly?month=13"))[0] == 400
        status, body, kind = await get("ksl", base + "&format=pdf")
        assert status == 200 and kind == "application/pdf" and body.startswith(b"%PDF")
        status, body, kind = await get("ksl", base + "&client=KSL&format=xlsx")
        assert status == 200 and body[:2] == b"PK"
        status, body, kind = await get("ksl", "/api/reports/chart?month=2026-11&chart=by_hour")
        assert status == 200 and kind == "image/png" and body.startswith(b"\x89PNG")
        status, body, _ = await get("sup", base + "&client=MDC&figures=1&lang=en")
        figures = json.loads(body)["figures"]
        assert ["Calls", "Calls offered", json.loads(body)["calls"]] in figures
        status, body, _ = await get("ksl", "/api/calls.csv")
        assert status == 200 and b"KSL" in body
        assert (await get("sup", "/api/audit"))[0] == 403
        status, body, _ = await get("admin", "/api/audit")
        assert status == 200
        trail = [(r["actor"], r["action"], r["client"]) for r in json.loads(body)["items"]]
        assert ("ksl", "report_export", "KSL") in trail
        assert ("ksl", "calls_export", "KSL") in trail
        assert ("sup", "report_view", None) in trail and ("sup", "report_view", "MDC") in trail
        assert not any(actor == "ksl" and client == "MDC" for actor, _, client in trail)
        status, body, _ = await get("admin", "/api/audit?client=KSL")
        assert {r["client"] for r in json.loads(body)["items"]} == {"KSL"}
    code, out, _ = await orikaeshi(db_url, tmp_path, "report", "audit", "--client", "KSL")
    assert code == 0 and b"report_export" in out and b"ksl" in out
