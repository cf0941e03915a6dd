"""Configuration as plain data.

Defaults live here, a TOML file (``--config`` or ``ORIKAESHI_CONFIG``) overrides them, and the
environment overrides both.  Live clients (pools, AMI connections) are never stored here; they
are created from this data and passed explicitly.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """The configuration file or environment holds a value that cannot be used."""


@dataclass(frozen=True)
class PbxConfig:
    """One Asterisk PBX: where its AMI is and which dialplan contexts mean what."""

    pbx_id: str = "pbx1"
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = "orikaeshi"
    ami_secret: str = ""
    # A call whose first channel starts in one of these contexts is an inbound (customer) call.
    inbound_contexts: tuple[str, ...] = ("from-pstn", "orikaeshi-inbound")
    # A channel that runs in one of these contexts is dialling out (call backs, click-to-call):
    # the shipped [orikaeshi-outbound], and [outbound] of the reference PBX's recordings.
    outbound_contexts: tuple[str, ...] = ("orikaeshi-outbound", "outbound")
    # Time zone of the PBX host clock, used to read CDR dates (cdr_csv writes local time).
    clock_tz: str = "UTC"
    # How to ring an operator's or supervisor's own phone ({ext} is the extension), for
    # click-to-call and for listen/whisper/barge: PJSIP/{ext}, or Local/{ext}@opphone/n.
    phone_channel: str = "PJSIP/{ext}"
    # Where an originated call back dials the callee (${EXTEN} = the number).
    callback_context: str = "orikaeshi-outbound"
    # Where an escalated caller is sent (the extension is the reason), see
    # dialplan/escalation.conf.
    escalation_context: str = "orikaeshi-escalate"
    # Where Asterisk's cdr_csv writes Master.csv (astlogdir of asterisk.conf + /cdr-csv), the
    # file `orikaeshi reconcile --cdr` reads; `orikaeshi dialplan check` compares them.
    cdr_csv_dir: str = "/var/log/asterisk/cdr-csv"
    # Asterisk's own records for continuous reconciliation (docs/reconcile.md): "off",
    # "database" (cdr_pgsql and realtime queue_log write the cdr and queue_log tables of
    # orikaeshi's database), or "files" (the service runs on the PBX host and follows
    # cdr_file, Master.csv of cdr_csv, and queue_log_file).
    reconcile_source: str = "off"
    cdr_file: str = ""
    queue_log_file: str = ""
    # Where this PBX's MixMonitor writes call recordings (Asterisk's monitor spool, as seen
    # from the service's host): files are orikaeshi/<linkedid>.wav under it.
    recordings_dir: Path = Path("/var/spool/asterisk/monitor")


@dataclass(frozen=True)
class Config:
    database_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir("orikaeshi")))
    pbxs: tuple[PbxConfig, ...] = (PbxConfig(),)
    # Hold the AMI consumer of each PBX under a PostgreSQL advisory lock, so that of several
    # instances sharing one database exactly one ingests a given PBX.
    ami_lock: bool = True
    ami_connect_timeout_s: float = 5.0
    ami_ping_interval_s: float = 10.0
    ami_ping_timeout_s: float = 5.0
    ami_action_timeout_s: float = 10.0
    ami_reconnect_min_s: float = 0.5
    ami_reconnect_max_s: float = 30.0
    # AMI events read but not yet applied; past it the socket is paused (Asterisk buffers).
    # 5,000 is ~80 ms of the ingest bench's flood and far more than a PBX's burst; each
    # queued event holds ~3.5 kB, so a larger bound only grows memory (docs/ledger.md).
    ami_event_queue: int = 5000
    ami_max_message_bytes: int = 256 * 1024
    ledger_flush_interval_s: float = 0.05
    ledger_flush_max_records: int = 2000
    short_abandon_s: float = 5.0
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    agi_max_sessions: int = 500
    agi_header_timeout_s: float = 5.0
    agi_command_timeout_s: float = 5.0
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = "orikaeshi@localhost"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    # Faxes to callees go as e-mail to this gateway address ({national} or {e164} is the
    # fax number), e.g. "{national}@fax.example.jp"; empty: no fax (docs/compliance.md).
    fax_gateway: str = ""
    # 受電報告 deliveries: attempts before a delivery is marked failed (backoff 30 s .. 1 h).
    delivery_max_attempts: int = 10
    delivery_http_timeout_s: float = 10.0
    # An open call back still not made this long after it was due becomes ``expired``.
    callback_expire_after_s: float = 7 * 86400.0
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    clients_file: Path | None = None
    dialplan_dir: Path = REPO_ROOT / "dialplan"
    log_level: str = "info"
    log_format: str = "auto"  # auto | json | console
    # uvloop | asyncio (see service/eventloop.py for why uvloop is the default).
    event_loop: str = "uvloop"
    # -- hardening (issue 12, docs/operations.md) --
    # argon2 password checks run in this many threads (each uses one core for ~0.2 s), with
    # at most login_queue more waiting; past that a login gets 503 and Retry-After.
    login_workers: int = 1
    login_queue: int = 16
    # API bearer tokens made by `users token` expire after this many days (0: never).
    token_lifetime_days: int = 90
    # Addresses of reverse proxies (TLS terminators) whose X-Forwarded-Proto and
    # X-Forwarded-For are believed: cookies get Secure, logins are throttled per real client.
    trust_proxy: tuple[str, ...] = ()
    # FastAGI only serves these addresses or networks (the PBXs); default loopback.
    agi_allow: tuple[str, ...] = ("127.0.0.1", "::1")
    # Sessions at once from one address (0: agi_max_sessions).
    agi_max_per_source: int = 0
    # HTTP: a connection must send a complete request (line and headers) within this long
    # of connecting or of its last response, else it is closed; a handler (body included)
    # must finish within http_request_timeout_s (the live stream excepted).
    http_header_timeout_s: float = 10.0
    http_request_timeout_s: float = 30.0
    # Descriptors: never handed to connections (pools, AMI, files); HTTP's share of the rest
    # and its cap per source address; FastAGI may use all that HTTP does not hold.
    fd_reserve: int = 128
    http_fd_share: float = 0.5
    http_max_per_source: int = 64
    # Live streams (SSE) per user and in total.
    stream_max_per_user: int = 4
    stream_max_total: int = 1000
    # /metrics without authentication on this port (0: only on the web port, for admins).
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    # Monthly client reports (docs/reports.md): the answering company's name on them, a
    # TrueType font with Japanese glyphs (empty: found by name, e.g. IPAexGothic), and how
    # often the report scheduler and push worker look for work.
    company_name: str = ""
    # The answering company's own calendar (per-operator monthly figures); clients' reports
    # use each client's timezone.
    company_timezone: str = "Asia/Tokyo"
    report_font: str = ""
    report_interval_s: float = 30.0
    # Asterisk's voicemail spool (e.g. /var/spool/asterisk/voicemail), for ``orikaeshi purge``
    # to delete recordings past a client's retention; empty: recordings are not touched.
    voicemail_spool_dir: str = ""
    # Continuous reconciliation (docs/reconcile.md): how often, how far back, and how long
    # after a call ends before a missing CDR row counts as a difference.
    reconcile_interval_s: float = 60.0
    reconcile_lookback_s: float = 86400.0
    reconcile_settle_after_s: float = 120.0
    # At start, load clients_file as a new version when it differs from the loaded one
    # (false: only say that it differs).
    clients_file_load: bool = False

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir / "postgres"

    def pbx(self, pbx_id: str) -> PbxConfig:
        for pbx in self.pbxs:
            if pbx.pbx_id == pbx_id:
                return pbx
        raise ConfigError(f"no PBX {pbx_id!r} configured (known: {[p.pbx_id for p in self.pbxs]})")


# Environment variables for the single-PBX case; the file is needed for several PBXs.
_PBX_ENV = {
    "ORIKAESHI_PBX_ID": "pbx_id",
    "ORIKAESHI_AMI_HOST": "ami_host",
    "ORIKAESHI_AMI_PORT": "ami_port",
    "ORIKAESHI_AMI_USERNAME": "ami_username",
    "ORIKAESHI_AMI_SECRET": "ami_secret",
}


def _coerce(name: str, raw: Any, target: Any) -> Any:
    """Convert a file or environment value to the type of the default it replaces."""
    try:
        if isinstance(target, bool):
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(target, int):
            return int(raw)
        if isinstance(target, float):
            return float(raw)
        if isinstance(target, Path) or name in ("clients_file", "data_dir", "dialplan_dir"):
            return Path(str(raw)).expanduser()
        if isinstance(target, tuple):
            if isinstance(raw, str):
                return tuple(part.strip() for part in raw.split(",") if part.strip())
            return tuple(str(item) for item in raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: cannot use {raw!r} ({exc})") from exc


def _apply(obj: Any, values: Mapping[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(obj)}
    changes = {}
    for key, raw in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        changes[key] = _coerce(key, raw, getattr(obj, key))
    return dataclasses.replace(obj, **changes)


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration: defaults, then the TOML file, then the environment."""
    env = os.environ if environ is None else environ
    config = Config()
    path = path or (Path(env["ORIKAESHI_CONFIG"]) if env.get("ORIKAESHI_CONFIG") else None)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        pbx_tables = data.pop("pbx", None)
        config = _apply(config, data, str(path))
        if pbx_tables is not None:
            if not isinstance(pbx_tables, list) or not pbx_tables:
                raise ConfigError(f"{path}: [[pbx]] must be a non-empty array of tables")
            pbxs = tuple(_apply(PbxConfig(), table, f"{path} [[pbx]]") for table in pbx_tables)
            ids = [p.pbx_id for p in pbxs]
            if len(set(ids)) != len(ids):
                raise ConfigError(f"{path}: duplicate pbx_id in {ids}")
            config = dataclasses.replace(config, pbxs=pbxs)
    scalar = {}
    for f in dataclasses.fields(config):
        key = f"ORIKAESHI_{f.name.upper()}"
        if key in env and f.name != "pbxs":
            scalar[f.name] = env[key]
    if env.get("DATABASE_URL"):
        scalar["database_url"] = env["DATABASE_URL"]
    config = _apply(config, scalar, "environment")
    pbx_env = {attr: env[key] for key, attr in _PBX_ENV.items() if key in env}
    if pbx_env:
        first = _apply(config.pbxs[0], pbx_env, "environment")
        config = dataclasses.replace(config, pbxs=(first, *config.pbxs[1:]))
    check_config(config)
    return config


