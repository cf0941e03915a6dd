"""A PBX's /etc/asterisk made of the project's real samples, for ``dialplan check`` tests:
the files an admin copies (dialplan/*.sample under their real names, the includes, the
rendered fallback map), which a test then alters one setting at a time."""

from __future__ import annotations

import shutil
from pathlib import Path

from service.clients.schema import parse_clients
from service.config import REPO_ROOT, PbxConfig, load_config
from service.dialplan.render import render_fallback

SAMPLE_CLIENTS = REPO_ROOT / "deploy" / "clients.sample.yaml"
SAMPLE_CONFIG = REPO_ROOT / "deploy" / "orikaeshi.toml.sample"
SAMPLES = ("extensions", "queues", "manager", "cdr", "musiconhold", "features", "confbridge")
INCLUDES = ("orikaeshi.conf", "escalation.conf", "supervisor.conf", "safetynet.conf",
            "handraise.conf", "recording.conf", "presence.conf", "outbound-guard.conf")


def sample_pbx() -> PbxConfig:
    return load_config(SAMPLE_CONFIG, environ={}).pbxs[0]


def sample_etc(root: Path) -> Path:
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    for name in SAMPLES:
        shutil.copy(REPO_ROOT / "dialplan" / f"{name}.conf.sample", etc / f"{name}.conf")
    for name in INCLUDES:
        shutil.copy(REPO_ROOT / "dialplan" / name, etc / name)
    directory = parse_clients(SAMPLE_CLIENTS.read_text(encoding="utf-8"), "sample.yaml")
    (etc / "orikaeshi-fallback.conf").write_text(render_fallback(directory))
    return etc


def edit(path: Path, old: str, new: str) -> None:
    """Replace one piece of a copied file; refuse when the sample no longer has it."""
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1))
