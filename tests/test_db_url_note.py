"""``orikaeshi db url`` with the embedded server: a person at a terminal is told that the
server stops when the command ends (and how to keep it); a script reading the output gets the
URL alone and a quiet stderr."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_db_url_tells_a_person_the_embedded_server_stops() -> None:
    base = Path(tempfile.mkdtemp(prefix="orikaeshi-db-url-"))
    os.chmod(base, 0o755)  # the embedded server runs as its own user when root
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["ORIKAESHI_DATA_DIR"] = str(base / "data")
    try:
        # stderr on a terminal (a person), stdout piped.
        primary, secondary = pty.openpty()
        try:
            done = subprocess.run([sys.executable, "-m", "service", "db", "url"], cwd=REPO,
                                  env=env, stdout=subprocess.PIPE, stderr=secondary,
                                  stdin=subprocess.DEVNULL, timeout=180, check=False)
            os.close(secondary)
            said = b""
            while True:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:  # the terminal closed: all was read
                    break
                if not chunk:
                    break
                said += chunk
        finally:
            os.close(primary)
        assert done.returncode == 0
        assert done.stdout.decode().startswith("postgresql://")
        assert b"the embedded server stops when this command ends" in said
        assert b"db url --wait" in said and b"embedded_postgres" not in said
        # A script: nothing on stderr.
        piped = subprocess.run([sys.executable, "-m", "service", "db", "url"], cwd=REPO,
                               env=env, capture_output=True, text=True, timeout=180,
                               check=False)
        assert piped.returncode == 0 and piped.stderr == ""
        assert piped.stdout.strip() == done.stdout.decode().strip()
    finally:
        shutil.rmtree(base, ignore_errors=True)
