"""A real Asterisk for integration tests, in a private directory with loopback ports only.

Found through ``ASTERISK_BIN`` (or ``asterisk`` on PATH); tests using it are skipped when
there is none.  Nothing here builds Asterisk: it runs the binary it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import wave
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg
import pytest

from service.ami.adapter import AmiClient
from service.ami.parser import AmiMessage
from service.config import Config, PbxConfig
from service.dialplan.render import asterisk_major, include_for
from service.ledger.pipeline import build_pipeline
from tests.waiting import running

REPO = Path(__file__).resolve().parents[1]

NOLOAD = """
noload => chan_pjsip.so
noload => res_pjsip.so
noload => chan_iax2.so
noload => chan_unistim.so
noload => chan_websocket.so
noload => chan_audiosocket.so
noload => res_audiosocket.so
noload => pbx_dundi.so
noload => res_phoneprov.so
noload => res_http_websocket.so
noload => res_websocket_client.so
noload => res_ari.so
noload => res_prometheus.so
noload => res_statsd.so
noload => res_hep.so
noload => res_hep_rtcp.so
noload => res_stun_monitor.so
noload => res_calendar.so
noload => res_config_pgsql.so
noload => cdr_pgsql.so
noload => cel_pgsql.so
noload => chan_dahdi.so
noload => chan_console.so
noload => res_pktccops.so
noload => res_snmp.so
noload => res_http_media_cache.so
noload => chan_rtp.so
noload => res_rtp_multicast.so
"""


def asterisk_binary() -> str | None:
    return os.environ.get("ASTERISK_BIN") or shutil.which("asterisk")


def asterisk_version(binary: Path) -> str:
    """What ``asterisk -V`` says, e.g. "Asterisk 20.20.1"."""
    done = subprocess.run([str(binary), "-V"], capture_output=True, text=True, timeout=20,
                          check=False)
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _documentation_dir(binary: Path) -> Path | None:
    """Asterisk refuses to start without its XML documentation in astdatadir."""
    prefix = binary.resolve().parent.parent
    for candidate in (prefix / "var/lib/asterisk/documentation",
                      prefix / "share/asterisk/documentation",
                      Path("/var/lib/asterisk/documentation"),
                      Path("/usr/share/asterisk/documentation")):
        if (candidate / "core-en_US.xml").exists():
            return candidate
    return None


def _modules_dir(binary: Path) -> Path:
    prefix = binary.resolve().parent.parent
    for candidate in (prefix / "lib/asterisk/modules", prefix / "lib64/asterisk/modules",
                      Path("/usr/lib/asterisk/modules"),
                      Path("/usr/lib/x86_64-linux-gnu/asterisk/modules")):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"no Asterisk modules directory next to {binary}")


class LiveAsterisk:
    """Start an Asterisk whose dialplan is ours: ``extensions`` is the extensions.conf body."""

    def __init__(self, root: Path, extensions: str, *, queues: str, voicemail: str = "",
                 extra_files: dict[str, str] | None = None) -> None:
        binary = asterisk_binary()
        if binary is None:
            pytest.skip("no Asterisk: set ASTERISK_BIN to run live-PBX tests")
        self.binary = Path(binary)
        self.root = root
        self.version = asterisk_version(self.binary)
        self.ami_port = free_port()
        self.etc = root / "etc"
        self.sounds = root / "data" / "sounds"
        for sub in ("etc", "lib", "db", "keys", "spool", "run", "log", "data/sounds", "agi"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        docs = _documentation_dir(self.binary)
        if docs is None:
            pytest.skip(f"Asterisk at {binary} has no XML documentation installed")
        (root / "data" / "documentation").symlink_to(docs)
        files = {
            "asterisk.conf": f"""[directories]
astetcdir => {self.etc}
astmoddir => {_modules_dir(self.binary)}
astvarlibdir => {root / "lib"}
astdbdir => {root / "db"}
astkeydir => {root / "keys"}
astdatadir => {root / "data"}
astagidir => {root / "agi"}
astspooldir => {root / "spool"}
astrundir => {root / "run"}
astlogdir => {root / "log"}
[options]
nofork = yes
""",
            "modules.conf": "[modules]\nautoload = yes\n" + NOLOAD,
            "logger.conf": "[general]\n[logfiles]\nmessages.log => notice,warning,error\n",
            "manager.conf": f"""[general]
