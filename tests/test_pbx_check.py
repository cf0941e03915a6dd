"""``orikaeshi dialplan check`` against a PBX's files: the shipped samples pass as they are,
and each misconfiguration that would make the product fail silently is refused with a line
that names the file, the setting and the fix.  Every case starts from the real samples
(tests/pbx_files.py) with one thing changed."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.config import REPO_ROOT
from service.dialplan.pbx_check import PbxFacts, check_pbx, operator_of, same_zone
from service.dialplan.prompts import tools_available
from service.dialplan.render import (
    asterisk_major,
    gosub_argument,
    include_for,
    member_gosub_positions,
)
from tests.pbx_files import (
    SAMPLE_CLIENTS,
    SAMPLE_CONFIG,
    edit,
    sample_etc,
    sample_pbx,
)


def check(etc: Path, *, version: str | None = "22.5.0", tz: str = "UTC",
          facts: PbxFacts | None = None, **changes: object) -> list[str]:
    pbx = dataclasses.replace(sample_pbx(), **changes)  # type: ignore[arg-type]
    return check_pbx(pbx, etc, agi_port=4573, config_name="orikaeshi.toml",
                     facts=facts or PbxFacts(),
                     asterisk_version=version, pbx_tz=tz)


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    return sample_etc(tmp_path)


def only(problems: list[str], *parts: str) -> str:
    """The one problem holding every part (and the check said nothing else)."""
    assert len(problems) == 1, problems
    for part in parts:
        assert part in problems[0], problems
    return problems[0]


@pytest.mark.parametrize("version", ["22.5.0", "23.4.1", "GIT-master-1a2b3c"])
def test_the_samples_pass_as_shipped(etc: Path, version: str) -> None:
    assert check(etc, version=version) == []


def test_asterisk_20_needs_the_include_written_for_it(etc: Path) -> None:
    problems = check(etc, version="20.20.1")
    assert len(problems) == 2, problems  # the queue and the overflow queue
    first = problems[0]
    assert first.startswith(f"{etc / 'orikaeshi.conf'}:")
    assert ("Queue() member Gosub: is argument 7 but Asterisk 20.20.1 reads it from "
            "argument 8") in first
    assert (f"fix: orikaeshi dialplan include --asterisk-version 20.20.1 --out "
            f"{etc / 'orikaeshi.conf'}") in first
    text = (etc / "orikaeshi.conf").read_text()
    (etc / "orikaeshi.conf").write_text(include_for(text, 20))
    assert check(etc, version="20.20.1") == []
    # ...and that include is refused on 22, the other way round.
    assert "is argument 8 but Asterisk 22.1.0 reads it from argument 7" in \
        check(etc, version="22.1.0")[0]


def test_include_for_moves_only_the_gosub() -> None:
    text = (REPO_ROOT / "dialplan" / "orikaeshi.conf").read_text()
    for_20 = include_for(text, 20)
    assert {pos for _, pos in member_gosub_positions(for_20)} == {8}
    assert "Queue(${ROUTE_QUEUE},t,,${WHISPER},${QUEUE_WAIT},,,orikaeshi-member-whisper)" \
        in for_20
    # Written back for 22 it is the shipped file again (after its header line).
    assert include_for(for_20, 22).split("\n", 1)[1] == text
    # The call-back context keeps its guard before its Dial on every release, and the
    # guard's own file has nothing that differs between releases.
    assert "Gosub(orikaeshi-outbound-guard,s,1(${EXTEN}))\n same => n,Dial(" in for_20
    guard = (REPO_ROOT / "dialplan" / "outbound-guard.conf").read_text()
    assert include_for(guard, 20).split("\n", 1)[1] == guard


def test_unsupported_and_unknown_versions_are_refused(etc: Path) -> None:
    only(check(etc, version="18.9.0"), "Asterisk 18 is not supported (supported: 20, 22, 23)")
    only(check(etc, version=None), "Asterisk version: unknown (the PBX's AMI was not "
                                   "reachable)", "give --asterisk-version")
    assert check(etc, version=None, facts=PbxFacts(asterisk_version="23.4.1")) == []


def test_the_old_sample_inbound_context_is_refused(etc: Path) -> None:
    """Issue 8's sample: inbound_contexts = ["from-pstn"] beside a dialplan that sends
    carrier calls to [orikaeshi-inbound]."""
    problems = check(etc, inbound_contexts=("from-pstn",))
    assert len(problems) == 2, problems
    assert problems[0] == (
        "orikaeshi.toml: [[pbx]] tokyo-1 inbound_contexts: context [from-pstn] is not in the "
        f"dialplan ({etc / 'extensions.conf'} and its includes); fix: inbound_contexts = "
        '["orikaeshi-inbound"] (and the context your trunk sends calls to, if it is another '
        "one)")
    assert "none of which is [orikaeshi-inbound] or sends calls to it" in problems[1]


def test_a_trunk_context_that_sends_calls_on_must_be_watched(etc: Path) -> None:
    with (etc / "extensions.conf").open("a") as out:
        out.write("\n[from-carrier]\nexten => _X.,1,NoOp(trunk)\n"
                  " same => n,Goto(orikaeshi-inbound,${EXTEN},1)\n")
    lines = (etc / "extensions.conf").read_text().splitlines()
    where = f"{etc / 'extensions.conf'}:{len(lines)}"
    only(check(etc), f"{where}: [from-carrier]: sends calls to [orikaeshi-inbound] but is not "
                     "in orikaeshi.toml [[pbx]] tokyo-1 inbound_contexts",
         'fix: add "from-carrier" to inbound_contexts')
    assert check(etc, inbound_contexts=("orikaeshi-inbound", "from-carrier")) == []


def test_the_include_must_be_included(etc: Path) -> None:
    edit(etc / "extensions.conf", "#include orikaeshi.conf\n", "")
    problems = check(etc)
    assert problems[0] == (f"{etc / 'extensions.conf'}: #include orikaeshi.conf: the dialplan "
                           "has no [orikaeshi-inbound] context; fix: #include orikaeshi.conf "
                           "in extensions.conf")


def test_a_missing_included_file_is_named(etc: Path) -> None:
    (etc / "orikaeshi-fallback.conf").unlink()
    only(check(etc), f"{etc / 'extensions.conf'}:", "#include orikaeshi-fallback.conf: the file "
                     "cannot be read")


def test_the_call_back_context_must_be_listed_as_outbound(etc: Path) -> None:
    only(check(etc, outbound_contexts=()),
         "orikaeshi.toml: [[pbx]] tokyo-1 outbound_contexts: the call-back context "
         "[orikaeshi-outbound] is not listed", 'fix: outbound_contexts = ["orikaeshi-outbound"]')


def test_the_call_back_context_must_exist_and_dial(etc: Path) -> None:
    only(check(etc, callback_context="outbound", outbound_contexts=("outbound",)),
         "callback_context: context [outbound] is not in the dialplan",
         'fix: callback_context = "orikaeshi-outbound"')
    # The outbound context listed but not in the dialplan (the reference PBX's name).
    only(check(etc, outbound_contexts=("orikaeshi-outbound", "outbound")),
         "outbound_contexts: context [outbound] is not in the dialplan")
    edit(etc / "orikaeshi.conf",
         " same => n,Dial(${ORIKAESHI_OUTSIDE_PREFIX}${EXTEN}${ORIKAESHI_OUTSIDE_SUFFIX},45)\n",
         " same => n,Playback(beep)\n")
    only(check(etc), "[orikaeshi-outbound]: the call-back context does not Dial()")


GUARD_GOSUB = " same => n,Gosub(orikaeshi-outbound-guard,s,1(${EXTEN}))\n"
OUTSIDE_DIAL = (" same => n,Dial(${ORIKAESHI_OUTSIDE_PREFIX}${EXTEN}"
                "${ORIKAESHI_OUTSIDE_SUFFIX},45)\n")


def _line_of(path: Path, text: str) -> int:
    return path.read_text().splitlines().index(text.rstrip("\n")) + 1


def test_the_outbound_guard_must_be_included(etc: Path) -> None:
    edit(etc / "extensions.conf", "#include outbound-guard.conf\n", "")
    assert only(check(etc), "#include outbound-guard.conf: the dialplan has no "
                "[orikaeshi-outbound-guard] context: [orikaeshi-outbound] Gosubs into it",
                "fix: copy dialplan/outbound-guard.conf next to extensions.conf and #include "
                "outbound-guard.conf in it").startswith(f"{etc / 'extensions.conf'}: ")


def test_the_call_back_context_runs_the_guard_before_its_dial(etc: Path) -> None:
    include = etc / "orikaeshi.conf"
    edit(include, GUARD_GOSUB, "")
    line = _line_of(include, OUTSIDE_DIAL)
    refused = (f"{include}:{line}: [orikaeshi-outbound] Dial: dials an outside number without "
               "the outbound guard first (orikaeshi Originates call backs into it "
               "(callback_context)): calling hours, contact limits and do-not-call would be "
               "neither enforced nor recorded for these calls; fix: same => "
               "n,Gosub(orikaeshi-outbound-guard,s,1(${EXTEN})) before the Dial, as the "
               "shipped [orikaeshi-outbound] does")
    assert check(etc) == [refused]
    # After the Dial it is too late; a GosubIf may be skipped: neither counts.
    edit(include, OUTSIDE_DIAL, OUTSIDE_DIAL + GUARD_GOSUB)
    assert check(etc) == [refused]
    edit(include, OUTSIDE_DIAL + GUARD_GOSUB, GUARD_GOSUB.replace(
        "Gosub(", "GosubIf($[${ROUTE_CLIENT} != \"\"]?") + OUTSIDE_DIAL)
    assert check(etc) == [refused.replace(f":{line}:", f":{line + 1}:")]
    edit(include, "GosubIf($[${ROUTE_CLIENT} != \"\"]?", "Gosub(")
    assert check(etc) == []


def test_every_outbound_context_that_dials_out_runs_the_guard(etc: Path) -> None:
    """An outbound context of the admin's own, listed in outbound_contexts: refused while it
    Dials the dialled number without the guard; a context that only rings a phone of the
    office is not an outside dial."""
    extensions = etc / "extensions.conf"
    with extensions.open("a") as out:
        out.write("\n[my-outbound]\nexten => _0X.,1,Set(CHANNEL(accountcode)=KSL)\n"
                  " same => n,Dial(PJSIP/${EXTEN}@trunk,45)\n"
                  "exten => 200,1,Dial(PJSIP/201,20)\n")
    listed = ("orikaeshi-outbound", "my-outbound")
    line = _line_of(extensions, " same => n,Dial(PJSIP/${EXTEN}@trunk,45)")
    only(check(etc, outbound_contexts=listed),
         f"{extensions}:{line}: [my-outbound] Dial: dials an outside number without the "
         "outbound guard first (an outbound context (outbound_contexts))")
    edit(extensions, "_0X.,1,Set(CHANNEL(accountcode)=KSL)\n",
         "_0X.,1,Set(CHANNEL(accountcode)=KSL)\n" + GUARD_GOSUB)
    assert check(etc, outbound_contexts=listed) == []


def test_ami_needs_timestamps_the_account_and_its_rights(etc: Path) -> None:
    manager = etc / "manager.conf"
    edit(manager, "timestampevents = yes", "timestampevents = no")
    stamp = only(check(etc), "[general] timestampevents: events carry no time of their own",
                 "fix: timestampevents = yes")
    assert stamp.startswith(f"{manager}:")
    edit(manager, "timestampevents = no", "timestampevents = yes")
    edit(manager, "read = system,call,agent,dialplan,cdr,reporting,dtmf", "read = call,cdr")
    only(check(etc), "[orikaeshi] read: lacks system, agent, dialplan, reporting",
         "fix: read = agent,call,cdr,dialplan,reporting,system")
    only(check(etc, ami_username="svc"), "no AMI account named 'svc'")
    edit(manager, "read = call,cdr", "read = all")
    only(check(etc, ami_port=5039), "[general] port: AMI listens on 5038 but [[pbx]] tokyo-1 "
                                    "ami_port is 5039")


def test_cdr_time_zone_against_clock_tz(etc: Path) -> None:
    cdr = etc / "cdr.conf"
    only(check(etc, clock_tz="Asia/Tokyo"),
         "[csv] usegmtime: Master.csv dates are UTC but orikaeshi.toml [[pbx]] tokyo-1 "
         "clock_tz is 'Asia/Tokyo'", 'fix: clock_tz = "UTC"')
    edit(cdr, "usegmtime = yes", "usegmtime = no")
    local = only(check(etc, tz="Asia/Tokyo"),
                 "the PBX host's local time (Asia/Tokyo; Asterisk ignores $TZ) but "
                 "orikaeshi.toml [[pbx]] tokyo-1 clock_tz is 'UTC'",
                 'fix: usegmtime = yes and clock_tz = "UTC", or clock_tz = "Asia/Tokyo"')
    assert local.startswith(f"{cdr}:")
    assert check(etc, tz="Asia/Tokyo", clock_tz="Asia/Tokyo") == []
    assert check(etc, tz="Japan", clock_tz="Asia/Tokyo") == []  # the same clock
    assert same_zone("Etc/UTC", "UTC") and not same_zone("Europe/London", "UTC")


def test_cdr_csv_as_reconcile_reads_it(etc: Path) -> None:
    edit(etc / "cdr.conf", "loguniqueid = yes", "loguniqueid = no")
    only(check(etc), "[csv] loguniqueid: Master.csv rows carry no uniqueid")
    edit(etc / "cdr.conf", "loguniqueid = no", "loguniqueid = yes")
    (etc / "asterisk.conf").write_text("[directories]\nastlogdir => /srv/asterisk/log\n")
    only(check(etc), "cdr_csv_dir: is '/var/log/asterisk/cdr-csv' but cdr_csv writes "
                     "/srv/asterisk/log/cdr-csv/Master.csv", 'fix: cdr_csv_dir = '
                     '"/srv/asterisk/log/cdr-csv"')
    assert check(etc, cdr_csv_dir="/srv/asterisk/log/cdr-csv") == []
    (etc / "modules.conf").write_text("[modules]\nautoload = yes\nnoload => cdr_csv.so\n")
    only(check(etc, cdr_csv_dir="/srv/asterisk/log/cdr-csv"),
         f"{etc / 'modules.conf'}:3: noload => cdr_csv.so: cdr_csv is not loaded")


def test_queue_members_the_service_cannot_name_are_refused(etc: Path) -> None:
    assert operator_of("Local/201@operators/n") == "201"
    assert operator_of("PJSIP/202") == "202" and operator_of("PJSIP/op-203") is None
    edit(etc / "queues.conf", "[q-ksl](orikaeshi-queue)\n",
         "[q-ksl](orikaeshi-queue)\nmember => PJSIP/op-201\nmember => PJSIP/202\n")
    only(check(etc), "queues.conf:", "queue member PJSIP/op-201: orikaeshi cannot name the "
                     "operator", "fix: name members PJSIP/<ext> or Local/<ext>@<context>/n")
    # Logged in over AMI (QueueAdd): the same rule, and Local members need their context.
    facts = PbxFacts(members=("Local/211@operators/n",))
    edit(etc / "queues.conf", "member => PJSIP/op-201\n", "")
    problems = check(etc, facts=facts)
    assert len(problems) == 2, problems
    assert "AMI QueueStatus: queue member Local/211@operators/n: rings [operators], which is " \
        "not in the dialplan" in problems[0]
    assert "[globals] ORIKAESHI_SPY_PREFIX: 'PJSIP/' does not start member " \
        "Local/211@operators/n" in problems[1]


def test_the_operators_phone_channel(etc: Path) -> None:
    only(check(etc, phone_channel="PJSIP/201"), "phone_channel: 'PJSIP/201' has no {ext}")
    only(check(etc, phone_channel="Local/{ext}@opphone/n"),
         "phone_channel: rings Local channels in [opphone], which is not in the dialplan")
    assert check(etc, phone_channel="Local/{ext}@orikaeshi-phones/n") == []


def test_every_queue_has_hold_music(etc: Path) -> None:
    edit(etc / "musiconhold.conf", "[default]", "[jazz]")
    problems = check(etc)
    assert len(problems) == 4, problems  # q-ksl, q-mdc, q-sup, q-wsh (from the template)
    assert "[q-ksl] musicclass: hold music class 'default' is not in " in problems[0]
    assert "callers would wait in silence" in problems[0]


def test_the_consult_room_needs_confbridge_loaded(etc: Path) -> None:
    """handraise.conf joins ConfBridges (the consult room, the supervisor's muted listen):
    without confbridge.conf app_confbridge does not load and the phones are hung up."""
    (etc / "confbridge.conf").unlink()
    only(check(etc), "confbridge.conf: ConfBridge: cannot be read, and "
                     "[orikaeshi-handraise-room]", "copy dialplan/confbridge.conf.sample")
    shutil.copy(REPO_ROOT / "dialplan" / "confbridge.conf.sample", etc / "confbridge.conf")
    edit(etc / "confbridge.conf", "[default_user]\ntype = user", "[default_user]\ntype = bridge")
    only(check(etc), "[default_user] type: is 'bridge'", "fix: type = user")
    shutil.copy(REPO_ROOT / "dialplan" / "confbridge.conf.sample", etc / "confbridge.conf")
    (etc / "modules.conf").write_text("[modules]\nautoload = yes\nnoload => app_confbridge.so\n")
    only(check(etc), "modules.conf:3: noload => app_confbridge.so: ConfBridge() is not loaded")
    # A dialplan without 手上げ with hold needs no confbridge.conf.
    (etc / "confbridge.conf").unlink()
    edit(etc / "extensions.conf", "#include handraise.conf\n", "")
    assert check(etc) == []


def test_outside_numbers_are_not_a_template_in_globals(etc: Path) -> None:
    """The include's old way, ORIKAESHI_FORWARD = PJSIP/${FORWARD_TO}@trunk, dialled
    PJSIP/@trunk: Asterisk expands [globals] at load time."""
    with (etc / "extensions.conf").open("a") as out:
        out.write("[globals]\nORIKAESHI_FORWARD = PJSIP/${FORWARD_TO}@trunk\n")
    only(check(etc), "[globals] ORIKAESHI_FORWARD: 'PJSIP/${FORWARD_TO}@trunk' is expanded "
                     "when Asterisk loads it")
    edit(etc / "extensions.conf", "ORIKAESHI_OUTSIDE_PREFIX = PJSIP/\n", "")
    assert any("ORIKAESHI_OUTSIDE_PREFIX: not set" in p for p in check(etc))


def test_the_agi_address(etc: Path) -> None:
    edit(etc / "extensions.conf", "ORIKAESHI_AGI = agi://127.0.0.1:4573",
         "ORIKAESHI_AGI = agi://127.0.0.1:4574")
    only(check(etc), "[globals] ORIKAESHI_AGI: port 4574 but the service listens on agi_port "
                     "4573")
    edit(etc / "extensions.conf", "ORIKAESHI_AGI = agi://127.0.0.1:4574\n", "")
    only(check(etc), "[globals] ORIKAESHI_AGI: not set: every call would be routed by the "
                     "static fallback")


def orikaeshi(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORIKAESHI_DATA_DIR": str(tmp_path / "data")}
    env.pop("ORIKAESHI_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "service", "--config", str(SAMPLE_CONFIG),
                           *args], capture_output=True, text=True, env=env, timeout=120,
                          check=False, cwd=REPO_ROOT)


@pytest.mark.skipif(not tools_available(), reason="Open JTalk, espeak-ng or sox not installed")
def test_dialplan_check_as_a_process(tmp_path: Path) -> None:
    """What the admin runs: the sample configuration against the sample files and the
    prompts `orikaeshi prompts` made passes; the Asterisk 20 PBX with the 21+ include and a
    wrong inbound context exits 1, naming each."""
    etc = sample_etc(tmp_path)
    sounds = tmp_path / "sounds"
    made = orikaeshi(tmp_path, "prompts", "--clients", str(SAMPLE_CLIENTS), "--out", str(sounds))
    assert made.returncode == 0, made.stderr
    common = ("dialplan", "check", "--clients", str(SAMPLE_CLIENTS), "--asterisk-etc",
              str(etc), "--sounds", str(sounds))
    good = orikaeshi(tmp_path, *common, "--asterisk-version", "22.5.0")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "ok: 3 clients, 5 DIDs" in good.stdout and "(Asterisk 22.5.0)" in good.stdout
    edit(etc / "extensions.conf", "[orikaeshi-phones]",
         "[from-pstn]\nexten => _X.,1,Goto(orikaeshi-inbound,${EXTEN},1)\n\n[orikaeshi-phones]")
    edit(etc / "extensions.conf", "#include outbound-guard.conf\n", "")
    bad = orikaeshi(tmp_path, *common, "--asterisk-version", "20.20.1")
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert sum("Queue() member Gosub: is argument 7 but Asterisk 20.20.1" in line
               for line in lines) == 2, lines
    assert any("[from-pstn]: sends calls to [orikaeshi-inbound] but is not in" in line
               for line in lines), lines
    assert f"{etc / 'extensions.conf'}: #include outbound-guard.conf: the dialplan has no " \
        "[orikaeshi-outbound-guard] context" in bad.stdout, lines
    assert "4 problem(s)" in bad.stderr
    edit(etc / "extensions.conf", "#include presence.conf\n",
         "#include presence.conf\n#include outbound-guard.conf\n")
    # `dialplan include` writes the include for that PBX; then the check passes again.
    edit(etc / "extensions.conf", "[from-pstn]\nexten => _X.,1,Goto(orikaeshi-inbound,"
         "${EXTEN},1)\n\n", "")
    made = orikaeshi(tmp_path, "dialplan", "include", "--asterisk-version", "20.20.1",
                     "--out", str(etc / "orikaeshi.conf"))
    assert made.returncode == 0, made.stderr
    again = orikaeshi(tmp_path, *common, "--asterisk-version", "20.20.1")
    assert again.returncode == 0, again.stdout + again.stderr


def test_the_release_in_what_asterisk_reports() -> None:
    assert [asterisk_major(v) for v in ("20.20.1", "Asterisk 23.4.1", "certified/20.7-cert3",
                                        "22.0.0-rc1", "GIT-master-1a2b3c")] == \
        [20, 23, 20, 22, None]
    assert [gosub_argument(m) for m in (18, 20, 21, 22, 23, None)] == [8, 8, 7, 7, 7, 7]
