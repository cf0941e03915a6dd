"""``orikaeshi dialplan render|include|wrapup|check`` and ``orikaeshi prompts``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from service.ami.adapter import AmiClient, AmiError
from service.callflows.presence import WRAPUP_INCLUDE, render_wrapup
from service.clients.commands import clients_from
from service.clients.model import Directory
from service.clients.schema import ClientsFileError
from service.config import Config, ConfigError, PbxConfig
from service.dialplan.asterisk_conf import read_conf
from service.dialplan.check import check_directory, check_variables, check_wrapup
from service.dialplan.pbx_check import PbxFacts, check_pbx, host_timezone
from service.dialplan.prompts import generate, missing_tools, needed_prompts
from service.dialplan.render import VersionError, asterisk_major, include_for, render_fallback


def add_commands(sub: Any) -> None:
    dialplan = sub.add_parser("dialplan", help="the Asterisk dialplan the service expects")
    dsub = dialplan.add_subparsers(dest="dialplan_command", required=True)
    render = dsub.add_parser("render", help="write the static fallback map from the clients")
    render.add_argument("--clients", type=Path, help="clients file (default: the database)")
    render.add_argument("--out", type=Path, help="file (default: stdout)")
    render.set_defaults(handler=render_command)
    wrapup = dsub.add_parser("wrapup", help=f"write {WRAPUP_INCLUDE}: each client queue's "
                                            "after-call work (wrapuptime) from the clients "
                                            "file, to #include at the end of queues.conf")
    wrapup.add_argument("--clients", type=Path, help="clients file (default: the database)")
    wrapup.add_argument("--out", type=Path, help="file (default: stdout)")
    wrapup.set_defaults(handler=wrapup_command)
    check = dsub.add_parser("check", help="check config against the dialplan")
    check.add_argument("--clients", type=Path, help="clients file (default: the database)")
    check.add_argument("--asterisk-etc", type=Path, default=Path("/etc/asterisk"),
                       help="where queues.conf and orikaeshi-fallback.conf are")
    check.add_argument("--sounds", type=Path, default=Path("/var/lib/asterisk/sounds"))
    check.add_argument("--pbx", help="pbx_id of the configuration (default: the first)")
    check.add_argument("--asterisk-version", help="the PBX's Asterisk version (default: ask "
                                                  "it over AMI)")
    check.add_argument("--pbx-tz", help="time zone of the PBX host's clock (default: this "
                                        "host's, read from /etc/localtime)")
    check.set_defaults(handler=check_command)
    include = dsub.add_parser("include", help="write dialplan/orikaeshi.conf (or --file) for "
                                              "the PBX's Asterisk release")
    include.add_argument("--file", default="orikaeshi.conf",
                         help="which dialplan/ file: orikaeshi.conf (default) or "
                              "safetynet.conf, the two with a Queue() naming the member Gosub "
                              "(the other files, outbound-guard.conf too, are the same on "
                              "every release: copy them as they are)")
    include.add_argument("--asterisk-version", help="e.g. 20.20.1 (default: ask the PBX "
                                                    "over AMI)")
    include.add_argument("--pbx", help="pbx_id of the configuration (default: the first)")
    include.add_argument("--out", type=Path, help="file (default: stdout)")
    include.set_defaults(handler=include_command)
    prompts = sub.add_parser("prompts", help="generate the per-client prompts (espeak-ng + "
                                             "sox), or list what to record")
    prompts.add_argument("--clients", type=Path, help="clients file (default: the database)")
    prompts.add_argument("--out", type=Path, default=Path("/var/lib/asterisk/sounds"))
    prompts.add_argument("--list", action="store_true", help="only list them")
    prompts.set_defaults(handler=prompts_command)


async def _directory(config: Config, path: Path | None) -> Directory | None:
    try:
        directory = await clients_from(config, path)
    except (OSError, UnicodeDecodeError, ClientsFileError) as exc:
        print(f"orikaeshi: {exc}", file=sys.stderr)
        return None
    if directory is None:
        print("orikaeshi: no clients loaded; give --clients FILE", file=sys.stderr)
    return directory


async def render_command(args: argparse.Namespace, config: Config) -> int:
    directory = await _directory(config, args.clients)
    if directory is None:
        return 2
    return 0 if _emit(render_fallback(directory), args.out, f"wrote {args.out}") else 2


async def wrapup_command(args: argparse.Namespace, config: Config) -> int:
    directory = await _directory(config, args.clients)
    if directory is None:
        return 2
    return 0 if _emit(render_wrapup(directory), args.out, f"wrote {args.out}") else 2


def _emit(text: str, out: Path | None, note: str) -> bool:
    """Write ``text`` to ``out`` (and say so on stderr), or to stdout; False (and why on
    stderr) when ``out`` cannot be written."""
    if out:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"orikaeshi: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
            return False
        print(note, file=sys.stderr)
    else:
        sys.stdout.write(text)
    return True


def _read_optional(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


async def probe_pbx(pbx: PbxConfig, timeout: float) -> tuple[PbxFacts, str | None]:
    """Ask the PBX over AMI for its Asterisk version (CoreSettings) and the queue members
    logged in now (QueueStatus).  Returns the facts, or why they could not be had."""
    client = AmiClient(pbx.pbx_id, pbx.ami_host, pbx.ami_port, pbx.ami_username,
                       pbx.ami_secret, lambda events: None, connect_timeout=timeout,
                       action_timeout=timeout, reconnect_min=timeout, reconnect_max=timeout)
    task = asyncio.create_task(client.run(), name=f"probe-{pbx.pbx_id}")
    try:
        async with asyncio.timeout(timeout * 2):
            await client.logged_in.wait()
        settings = await client.send_action({"Action": "CoreSettings"})
        version = settings.get("AsteriskVersion")
        try:
            queues = await client.send_action({"Action": "QueueStatus"}, as_list=True)
        except AmiError as exc:  # e.g. app_queue not loaded yet: the version still counts
            return PbxFacts(asterisk_version=version), f"QueueStatus: {exc}"
    except (TimeoutError, AmiError) as exc:
        why = client.last_error or str(exc) or "no answer in time"
        return PbxFacts(), f"AMI {pbx.ami_host}:{pbx.ami_port}: {why}"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    members = tuple(sorted({m.get("Location") or m.get("Interface") or "" for m in queues
                            if m.get("Event") == "QueueMember"} - {""}))
    return PbxFacts(asterisk_version=version, members=members), None


def _pbx(config: Config, pbx_id: str | None) -> PbxConfig:
    return config.pbx(pbx_id) if pbx_id else config.pbxs[0]


async def include_command(args: argparse.Namespace, config: Config) -> int:
    version = args.asterisk_version
    if version is None:
        facts, error = await probe_pbx(_pbx(config, args.pbx), config.ami_connect_timeout_s)
        version = facts.asterisk_version
        if version is None:
            print(f"orikaeshi dialplan include: cannot ask the PBX its version ({error}); "
                  "give --asterisk-version", file=sys.stderr)
            return 2
    # A name inside dialplan/, never a path elsewhere.
    source = config.dialplan_dir / Path(args.file).name
    if not source.is_file():
        print(f"orikaeshi dialplan include: no {source.name} in {config.dialplan_dir}",
              file=sys.stderr)
        return 2
    text = source.read_text(encoding="utf-8")
    try:
        rendered = include_for(text, asterisk_major(version))
    except VersionError as exc:
        print(f"orikaeshi dialplan include: {exc}", file=sys.stderr)
        return 2
    return 0 if _emit(rendered, args.out, f"wrote {args.out} for Asterisk {version}") else 2


async def check_command(args: argparse.Namespace, config: Config) -> int:
    directory = await _directory(config, args.clients)
    if directory is None:
        return 2
    try:
        pbx = _pbx(config, args.pbx)
    except ConfigError as exc:
        print(f"orikaeshi dialplan check: {exc}", file=sys.stderr)
        return 2
    include = config.dialplan_dir / "orikaeshi.conf"
    problems = check_variables(include.read_text(encoding="utf-8"))
    for other in sorted(config.dialplan_dir.glob("*.conf")):
        if other != include:
            problems += [f"{other.name}: {p}" for p in
                         check_variables(other.read_text(encoding="utf-8"), must_read=())]
    queues = _read_optional(args.asterisk_etc / "queues.conf")
    fallback = _read_optional(args.asterisk_etc / "orikaeshi-fallback.conf")
    if queues is None:
        problems.append(f"{args.asterisk_etc / 'queues.conf'} cannot be read")
    if fallback is None:
        problems.append(f"{args.asterisk_etc / 'orikaeshi-fallback.conf'} cannot be read "
                        "(orikaeshi dialplan render --out ...)")
    problems += check_directory(directory, queues_conf=queues, fallback_conf=fallback,
                                sounds=args.sounds if args.sounds.exists() else None)
    queues_read = read_conf(args.asterisk_etc / "queues.conf", args.asterisk_etc)
    if queues_read is not None:
        problems += check_wrapup(directory, queues_read)
    if not args.sounds.exists():
        problems.append(f"sounds directory {args.sounds} does not exist")
    facts = PbxFacts()
    if args.asterisk_version is None:
        facts, error = await probe_pbx(pbx, config.ami_connect_timeout_s)
        if error:
            print(f"orikaeshi dialplan check: {error}", file=sys.stderr)
    config_name = str(args.config or os.environ.get("ORIKAESHI_CONFIG") or "configuration")
    problems += check_pbx(pbx, args.asterisk_etc, agi_port=config.agi_port,
                          config_name=config_name, facts=facts,
                          asterisk_version=args.asterisk_version,
                          pbx_tz=args.pbx_tz or host_timezone())
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    version = args.asterisk_version or facts.asterisk_version
    print(f"ok: {len(directory.clients)} clients, {len(directory.by_did)} DIDs, dialplan "
          f"{include}, PBX {pbx.pbx_id} (Asterisk {version}) at {args.asterisk_etc}")
    return 0


async def prompts_command(args: argparse.Namespace, config: Config) -> int:
    directory = await _directory(config, args.clients)
    if directory is None:
        return 2
    prompts = needed_prompts(directory)
    missing = missing_tools(prompts)
    if args.list or missing:
        if not args.list:
            print(", ".join(missing) + " not installed: record these files instead "
                  "(8 kHz mono WAV), or install them and run this again:", file=sys.stderr)
        for prompt in prompts:
            print(f"{args.out / prompt.name}.wav\t{prompt.text}")
        return 0 if args.list else 1
    for path in generate(prompts, args.out):
        print(path)
    return 0
