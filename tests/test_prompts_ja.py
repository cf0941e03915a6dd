"""Japanese prompts by Open JTalk: what the sample clients' callers and operators hear.

Real generation (pyopenjtalk-plus + sox) of the sample clients' greetings and whispers, their
durations bounded by their text, reproducible bytes, no network needed; and the duration check
that ``dialplan check`` runs refusing what espeak-ng's Japanese voice makes of the same text.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import wave
from dataclasses import replace
from datetime import time
from pathlib import Path

import pytest

from service.clients.schema import ClientsFileError, parse_clients
from service.dialplan.prompts import (
    WHISPER_MAX_S,
    Prompt,
    check_prompts,
    client_texts,
    generate,
    missing_tools,
    needed_prompts,
    plausible_duration,
    spoken_units,
    time_ja,
    wav_duration,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = parse_clients((REPO / "deploy" / "clients.sample.yaml").read_text(encoding="utf-8"),
                       "sample.yaml")
JA_READY = not missing_tools([Prompt("x", "x", "ja")])
needs_tts = pytest.mark.skipif(not JA_READY, reason="Open JTalk or sox not installed")


def _by_name() -> dict[str, Prompt]:
    return {p.name: p for p in needed_prompts(SAMPLE)}


@needs_tts
def test_sample_greetings_and_whispers_are_japanese_speech_of_plausible_length(
        tmp_path: Path) -> None:
    prompts = _by_name()
    wanted = [prompts[name] for name in prompts
              if name.startswith(("custom/greeting-", "custom/whisper-"))]
    wanted += [prompts["orikaeshi/repeat-3"], prompts["orikaeshi/repeat-20"],
               prompts["orikaeshi/safety-net"]]
    assert len(wanted) == 9
    generate(wanted, tmp_path)
    for prompt in wanted:
        assert prompt.language == "ja"
        seconds, problem = wav_duration(tmp_path / f"{prompt.name}.wav")
        assert problem is None, problem  # 8 kHz mono 16-bit, as Asterisk plays it
        morae, _ = spoken_units(prompt.text, "ja")
        # Bound by the text: a Japanese voice says 4 to 14 morae a second.
        assert morae / 14 <= seconds <= morae / 4 + 2.5, (prompt.name, seconds, morae)
        if prompt.whisper:
            assert seconds < WHISPER_MAX_S, (prompt.name, seconds)
    greeting = prompts["custom/greeting-ksl"]
    assert greeting.text == "お電話ありがとうございます。霞法律事務所でございます。"
    ksl, _ = wav_duration(tmp_path / "custom/greeting-ksl.wav")
    assert 3.0 < ksl < 7.0, ksl  # the tester's run: 4.9 s of natural speech
    assert prompts["custom/whisper-ksl"].text == "霞法律事務所のお電話です。"
    assert prompts["orikaeshi/repeat-3"].text == "リピーターのお客様、3回目のお電話です。"
    assert check_prompts(SAMPLE, tmp_path) == []


@needs_tts
def test_the_same_text_gives_the_same_bytes_without_any_network(tmp_path: Path) -> None:
    """Generated in a fresh process with no network at all (a new network namespace), twice:
    Open JTalk's dictionary is in the wheel, and the files are byte for byte the same."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("unshare -n needs root")
    script = ("import sys; from pathlib import Path; "
              "from service.dialplan.prompts import Prompt, generate; "
              "generate([Prompt('custom/greeting-ksl', "
              "'お電話ありがとうございます。霞法律事務所でございます。'), "
              "Prompt('orikaeshi/repeat-3', 'リピーターのお客様、3回目のお電話です。', 'ja', True)]"
              ", Path(sys.argv[1]))")
    for run in ("a", "b"):
        done = subprocess.run(["unshare", "-n", sys.executable, "-c", script,
                               str(tmp_path / run)], capture_output=True, text=True,
                              timeout=300, cwd=REPO, check=False)
        if done.returncode != 0 and "unshare failed" in done.stderr:
            pytest.skip(done.stderr.strip())
        assert done.returncode == 0, done.stderr
    for name in ("custom/greeting-ksl.wav", "orikaeshi/repeat-3.wav"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # And what is shipped in dialplan/sounds is what the generator makes.
    shipped = REPO / "dialplan" / "sounds" / "orikaeshi" / "repeat-3.wav"
    assert shipped.read_bytes() == (tmp_path / "a" / "orikaeshi/repeat-3.wav").read_bytes()


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                    reason="espeak-ng and sox not installed")
def test_check_refuses_espeak_japanese_a_long_whisper_and_a_wrong_format(tmp_path: Path
                                                                         ) -> None:
    sounds = tmp_path / "sounds"
    prompts = _by_name()
    greeting = prompts["custom/greeting-ksl"]
    # What the old generator made: espeak-ng's Japanese voice, kanji read as English words.
    old = replace(greeting, language="en")
    generate([old], sounds)
    seconds, _ = wav_duration(sounds / "custom/greeting-ksl.wav")
    # A whisper that runs 5 s (silence padded by sox) and a greeting at 16 kHz.
    whisper = sounds / "custom/whisper-ksl.wav"
    _tone(tmp_path / "tone.wav", 8000, 3.0)
    subprocess.run(["sox", str(tmp_path / "tone.wav"), str(whisper), "pad", "0", "1.6"],
                   check=True)
    _tone(sounds / "custom/greeting-mdc.wav", 16000, 4.0)
    problems = check_prompts(SAMPLE, sounds)
    assert len(problems) == 3, problems
    assert problems[0].startswith(f"prompt custom/greeting-ksl lasts {seconds:.1f} s, "
                                  "implausible for its ja text"), problems
    assert "is 16000 Hz, 1 channel(s), 16-bit: want 8 kHz mono 16-bit" in problems[1]
    assert problems[2] == ("prompt custom/whisper-ksl is a whisper of 4.6 s (at most 4 s: "
                           "the caller waits while the member hears it)")


