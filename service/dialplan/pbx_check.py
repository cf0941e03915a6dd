"""``orikaeshi dialplan check``, second half: the service's configuration against the PBX's own
files, so that a deployment cannot be wrong without a word.

Each check is a pure function of parsed files and the ``[[pbx]]`` settings; each problem is
one line naming the file (and line), the setting, and the fix.  What each guards against:

* inbound contexts: the ledger knows a caller's channel by the context it is *created* in
  (``Newchannel``).  A context the service does not watch gives calls with no caller number,
  no DID and no routing decision: no call back, no repeat caller, silently.
* the call-back context: it must exist, ``Dial`` (the ledger reads the result from the
  Dial), and be listed as outbound (else a call back never fulfils an obligation).
* the outbound guard: ``[orikaeshi-outbound-guard]`` (outbound-guard.conf) is in the
  dialplan, and the call-back context and every outbound context run its Gosub before any
  ``Dial`` of an outside number (else calling hours, contact limits and do-not-call are
  neither enforced nor recorded for calls placed there).
* AMI ``timestampevents``: without it waits and talks are measured when events are read.
* CDR time zone: cdr_csv writes local time unless ``usegmtime = yes``, in the PBX host's
  zone (Asterisk ignores ``$TZ``); reconcile reads the dates in ``clock_tz``.
* cdr-csv directory and ``loguniqueid``: what reconcile reads.
* queue members: the ledger names an operator by the member interface
  (``Local/201@operators/n`` and ``PJSIP/201`` are operator 201); a name it cannot read back
  is an operator no screen, statistic or click-to-call can find.
* hold music: every queue's ``musicclass`` exists, so a waiting caller never hears silence.
* the include's ``Queue()`` member Gosub is where the PBX's Asterisk release reads it.
* 手上げ with hold (handraise.conf): confbridge.conf exists and app_confbridge is loaded,
  else every consult room (and the supervisor's listen) fails and the phones are hung up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.config import PbxConfig
from service.dialplan.asterisk_conf import (
    ConfFile,
    ConfLine,
    applications,
    read_conf,
    split_args,
)
from service.dialplan.render import (
    SUPPORTED_RELEASES,
    VersionError,
    asterisk_major,
    check_release,
    gosub_argument,
    member_gosub_positions,
)

INBOUND = "orikaeshi-inbound"
GUARD = "orikaeshi-outbound-guard"
GUARD_LINE = f"same => n,Gosub({GUARD},s,1(${{EXTEN}}))"
# What makes a Dial one to an outside number: the shipped way of dialling out, or the dialled
# number itself (a Dial of a fixed internal phone, PJSIP/201, is not).
_OUTSIDE = ("ORIKAESHI_OUTSIDE_PREFIX", "ORIKAESHI_OUTSIDE_SUFFIX", "${EXTEN")
_OPERATOR_ID = re.compile(r"^[0-9A-Za-z_]{1,20}$")
_LOCAL = re.compile(r"^Local/([^@]+)@([^/]+)")
_UTC = {"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu",
        "UCT", "Etc/UCT"}
# AMI classes the service's account needs (dialplan/manager.conf.sample says why).
AMI_READ = ("system", "call", "agent", "dialplan", "reporting")
AMI_WRITE = ("originate", "call", "reporting")
_NOT_CONTEXTS = {"general", "globals"}


@dataclass(frozen=True)
class PbxFacts:
    """What was learnt from the PBX itself over AMI (``None``: not asked or not reachable)."""

    asterisk_version: str | None = None
    members: tuple[str, ...] = ()  # queue member interfaces logged in now (QueueStatus)


def problem(where: str, setting: str, what: str, fix: str) -> str:
    return f"{where}: {setting}: {what}; fix: {fix}"


def _contexts(extensions: ConfFile) -> dict[str, str]:
    return {name: where for name, where in extensions.sections.items()
            if name not in _NOT_CONTEXTS}


def _reaches_inbound(extensions: ConfFile) -> dict[str, str]:
    """Contexts that send calls on to [orikaeshi-inbound] (Goto or include): where."""
    senders: dict[str, str] = {}
    for line in extensions.lines:
        if line.section in (None, INBOUND) or line.section in _NOT_CONTEXTS:
            continue
        key = line.key.lower()
        if key == "include" and line.value.split(",")[0].strip() == INBOUND:
            senders.setdefault(line.section, line.where)
        elif key in ("exten", "same"):
            for app, args in applications(line.value):
                if app.lower() in ("goto", "gotoif", "gotoiftime") and \
                        re.search(rf"(^|[?:]){re.escape(INBOUND)}\s*,", args):
                    senders.setdefault(line.section, line.where)
    return senders


def check_contexts(pbx: PbxConfig, extensions: ConfFile, config_name: str) -> list[str]:
    """Inbound, outbound and call-back contexts against the dialplan."""
    problems = []
    contexts = _contexts(extensions)
    file = extensions.path
    setting = f"{config_name} [[pbx]] {pbx.pbx_id}"
    if INBOUND not in contexts:
        problems.append(problem(str(file), "#include orikaeshi.conf",
                                f"the dialplan has no [{INBOUND}] context",
                                "#include orikaeshi.conf in extensions.conf"))
    for name in pbx.inbound_contexts:
        if name not in contexts:
            problems.append(problem(
                config_name, f"[[pbx]] {pbx.pbx_id} inbound_contexts",
                f"context [{name}] is not in the dialplan ({file} and its includes)",
                f'inbound_contexts = ["{INBOUND}"] (and the context your trunk sends calls '
                "to, if it is another one)"))
    senders = _reaches_inbound(extensions)
    for name, where in sorted(senders.items()):
        if name not in pbx.inbound_contexts:
            problems.append(problem(
                where, f"[{name}]",
                f"sends calls to [{INBOUND}] but is not in {setting} inbound_contexts: "
                "channels are created in it, so the ledger would record its calls without "
                "caller number, DID or routing decision",
                f'add "{name}" to inbound_contexts'))
    if INBOUND in contexts and not ({INBOUND, *senders} & set(pbx.inbound_contexts)):
        listed = ", ".join(pbx.inbound_contexts) or "nothing"
        problems.append(problem(
            config_name, f"[[pbx]] {pbx.pbx_id} inbound_contexts",
            f"lists {listed}, none of which is [{INBOUND}] or sends calls to it: every call "
            "would be recorded without caller number, DID or routing decision",
            f'inbound_contexts = ["{INBOUND}"]'))
    callback = pbx.callback_context
    if callback not in contexts:
        problems.append(problem(
            config_name, f"[[pbx]] {pbx.pbx_id} callback_context",
            f"context [{callback}] is not in the dialplan ({file} and its includes)",
            'callback_context = "orikaeshi-outbound" (shipped in orikaeshi.conf)'))
    else:
        dials = any(app == "Dial" for line in extensions.section_lines(callback)
                    for app, _ in applications(line.value))
        if not dials:
            problems.append(problem(
                contexts[callback], f"[{callback}]",
                "the call-back context does not Dial(): the ledger reads a call back's "
                "result (answered, busy, no answer) from the Dial",
                "Dial the callee as [orikaeshi-outbound] does"))
    if callback not in pbx.outbound_contexts:
        problems.append(problem(
            config_name, f"[[pbx]] {pbx.pbx_id} outbound_contexts",
            f"the call-back context [{callback}] is not listed: call backs would not be "
            "recorded as outbound calls, so none would ever fulfil an obligation",
            f'outbound_contexts = ["{callback}"]'))
    for name in pbx.outbound_contexts:
        if name not in contexts and name != callback:  # the call-back one is said above
            problems.append(problem(
                config_name, f"[[pbx]] {pbx.pbx_id} outbound_contexts",
                f"context [{name}] is not in the dialplan ({file} and its includes)",
                f'remove it, or outbound_contexts = ["{callback}"]'))
    return problems


def unguarded_dials(extensions: ConfFile, context: str) -> list[ConfLine]:
    """Lines of ``context`` that Dial an outside number with no outbound-guard Gosub before
    them in the same extension.  Only an unconditional ``Gosub(orikaeshi-outbound-guard,...)``
    as the line's own application counts (a GosubIf or ExecIf may skip it)."""
    found = []
    guarded: dict[str, bool] = {}
    extension = ""
    for line in extensions.section_lines(context):
        key = line.key.lower()
        if key == "exten":
            extension = line.value.split(",", 1)[0].strip()
        elif key != "same":
            continue
        apps = applications(line.value)
        if apps and apps[0][0] == "Gosub" and \
                split_args(apps[0][1])[0].strip() == GUARD:
            guarded[extension] = True
        outside = any(app == "Dial" and any(mark in args for mark in _OUTSIDE)
                      for app, args in apps)
        if outside and not guarded.get(extension):
            found.append(line)
    return found