enabled = yes
port = {self.ami_port}
bindaddr = 127.0.0.1
timestampevents = yes
[test]
secret = test
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = all
write = all
""",
            "http.conf": "[general]\nenabled = no\n",
            "cdr.conf": "[general]\nenable = no\n",
            "extensions.conf": extensions,
            # The include as `orikaeshi dialplan include` writes it for this binary's release
            # (Queue()'s member Gosub moved between 20 and 21): `#include orikaeshi.conf`.
            "orikaeshi.conf": include_for((REPO / "dialplan" / "orikaeshi.conf").read_text(),
                                          asterisk_major(self.version)),
            "queues.conf": queues,
            "voicemail.conf": voicemail or "[general]\nformat = wav\n",
            "musiconhold.conf": "[default]\nmode = files\ndirectory = moh\n",
            **(extra_files or {}),
        }
        for name, text in files.items():
            (self.etc / name).write_text(text)
        (root / "data" / "moh").mkdir(exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pbx_config(self) -> PbxConfig:
        """This PBX as the service's configuration names it (AMI account of manager.conf)."""
        return PbxConfig(pbx_id="live", ami_port=self.ami_port, ami_username="test",
                         ami_secret="test")

    def start(self, timeout: float = 30.0) -> None:
        self.process = subprocess.Popen(
            [str(self.binary), "-f", "-C", str(self.etc / "asterisk.conf")],
            stdin=subprocess.DEVNULL, stdout=(self.root / "console.log").open("wb"),
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("Asterisk exited: " +
                                   (self.root / "console.log").read_text(errors="replace")[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.ami_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("Asterisk did not open its AMI port")

    def cli(self, command: str) -> str:
        done = subprocess.run([str(self.binary), "-C", str(self.etc / "asterisk.conf"), "-rx",
                               command], capture_output=True, text=True, timeout=20,
                              check=False)
        return done.stdout

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.cli("core stop now")
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def live_clients(*codes: str, queue_timeout: str = "20s") -> str:
    """A clients file for live tests: the reference clients, open all day, every day."""
    known = {"KSL": ("Kasumi Law Office", "0312345678", "q-ksl", "1001@lab"),
             "MDC": ("Midori Clinic", "0663330001", "q-mdc", "1002@lab"),
             "WSH": ("Hoshi Web Shop", "0501234567", "q-wsh", "1003@lab")}
    lines = [f"defaults: {{queue_timeout: {queue_timeout}}}",
             "unknown_did: {queue: q-ksl, whisper: orikaeshi/whisper-unknown, "
             "voicemail: 1009@lab}", "clients:"]
    for code in codes:
        name, did, queue, box = known[code]
        lines += [f"  {code}:", f"    name: {name}", f"    dids: [{did}]",
                  "    hours: {daily: 00:00-24:00}", "    national_holidays: none",
                  f"    queue: {queue}", f"    whisper: custom/whisper-{code.lower()}",
                  f"    voicemail: {box}"]
    return "\n".join(lines) + "\n"


# The voicemail boxes live_clients() names.
LIVE_VOICEMAIL = "[general]\nformat = wav\n[lab]\n1001 => 1\n1002 => 2\n1003 => 3\n1009 => 9\n"


def silent_prompt(path: Path) -> None:
    """A real (silent) prompt file, so Read() and the queue announcements play something."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 1600)



@contextlib.asynccontextmanager
async def ledger_and_control(pbx: LiveAsterisk, pool: asyncpg.Pool, config: Config,
                             members: dict[str, str], events: list[AmiMessage], *,
                             pbx_config: PbxConfig | None = None
                             ) -> AsyncIterator[AmiClient]:
    """The real ledger on ``pbx``'s AMI and a control AMI session, once Asterisk has fully
    booted, with each queue's member (an extension of ``[test-operators]``) added.  Yields
    the control client; ``events`` fills with every AMI event the ledger reads.
    ``pbx_config``: the service's view of this PBX (default: ``pbx.pbx_config``)."""
    pipeline = build_pipeline(config, pbx_config or pbx.pbx_config, pool,
                              taps=[lambda _pbx, batch: events.extend(batch)])
    booted = asyncio.Event()

    def watch_boot(batch: list[AmiMessage]) -> None:
        # AMI answers before the dialplan is loaded: calls wait for FullyBooted.
        if any(event.get("Event") == "FullyBooted" for event in batch):
            booted.set()

    control = AmiClient("control", "127.0.0.1", pbx.ami_port, "test", "test", watch_boot)
    async with running(pipeline.run()), running(control.run()):
        async with asyncio.timeout(30):
            await pipeline.client.logged_in.wait()
            await control.logged_in.wait()
            await booted.wait()
        for queue, member in members.items():
            await control.send_action({
                "Action": "QueueAdd", "Queue": queue, "MemberName": f"op{member}",
                "Interface": f"Local/{member}@test-operators/n"})
        yield control


def extensions_head(agi_port: int | None, *, outside: str = "test-outside",
                    includes: Sequence[str] = ("orikaeshi.conf", "orikaeshi-fallback.conf"),
                    globals_extra: str = "") -> str:
    """The head of a live test's extensions.conf: ``[general]`` as the sample has it; with
    ``agi_port``, ``[globals]`` (the AGI there, outside numbers dialled as
    Local/<number>@``outside``/n, then ``globals_extra`` lines) and the ``#include`` of each
    of ``includes`` (a name in the PBX's etc, where LiveAsterisk writes orikaeshi.conf for
    its release, or an absolute path).  The test's own contexts follow it."""
    head = "[general]\nstatic = yes\nwriteprotect = yes\n\n"
    if agi_port is None:
        return head
    lines = "".join(f"#include {name}\n" for name in includes)
    return f"""{head}[globals]
ORIKAESHI_AGI = agi://127.0.0.1:{agi_port}
ORIKAESHI_OUTSIDE_PREFIX = Local/
ORIKAESHI_OUTSIDE_SUFFIX = @{outside}/n
{globals_extra}
{lines}
"""


def orikaeshi_extensions(agi_port: int, *, talk_s: int = 3, outside: str = "test-outside"
                         ) -> str:
    """extensions.conf of a live test: the include, the fallback map, the outbound guard
    (its FastAGI route is the test's to serve), simulated operators
    in [test-operators] (answer after a second, talk ``talk_s``) and outside numbers
    (dialled in ``outside``; [test-outside] is always busy)."""
    return extensions_head(agi_port, outside=outside, includes=(
        "orikaeshi.conf", "orikaeshi-fallback.conf",
        str(REPO / "dialplan" / "outbound-guard.conf"))) + f"""\
; simulated operators: answer after a second, then talk
[test-operators]
exten => _X.,1,Ringing()
 same => n,Wait(1)
 same => n,Answer()
 same => n,Wait({talk_s})
 same => n,Hangup()

[test-outside]
exten => _X.,1,Busy(5)
"""


@contextlib.asynccontextmanager
async def booted_control(pbx: LiveAsterisk, events: list[AmiMessage]) -> AsyncIterator[AmiClient]:
    """A control AMI session on ``pbx``, yielded once Asterisk has fully booted (AMI answers
    before the dialplan is loaded); ``events`` fills with every event it reads."""
    booted = asyncio.Event()

    def collect(batch: list[AmiMessage]) -> None:
        events.extend(batch)
        if any(event.get("Event") == "FullyBooted" for event in batch):
            booted.set()

    control = AmiClient("control", "127.0.0.1", pbx.ami_port, "test", "test", collect)
    async with running(control.run()):
        async with asyncio.timeout(30):
            await control.logged_in.wait()
            await booted.wait()
        yield control


def dump(path: Path, events: list[AmiMessage]) -> None:
    """Kept beside the PBX's logs for whoever reads a failure."""
    with path.open("w") as out:
        for event in events:
            out.write(json.dumps(dict(event), ensure_ascii=False) + "\n")