def check_config(config: Config) -> None:
    """Refuse values that would make the service do something else than asked: a port out
    of range (the kernel would take 99999 modulo 65536 and bind another port), a count
    that cannot be."""
    ports = {"web_port": config.web_port, "agi_port": config.agi_port,
             "metrics_port": config.metrics_port}
    ports.update({f"[[pbx]] {p.pbx_id} ami_port": p.ami_port for p in config.pbxs})
    for name, port in ports.items():
        if not 0 <= port <= 65535:
            raise ConfigError(f"{name}: {port} is not a TCP port (0..65535)")
    for name in ("login_workers", "stream_max_per_user", "stream_max_total",
                 "http_max_per_source", "agi_max_sessions"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name}: must be at least 1")
    if not 0 < config.http_fd_share < 1:
        raise ConfigError("http_fd_share: must be between 0 and 1")
    _check_zone("company_timezone", config.company_timezone)
    for pbx in config.pbxs:
        _check_zone(f"[[pbx]] {pbx.pbx_id} clock_tz", pbx.clock_tz)
    # Continuous reconciliation (docs/reconcile.md): a misspelt source would read nothing
    # and say nothing.
    for p in config.pbxs:
        if p.reconcile_source not in ("off", "database", "files"):
            raise ConfigError(f"[[pbx]] {p.pbx_id} reconcile_source: {p.reconcile_source!r} "
                              "is not one of off, database, files")
        if p.reconcile_source == "files" and not (p.cdr_file or p.queue_log_file):
            raise ConfigError(f"[[pbx]] {p.pbx_id} reconcile_source = \"files\" needs cdr_file "
                              "(Master.csv) and queue_log_file")
    for name in ("reconcile_interval_s", "reconcile_lookback_s"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name}: must be more than 0")
    if config.database_url:
        check_database_url(config.database_url)


def _check_zone(name: str, zone: str) -> None:
    """A time-zone name the zone database knows (a typo would put every time off)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{name}: {zone!r} is not a time zone (e.g. Asia/Tokyo, UTC)") \
            from exc


def check_database_url(url: str) -> None:
    """A DATABASE_URL that cannot be a PostgreSQL address is refused in one line.

    >>> check_database_url("postgresql://u:p@db:5432/orikaeshi")
    >>> check_database_url("postgresql://u:p@db:port/x")
    Traceback (most recent call last):
    ...
    service.config.ConfigError: DATABASE_URL: the port is not a number
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError:
        raise ConfigError("DATABASE_URL: the port is not a number") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError("DATABASE_URL: must start with postgresql://")