def check_outbound_guard(pbx: PbxConfig, extensions: ConfFile) -> list[str]:
    """The outbound guard is in the dialplan and runs before every outside Dial of the
    call-back context and the outbound contexts (docs/compliance.md)."""
    problems = []
    contexts = _contexts(extensions)
    if GUARD not in contexts:
        problems.append(problem(
            str(extensions.path), "#include outbound-guard.conf",
            f"the dialplan has no [{GUARD}] context: [{pbx.callback_context}] Gosubs into it "
            "before dialling, so every call back and outside dial would be hung up unchecked",
            "copy dialplan/outbound-guard.conf next to extensions.conf and #include "
            "outbound-guard.conf in it"))
    for name in dict.fromkeys((pbx.callback_context, *pbx.outbound_contexts)):
        if name not in contexts:
            continue  # said by check_contexts
        why = ("orikaeshi Originates call backs into it (callback_context)"
               if name == pbx.callback_context else "an outbound context (outbound_contexts)")
        for line in unguarded_dials(extensions, name):
            problems.append(problem(
                line.where, f"[{name}] Dial",
                f"dials an outside number without the outbound guard first ({why}): calling "
                "hours, contact limits and do-not-call would be neither enforced nor "
                "recorded for these calls",
                f"{GUARD_LINE} before the Dial, as the shipped [orikaeshi-outbound] does"))
    return problems


