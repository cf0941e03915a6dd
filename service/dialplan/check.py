"""``orikaeshi dialplan check``: the configuration against the dialplan, before a reload.

Checks that the include uses exactly the variable names of agi/variables.py (a typo such as
``${ROUTE_QEUE}`` would silently read as empty), that every DID has a fallback route, that
every queue exists in queues.conf, that every prompt file is there, and that each client
queue's ``wrapuptime`` is the clients file's ``wrapup`` (:func:`check_wrapup`).
"""

from __future__ import annotations

import re
from pathlib import Path

from agi import variables as v
from service.callflows.presence import WRAPUP_INCLUDE, wrapup_times
from service.clients.model import Directory
from service.dialplan.asterisk_conf import ConfFile
from service.dialplan.prompts import check_prompts, needed_prompts

# Names the dialplan may use that are not ours: Asterisk's own variables and functions,
# and the globals the admin sets.
ASTERISK_NAMES = frozenset({
    "EXTEN", "CALLERID", "CHANNEL", "AGISTATUS", "QUEUESTATUS", "VMSTATUS", "DIALSTATUS",
    "EVAL", "CONTEXT", "UNIQUEID", "BRIDGEPEER", "GOSUB_RETVAL", "DYNAMIC_FEATURES", "IF",
    "ORIKAESHI_AGI", "ORIKAESHI_SUPERVISORS", "ORIKAESHI_SPY_PREFIX",
    "ORIKAESHI_OUTSIDE_PREFIX", "ORIKAESHI_OUTSIDE_SUFFIX",
    "ARG1", "ARG2", "ARG3",
})
# Variables the route AGI sets that the dialplan itself must read (the others are read by
# app_queue, like QUEUE_PRIO, or by the ledger from VarSet events; REPEAT_SINCE and ROUTE_TZ
# are for the supervisor's screen, the spoken whisper no longer says the date).
MUST_READ = (v.ACTION, v.QUEUE, v.QUEUE_TIMEOUT, v.OVERFLOW_QUEUE, v.OVERFLOW_TIMEOUT,
             v.WHISPER, v.GREETING, v.CLOSED_PROMPT, v.VM_BOX, v.AFTER_TIMEOUT,
             v.REPEAT_COUNT)
_USE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
_SET = re.compile(r"Set\(([A-Za-z_][A-Za-z0-9_]*)=")
AUDIO = (".wav", ".gsm", ".ulaw", ".alaw", ".sln", ".g722", ".WAV")
# No core sounds (digits/<n>) are demanded: the repeat whisper is one pre-generated Japanese
# prompt per count (orikaeshi/repeat-2..20, repeat-many), listed by needed_prompts.


def _has_audio(sounds: Path, name: str) -> bool:
    return any((base / f"{name}{ext}").exists() for base in (sounds, sounds / "en")
               for ext in AUDIO)


def _bare(name: str) -> str:
    return name.lstrip("_")


def known_variables() -> frozenset[str]:
    ours = {_bare(value) for key, value in vars(v).items()
            if key.isupper() and isinstance(value, str) and "(" not in value}
    return frozenset(ours | ASTERISK_NAMES)


def check_variables(dialplan_text: str, must_read: tuple[str, ...] = MUST_READ) -> list[str]:
    """Names used in ``dialplan_text`` that agi/variables.py does not know, and route
    variables it never reads (pass ``must_read=()`` for includes other than the main one)."""
    problems = []
    known = known_variables()
    used = set(_USE.findall(dialplan_text)) | {_bare(n) for n in _SET.findall(dialplan_text)}
    for name in sorted(used - known):
        problems.append(f"dialplan uses ${{{name}}}, which is not in agi/variables.py")
    for name in must_read:
        if _bare(name) not in used:
            problems.append(f"dialplan never reads {_bare(name)}, which the route AGI sets")
    return problems


