"""``orikaeshi dialplan render|check`` and ``orikaeshi prompts``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from service.clients.commands import clients_from
from service.clients.model import Directory
from service.clients.schema import ClientsFileError
from service.config import Config
from service.dialplan.check import check_directory, check_variables
from service.dialplan.prompts import generate, missing_tools, needed_prompts
from service.dialplan.render import render_fallback


def add_commands(sub: Any) -> None:
    dialplan = sub.add_parser("dialplan", help="the Asterisk dialplan the service expects")
    dsub = dialplan.add_subparsers(dest="dialplan_command", required=True)
    render = dsub.add_parser("render", help="write the static fallback map from the clients")
    render.add_argument("--clients", type=Path, help="clients file (default: the database)")
    render.add_argument("--out", type=Path, help="file (default: stdout)")
    render.set_defaults(handler=render_command)
    check = dsub.add_parser("check", help="check config against the dialplan")
    check.add_argument("--clients", type=Path, help="clients file (default: the database)")
    check.add_argument("--asterisk-etc", type=Path, default=Path("/etc/asterisk"),
                       help="where queues.conf and orikaeshi-fallback.conf are")
    check.add_argument("--sounds", type=Path, default=Path("/var/lib/asterisk/sounds"))
    check.set_defaults(handler=check_command)
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
    text = render_fallback(directory)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _read_optional(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


async def check_command(args: argparse.Namespace, config: Config) -> int:
    directory = await _directory(config, args.clients)
    if directory is None:
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
    if not args.sounds.exists():
        problems.append(f"sounds directory {args.sounds} does not exist")
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"ok: {len(directory.clients)} clients, {len(directory.by_did)} DIDs, dialplan "
          f"{include}")
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