def check_globals(extensions: ConfFile) -> list[str]:
    """Asterisk expands ``${...}`` in [globals] when it loads them, with no channel: a
    template such as ``PJSIP/${FORWARD_TO}@trunk`` is stored as ``PJSIP/@trunk``."""
    problems = []
    for line in extensions.section_lines("globals"):
        if "${" in line.value or "$[" in line.value:
            problems.append(problem(
                line.where, f"[globals] {line.key}",
                f"{line.value!r} is expanded when Asterisk loads it, with no call: its ${{...}} "
                "would be empty", "no ${...} in [globals] (orikaeshi dials outside numbers as "
                "ORIKAESHI_OUTSIDE_PREFIX, number, ORIKAESHI_OUTSIDE_SUFFIX)"))
    if extensions.setting("globals", "ORIKAESHI_OUTSIDE_PREFIX") is None:
        problems.append(problem(
            str(extensions.path), "[globals] ORIKAESHI_OUTSIDE_PREFIX",
            "not set: call backs and forwards would dial no outside line",
            "ORIKAESHI_OUTSIDE_PREFIX = PJSIP/ and ORIKAESHI_OUTSIDE_SUFFIX = @trunk"))
    return problems


def check_agi_global(extensions: ConfFile, agi_port: int) -> list[str]:
    line = extensions.setting("globals", "ORIKAESHI_AGI")
    if line is None:
        return [problem(str(extensions.path), "[globals] ORIKAESHI_AGI",
                        "not set: every call would be routed by the static fallback",
                        f"ORIKAESHI_AGI = agi://127.0.0.1:{agi_port}")]
    match = re.match(r"^h?agi://[^/:]+(?::(\d+))?", line.value)
    if match is None:
        return [problem(line.where, "[globals] ORIKAESHI_AGI",
                        f"{line.value!r} is not an agi:// or hagi:// address",
                        f"ORIKAESHI_AGI = agi://127.0.0.1:{agi_port}")]
    if not line.value.startswith("hagi://") and int(match.group(1) or 4573) != agi_port:
        return [problem(line.where, "[globals] ORIKAESHI_AGI",
                        f"port {match.group(1) or 4573} but the service listens on "
                        f"agi_port {agi_port}",
                        f"use port {agi_port} (or set agi_port)")]
    return []