def _tone(path: Path, rate: int, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x10\x00\xf0\xff" * int(rate * seconds / 2))


def test_plausible_duration_bounds_by_text() -> None:
    text = "お電話ありがとうございます。霞法律事務所でございます。"
    assert plausible_duration(text, "ja", 4.9)
    assert not plausible_duration(text, "ja", 17.9)   # espeak-ng's reading
    assert not plausible_duration(text, "ja", 1.0)    # cut
    assert plausible_duration("Call for Kasumi Law Office.", "en", 1.8)
    assert not plausible_duration("Call for Kasumi Law Office.", "en", 12.0)
    assert plausible_duration("", "ja", 0.5)          # an empty text may only be short


def test_texts_read_numbers_and_times_the_japanese_way() -> None:
    ksl, mdc, wsh = (SAMPLE.clients[c] for c in ("KSL", "MDC", "WSH"))
    assert client_texts(ksl)["closed"] == (
        "お電話ありがとうございます。霞法律事務所です。ただいまの時間は受付を終了しております。"
        "受付時間は、平日、午前9時から午後6時までです。発信音のあとに、ご用件とお名前、"
        "お電話番号をお話しください。")
    assert "月曜日から土曜日、午前8時30分から午後7時まで" in client_texts(mdc)["closed"]
    assert "毎日、午前10時から午後10時まで" in client_texts(wsh)["closed"]
    assert time_ja(time(12, 0)) == "正午"
    # English on request: the client's own prompts in English, the staff's stay Japanese.
    english = replace(wsh, language="en")
    assert client_texts(english) == {
        "greeting": "Thank you for calling Hoshi Web Shop.",
        "whisper": "Call for Hoshi Web Shop.",
        "closed": "Hoshi Web Shop is closed now. Please leave a message after the tone."}


@needs_tts
def test_open_jtalk_reads_the_numbers_as_a_person_would() -> None:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        import pyopenjtalk
    assert pyopenjtalk.g2p("午前8時30分", kana=True) == "ゴゼンハチジサンジュップン"
    assert pyopenjtalk.g2p("3回目", kana=True) == "サンカイメ"
    assert pyopenjtalk.g2p("12月29日", kana=True) == "ジューニガツニジュークニチ"


def test_callflow_settings_in_the_clients_file() -> None:
    text = (REPO / "deploy" / "clients.sample.yaml").read_text(encoding="utf-8").replace(
        "    name_ja: ほしウェブショップ",
        "    name_ja: ほしウェブショップ\n    language: en\n    supervisor_wait: 45s\n"
        "    recording: all\n    recording_notice: yes\n    wrapup: 15s\n"
        "    dispositions: [message_taken, info_given, wrong_number]")
    wsh = parse_clients(text, "c.yaml").clients["WSH"]
    assert (wsh.language, wsh.supervisor_wait_s, wsh.recording, wsh.recording_notice,
            wsh.wrapup_s, wsh.dispositions) == \
        ("en", 45, "all", True, 15, ("message_taken", "info_given", "wrong_number"))
    ksl = SAMPLE.clients["KSL"]
    assert (ksl.language, ksl.supervisor_wait, ksl.recording, ksl.dispositions) == \
        ("ja", 30, "none", ())  # waits for a supervisor as long as in its queue
    bad = text.replace("supervisor_wait: 45s", "supervisor_wait: 2h").replace(
        "recording: all", "recording: sometimes").replace("info_given,", "Info Given,")
    with pytest.raises(ClientsFileError) as caught:
        parse_clients(bad, "c.yaml")
    errors = caught.value.errors
    assert len(errors) == 3, errors
    assert any("clients.WSH.supervisor_wait: must be from 5s to 10m" in e for e in errors)
    assert any("'sometimes' is not one of all, none, on_demand" in e for e in errors)
    assert any("'Info Given' is not a disposition code" in e for e in errors)


def test_the_call_flow_dialplans_use_exactly_the_variable_names() -> None:
    from service.dialplan.check import check_variables

    for name in ("safetynet.conf", "handraise.conf", "recording.conf", "presence.conf"):
        text = (REPO / "dialplan" / name).read_text()
        assert check_variables(text, must_read=()) == [], name
    # Each prompt the flows play is a generated, shipped segment.
    import re

    from service.dialplan.prompts import SEGMENTS
    for name in ("handraise.conf", "presence.conf", "safetynet.conf"):
        for prompt in re.findall(r"orikaeshi/[a-z_-]+", (REPO / "dialplan" / name).read_text()):
            if prompt != "orikaeshi/repeat-":
                assert prompt in SEGMENTS, (name, prompt)
                assert (REPO / "dialplan" / "sounds" / f"{prompt}.wav").exists(), prompt