def queues_in(queues_conf: str) -> set[str]:
    sections = set()
    for line in queues_conf.splitlines():
        match = re.match(r"^\s*\[([^\]]+)\]\s*(\([^)]*\))?", line)
        if match and match.group(1) != "general" and not (match.group(2) or "").startswith("(!"):
            sections.add(match.group(1))
    return sections


def check_directory(directory: Directory, *, queues_conf: str | None,
                    fallback_conf: str | None, sounds: Path | None) -> list[str]:
    problems = []
    if fallback_conf is not None:
        for did, code in sorted(directory.by_did.items()):
            if not re.search(rf"^exten\s*=>\s*{re.escape(did)},", fallback_conf, re.M):
                problems.append(f"DID {did} ({code}) has no fallback route: run "
                                "`orikaeshi dialplan render` again")
    if queues_conf is not None:
        present = queues_in(queues_conf)
        wanted: dict[str, str] = {}
        for client in directory.clients.values():
            wanted.setdefault(client.queue, f"client {client.code}")
            if client.skill_queue:
                wanted.setdefault(client.skill_queue, f"client {client.code} (skill queue)")
            if client.repeat.enabled:
                wanted.setdefault(client.repeat.queue, f"client {client.code} (repeat callers)")
        wanted.setdefault(directory.unknown_did.queue, "unknown DIDs")
        wanted.setdefault(directory.supervisor_queue, "supervisors")
        for queue, who in sorted(wanted.items()):
            if queue not in present:
                problems.append(f"queue {queue} ({who}) is not in queues.conf")
    if sounds is not None:
        for prompt in needed_prompts(directory):
            if not _has_audio(sounds, prompt.name):
                problems.append(f"prompt {prompt.name} has no audio file under {sounds} "
                                f"(it should say: {prompt.text!r})")
        # A prompt whose length does not fit its text (espeak reading kanji as English
        # words), a whisper too long to keep the caller waiting, a format to transcode.
        problems += check_prompts(directory, sounds)
    return problems


def check_wrapup(directory: Directory, queues: ConfFile) -> list[str]:
    """Each client queue's after-call work as Asterisk will read queues.conf (includes
    followed) against the clients file's ``wrapup``: a client with a wrap-up whose queue has
    none (queues.conf lacks ``#include orikaeshi-wrapup.conf``) or another value, and a
    value left in orikaeshi-wrapup.conf for a queue whose clients no longer set one.
    Queues missing from queues.conf are :func:`check_directory`'s business."""
    fix = f"orikaeshi dialplan wrapup --out {queues.path.parent / WRAPUP_INCLUDE}"
    wanted = wrapup_times(directory)
    owners: dict[str, str] = {}
    for client in sorted(directory.clients.values(), key=lambda c: c.code):
        for queue in (client.queue, client.skill_queue):
            if queue:
                owners.setdefault(queue, client.code)
    problems = []
    for queue, code in sorted(owners.items()):
        if queue not in queues.sections:
            continue
        line = queues.effective(queue, "wrapuptime")
        value = line.value.strip() if line else "0"
        want = wanted.get(queue)
        if want is None:
            if line is not None and line.path.name == WRAPUP_INCLUDE and value != "0":
                problems.append(f"{line.where}: [{queue}] wrapuptime = {value}, but no client "
                                f"of {queue} ({code}) sets a wrapup any more: run `{fix}`")
        elif line is None:
            problems.append(f"{queues.sections[queue]}: [{queue}] has no wrapuptime but the "
                            f"clients file gives {code} wrapup {want}s: queues.conf lacks "
                            f"`#include {WRAPUP_INCLUDE}` at its end (write it with `{fix}`)")
        elif value != str(want):
            problems.append(f"{line.where}: [{queue}] wrapuptime = {value} but the clients "
                            f"file gives {code} wrapup {want}s: run `{fix}` (and keep "
                            f"`#include {WRAPUP_INCLUDE}` last in queues.conf)")
    return problems