def check_manager(pbx: PbxConfig, manager: ConfFile | None, manager_path: Path) -> list[str]:
    if manager is None:
        return [problem(str(manager_path), "AMI", "cannot be read",
                        "copy dialplan/manager.conf.sample to it")]
    problems = []
    where = str(manager.path)
    enabled = manager.setting("general", "enabled")
    if enabled is None or not _true(enabled.value):
        problems.append(problem(enabled.where if enabled else where, "[general] enabled",
                                "AMI is off", "enabled = yes"))
    stamps = manager.setting("general", "timestampevents")
    if stamps is None or not _true(stamps.value):
        problems.append(problem(
            stamps.where if stamps else where, "[general] timestampevents",
            "events carry no time of their own: waits, talks and the short-abandon rule "
            "would be measured when orikaeshi happens to read them", "timestampevents = yes"))
    port = manager.setting("general", "port")
    if int(port.value if port and port.value.isdigit() else 5038) != pbx.ami_port:
        problems.append(problem(
            port.where if port else where, "[general] port",
            f"AMI listens on {port.value if port else 5038} but [[pbx]] {pbx.pbx_id} "
            f"ami_port is {pbx.ami_port}", "make them the same"))
    if pbx.ami_username not in manager.sections:
        problems.append(problem(
            where, f"[{pbx.ami_username}]",
            f"no AMI account named {pbx.ami_username!r} ([[pbx]] {pbx.pbx_id} ami_username)",
            "add the account of dialplan/manager.conf.sample"))
        return problems
    for key, needed in (("read", AMI_READ), ("write", AMI_WRITE)):
        line = manager.setting(pbx.ami_username, key)
        have = {c.strip().lower() for c in (line.value if line else "").split(",")}
        missing = [c for c in needed if c not in have and "all" not in have]
        if missing:
            problems.append(problem(
                line.where if line else where, f"[{pbx.ami_username}] {key}",
                f"lacks {', '.join(missing)}",
                f"{key} = {','.join(sorted(have - {''} | set(missing)))}"))
    return problems


def _true(value: str) -> bool:
    return value.strip().lower() in ("yes", "true", "y", "t", "1", "on")


def same_zone(a: str, b: str) -> bool:
    """Two zone names that give the same local time all year (Japan = Asia/Tokyo)."""
    if a == b or (a in _UTC and b in _UTC):
        return True
    try:
        za, zb = ZoneInfo(a), ZoneInfo(b)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    moments = [datetime(2026, month, 1, 12) for month in range(1, 13)]
    return all(m.replace(tzinfo=za).utcoffset() == m.replace(tzinfo=zb).utcoffset()
               for m in moments)


def host_timezone(etc: Path = Path("/etc")) -> str | None:
    """The zone this host's clock is in (what Asterisk uses: it ignores ``$TZ``)."""
    try:
        name = (etc / "timezone").read_text().strip()
        if name:
            return name
    except OSError:
        pass
    try:
        target = str((etc / "localtime").resolve())
    except OSError:
        return None
    return target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else None


def check_cdr(pbx: PbxConfig, cdr: ConfFile | None, cdr_path: Path, modules: ConfFile | None,
              asterisk_conf: ConfFile | None, pbx_tz: str | None, config_name: str
              ) -> list[str]:
    if cdr is None:
        return [problem(str(cdr_path), "CDR", "cannot be read (reconcile reads cdr_csv)",
                        "copy dialplan/cdr.conf.sample to it")]
    problems = []
    enable = cdr.setting("general", "enable")
    if enable is not None and not _true(enable.value):
        problems.append(problem(enable.where, "[general] enable", "CDRs are off",
                                "enable = yes"))
    if modules is not None:
        for line in modules.values("modules", "noload"):
            if line.value.strip() in ("cdr_csv.so", "cdr_csv"):
                problems.append(problem(line.where, "noload => cdr_csv.so",
                                        "cdr_csv is not loaded: no Master.csv to reconcile",
                                        "remove the line"))
    unique = cdr.setting("csv", "loguniqueid")
    if unique is None or not _true(unique.value):
        problems.append(problem(
            unique.where if unique else str(cdr.path), "[csv] loguniqueid",
            "Master.csv rows carry no uniqueid: reconcile cannot match them to calls",
            "loguniqueid = yes"))
    gmt = cdr.setting("csv", "usegmtime")
    utc = gmt is not None and _true(gmt.value)
    where = gmt.where if gmt else str(cdr.path)
    if utc and pbx.clock_tz not in _UTC:
        problems.append(problem(
            where, "[csv] usegmtime",
            f"Master.csv dates are UTC but {config_name} [[pbx]] {pbx.pbx_id} clock_tz is "
            f"{pbx.clock_tz!r}", 'clock_tz = "UTC"'))
    elif not utc:
        if pbx_tz is None:
            problems.append(problem(
                where, "[csv] usegmtime",
                "Master.csv dates are in the PBX host's local time, which is not known here",
                'usegmtime = yes and clock_tz = "UTC", or give --pbx-tz'))
        elif not same_zone(pbx_tz, pbx.clock_tz):
            problems.append(problem(
                where, "[csv] usegmtime",
                f"Master.csv dates are in the PBX host's local time ({pbx_tz}; Asterisk "
                f"ignores $TZ) but {config_name} [[pbx]] {pbx.pbx_id} clock_tz is "
                f"{pbx.clock_tz!r}",
                f'usegmtime = yes and clock_tz = "UTC", or clock_tz = "{pbx_tz}"'))
    logdir = "/var/log/asterisk"
    if asterisk_conf is not None:
        logdir_line = asterisk_conf.setting("directories", "astlogdir")
        logdir = logdir_line.value if logdir_line else logdir
    written = str(Path(logdir) / "cdr-csv")
    if Path(written) != Path(pbx.cdr_csv_dir):
        problems.append(problem(
            config_name, f"[[pbx]] {pbx.pbx_id} cdr_csv_dir",
            f"is {pbx.cdr_csv_dir!r} but cdr_csv writes {written}/Master.csv (astlogdir "
            "of asterisk.conf)", f'cdr_csv_dir = "{written}"'))
    return problems


def operator_of(interface: str) -> str | None:
    """The operator id the ledger and the pages read from a member interface, or None when
    it cannot name one (the ledger cuts channel names at ``-``, ``@``, ``/`` and ``;``)."""
    match = re.match(r"^[A-Za-z0-9_]+/([^@/;]+)", interface.strip())
    if match is None or not _OPERATOR_ID.match(match.group(1)):
        return None
    return match.group(1)


def check_members(pbx: PbxConfig, queues: ConfFile | None, extensions: ConfFile,
                  live_members: Iterable[str], config_name: str) -> list[str]:
    problems = []
    contexts = _contexts(extensions)
    if "{ext}" not in pbx.phone_channel:
        problems.append(problem(
            config_name, f"[[pbx]] {pbx.pbx_id} phone_channel",
            f"{pbx.phone_channel!r} has no {{ext}}: click-to-call and listen/whisper/barge "
            "could not ring an operator's phone", 'phone_channel = "PJSIP/{ext}"'))
    local = _LOCAL.match(pbx.phone_channel)
    if local and local.group(2) not in contexts:
        problems.append(problem(
            config_name, f"[[pbx]] {pbx.pbx_id} phone_channel",
            f"rings Local channels in [{local.group(2)}], which is not in the dialplan",
            "add that context (it must reach the operator's phone) or use PJSIP/{ext}"))
    declared: list[tuple[str, str]] = []
    if queues is not None:
        declared = [(line.value.split(",")[0].strip(), line.where)
                    for line in queues.lines if line.key.lower() == "member"]
    declared += [(interface, "AMI QueueStatus") for interface in live_members]
    spy_prefix = extensions.setting("globals", "ORIKAESHI_SPY_PREFIX")
    for interface, where in declared:
        if operator_of(interface) is None:
            problems.append(problem(
                where, f"queue member {interface}",
                "orikaeshi cannot name the operator from this interface (it reads "
                "Tech/<id> or Local/<id>@context, the id of letters, digits and _)",
                "name members PJSIP/<ext> or Local/<ext>@<context>/n"))
            continue
        member_local = _LOCAL.match(interface)
        if member_local and member_local.group(2) not in contexts:
            problems.append(problem(
                where, f"queue member {interface}",
                f"rings [{member_local.group(2)}], which is not in the dialplan",
                "add that context, or use the phone's own interface"))
        if spy_prefix is not None and not interface.startswith(spy_prefix.value):
            problems.append(problem(
                spy_prefix.where, "[globals] ORIKAESHI_SPY_PREFIX",
                f"{spy_prefix.value!r} does not start member {interface}: *221/*222/*223 "
                "would find no operator channel", f"ORIKAESHI_SPY_PREFIX = "
                f"{interface.split('/', 1)[0]}/"))
    return problems


def check_music(queues: ConfFile | None, musiconhold: ConfFile | None, moh_path: Path
                ) -> list[str]:
    if queues is None:
        return []
    classes = set(musiconhold.sections) if musiconhold is not None else set()
    problems = []
    templates = queues.templates
    for name in sorted(set(queues.sections) - {"general"}):
        lines = [line for line in queues.lines if line.section in (name, *templates)]
        chosen = [line for line in lines if line.key.lower() == "musicclass"]
        music = chosen[-1].value if chosen else "default"
        if music not in classes:
            where = chosen[-1].where if chosen else queues.sections[name]
            problems.append(problem(
                where, f"[{name}] musicclass",
                f"hold music class {music!r} is not in {moh_path}: callers would wait in "
                "silence", f"add [{music}] to musiconhold.conf (mode = files, directory = "
                "moh)"))
    return problems


# The contexts of dialplan/handraise.conf that join a ConfBridge.
HANDRAISE_ROOMS = ("orikaeshi-handraise-room", "orikaeshi-handraise-listen")


def check_confbridge(extensions: ConfFile, confbridge: ConfFile | None,
                     confbridge_path: Path, modules: ConfFile | None) -> list[str]:
    """When handraise.conf is in the dialplan: app_confbridge must load (it does not
    without its file) for the consult room and the supervisor's muted listen."""
    users = [name for name in HANDRAISE_ROOMS if name in extensions.sections]
    if not users:
        return []
    where = extensions.sections[users[0]]
    problems = []
    if confbridge is None:
        problems.append(problem(
            str(confbridge_path), "ConfBridge", f"cannot be read, and [{users[0]}] ({where}) "
            "joins a ConfBridge: app_confbridge does not load without its file, so 手上げ's "
            "consult room and the supervisor's listen would hang up the phones",
            "copy dialplan/confbridge.conf.sample to it"))
    else:
        for kind, name in (("bridge", "default_bridge"), ("user", "default_user")):
            line = confbridge.setting(name, "type")
            if line is not None and line.value.strip() != kind:
                problems.append(problem(
                    line.where, f"[{name}] type", f"is {line.value!r}: the profile the "
                    "consult room (and the listening supervisor's muted profile) is built on "
                    "would be missing", f"type = {kind}"))
    if modules is not None:
        for line in modules.values("modules", "noload"):
            if line.value.strip() in ("app_confbridge.so", "app_confbridge"):
                problems.append(problem(line.where, "noload => app_confbridge.so",
                                        "ConfBridge() is not loaded: 手上げ's consult room "
                                        "and the supervisor's listen would fail",
                                        "remove the line"))
    return problems


def check_release_of_include(include_text: str, include_path: Path,
                             facts: PbxFacts, given: str | None) -> list[str]:
    version = given or facts.asterisk_version
    if version is None:
        return [problem(str(include_path), "Asterisk version",
                        "unknown (the PBX's AMI was not reachable), so the include's Queue() "
                        "arguments cannot be checked",
                        "start Asterisk, or give --asterisk-version")]
    major = asterisk_major(version)
    try:
        check_release(major)
    except VersionError as exc:
        return [problem(str(include_path), "Asterisk version", str(exc),
                        f"upgrade to {SUPPORTED_RELEASES[0]} LTS or later")]
    want = gosub_argument(major)
    problems = []
    for lineno, position in member_gosub_positions(include_text):
        if position != want:
            problems.append(problem(
                f"{include_path}:{lineno}", "Queue() member Gosub",
                f"is argument {position} but Asterisk {version} reads it from argument "
                f"{want}: the operator would get no escalation feature code",
                f"orikaeshi dialplan include --asterisk-version {version} --out "
                f"{include_path}"))
    return problems


def check_pbx(pbx: PbxConfig, etc: Path, *, agi_port: int, config_name: str,
              facts: PbxFacts = PbxFacts(), asterisk_version: str | None = None,
              pbx_tz: str | None = None) -> list[str]:
    """Every check above against the files under ``etc`` (an /etc/asterisk)."""
    extensions = read_conf(etc / "extensions.conf", etc)
    if extensions is None:
        return [problem(str(etc / "extensions.conf"), "dialplan", "cannot be read",
                        "give --asterisk-etc, the directory of Asterisk's configuration")]
    problems = [problem(entry.split(": ", 1)[0], f"#include {entry.split(': ', 1)[1]}",
                        "the file cannot be read", "copy it there or remove the line")
                for entry in extensions.missing_includes]
    problems += check_contexts(pbx, extensions, config_name)
    problems += check_outbound_guard(pbx, extensions)
    problems += check_agi_global(extensions, agi_port)
    problems += check_globals(extensions)
    problems += check_manager(pbx, read_conf(etc / "manager.conf", etc), etc / "manager.conf")
    problems += check_cdr(pbx, read_conf(etc / "cdr.conf", etc), etc / "cdr.conf",
                          read_conf(etc / "modules.conf", etc),
                          read_conf(etc / "asterisk.conf", etc), pbx_tz, config_name)
    queues = read_conf(etc / "queues.conf", etc)
    problems += check_members(pbx, queues, extensions, facts.members, config_name)
    problems += check_music(queues, read_conf(etc / "musiconhold.conf", etc),
                            etc / "musiconhold.conf")
    problems += check_confbridge(extensions, read_conf(etc / "confbridge.conf", etc),
                                 etc / "confbridge.conf", read_conf(etc / "modules.conf", etc))
    where = extensions.sections.get(INBOUND)
    if where is not None:
        include_path = Path(where.rsplit(":", 1)[0])
        problems += check_release_of_include(include_path.read_text(encoding="utf-8"),
                                             include_path, facts, asterisk_version)
    return problems
