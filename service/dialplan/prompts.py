"""The prompts the dialplan plays, and ``orikaeshi prompts`` to make them.

Callers and operators of this product hear Japanese: prompts are spoken by Open JTalk
(``pyopenjtalk-plus``: the engine and its dictionary are in the wheel, nothing is downloaded
when it runs), and in English by espeak-ng for a client whose ``language`` is ``en``.  Every
file is resampled by sox to what Asterisk plays without transcoding (8 kHz mono 16-bit WAV),
reproducibly: the same text gives the same bytes (no dither, a fixed voice, no time stamps).

Numbers and times are written the Japanese way before they are spoken (``午後6時30分``,
``3回目``, ``12月29日``); Open JTalk reads those as a person would.  The whisper to whoever
answers a repeat caller is one file per count (``orikaeshi/repeat-3`` = "リピーターのお客様、
3回目のお電話です。"): Japanese puts the count inside the sentence, so a separate number
prompt would not read naturally, and one short file plays in well under 4 s.

``dialplan check`` refuses a prompt whose duration is implausible for its text
(:func:`plausible_duration`, :func:`check_prompts`): espeak-ng's Japanese voice once read kanji
as "Chinese letter" and made a 17.9 s greeting, and nothing noticed.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import tempfile
import unicodedata
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import time
from pathlib import Path

from service.clients.model import Client, Directory, Span

# Counts that have their own repeat whisper file; above, orikaeshi/repeat-many.
REPEAT_COUNTS = range(2, 21)

# Staff-facing segments (operators and supervisors of the answering company): Japanese.
SEGMENTS = {
    "orikaeshi/repeat-caller": "リピーターのお客様。",
    "orikaeshi/call-number": "着信回数",
    "orikaeshi/repeat-many": "リピーターのお客様、何度もお電話をいただいています。",
    "orikaeshi/whisper-unknown": "契約先のない番号へのお電話です。",
    "orikaeshi/whisper-transfer": "オペレーターからの転送です。",
    "orikaeshi/escalation-complaint": "エスカレーション、苦情です。",
    "orikaeshi/escalation-complaint_naming_operator":
        "エスカレーション、オペレーターへの苦情です。",
    "orikaeshi/escalation-payment_dispute": "エスカレーション、お支払いのトラブルです。",
    "orikaeshi/escalation-other": "オペレーターからのエスカレーションです。",
    "orikaeshi/escalation-menu": ("エスカレーション。苦情は1、オペレーターへの苦情は2、"
                                  "お支払いのトラブルは3、その他は9を押してください。"),
    # Escalation safety net: the caller comes back from the supervisors' queue.
    "orikaeshi/safety-net": "スーパーバイザー不在。",
    # 手上げ with hold (dialplan/handraise.conf).
    "orikaeshi/handraise-alert": "手上げです。オペレーターが支援を求めています。",
    "orikaeshi/handraise-held": "お客様を保留にしました。スーパーバイザーを呼んでいます。",
    "orikaeshi/handraise-back": "お客様をお戻しします。",
    # Operator presence feature codes (dialplan/presence.conf).
    "orikaeshi/presence-login": "ログインしました。",
    "orikaeshi/presence-logout": "ログアウトしました。",
    "orikaeshi/presence-paused": "休止にしました。",
    "orikaeshi/presence-unpaused": "受付を再開しました。",
    # Call recording (dialplan/recording.conf): caller-facing, so in both languages.
    "orikaeshi/recording-notice": "このお電話は、対応品質の向上のため録音させていただきます。",
    "orikaeshi/recording-notice-en": "This call is recorded to improve our service.",
    # The outbound guard's refusals, to the operator who dialled (dialplan/outbound-guard.conf).
    "orikaeshi/outbound-refused-hours": "発信できません。相手の方の時間で、発信できる時間外です。",
    "orikaeshi/outbound-refused-limit": ("発信できません。本日の発信回数、"
                                         "または発信間隔の制限に達しています。"),
    "orikaeshi/outbound-refused-dnc": "発信できません。この番号は発信禁止に登録されています。",
    "orikaeshi/outbound-guard-unavailable": ("発信できません。発信の確認ができません。"
                                             "管理者に連絡してください。"),
}
SEGMENTS.update({f"orikaeshi/repeat-{n}": f"リピーターのお客様、{n}回目のお電話です。"
                 for n in REPEAT_COUNTS})

# Prompts a whisper is made of: short, so the caller is not kept waiting while the member
# hears it (spoken a little faster, checked to stay under WHISPER_MAX_S).
WHISPER_MAX_S = 4.0
_FAST = ("orikaeshi/repeat-", "orikaeshi/whisper-", "orikaeshi/escalation-c",
         "orikaeshi/escalation-p", "orikaeshi/escalation-o", "orikaeshi/safety-net")

_WEEKDAYS_JA = ("月曜日", "火曜日", "水曜日", "木曜日", "金曜日", "土曜日", "日曜日")


@dataclass(frozen=True)
class Prompt:
    name: str  # as played: custom/whisper-ksl -> custom/whisper-ksl.wav
    text: str
    language: str = "ja"   # ja (Open JTalk) | en (espeak-ng)
    whisper: bool = False  # heard by the member before the bridge: short, spoken faster

    @property
    def voice(self) -> str:
        """The engine's voice name (espeak-ng's for English)."""
        return "en-us" if self.language == "en" else "ja"


# --- Japanese readings (pure) ---------------------------------------------------------------

def time_ja(t: time, until_midnight: bool = False) -> str:
    """A clock time as said in Japanese announcements.

    >>> time_ja(time(9, 0)), time_ja(time(18, 30)), time_ja(time(12, 0))
    ('午前9時', '午後6時30分', '正午')
    >>> time_ja(time(0, 0), until_midnight=True), time_ja(time(0, 15))
    ('午前0時', '午前0時15分')
    """
    if t == time(12, 0):
        return "正午"
    half = "午前" if t.hour < 12 else "午後"
    hour = t.hour % 12
    return f"{half}{hour}時" + (f"{t.minute}分" if t.minute else "")


def date_ja(month: int, day: int, year: int | None = None) -> str:
    """A date the Japanese way (Open JTalk reads 12月29日 as じゅうにがつにじゅうくにち).

    >>> date_ja(12, 29), date_ja(1, 3, 2027)
    ('12月29日', '2027年1月3日')
    """
    return (f"{year}年" if year else "") + f"{month}月{day}日"


def weekdays_ja(days: Iterable[int]) -> str:
    """Weekdays (0 = Monday) as said: 平日, 毎日, 土日, 月曜日から土曜日, 月曜日・水曜日.

    >>> weekdays_ja(range(5)), weekdays_ja(range(7)), weekdays_ja([0, 1, 2, 3, 4, 5])
    ('平日', '毎日', '月曜日から土曜日')
    >>> weekdays_ja([5, 6]), weekdays_ja([0, 2])
    ('土日', '月曜日・水曜日')
    """
    chosen = sorted(set(days))
    if chosen == list(range(7)):
        return "毎日"
    if chosen == list(range(5)):
        return "平日"
    if chosen == [5, 6]:
        return "土日"
    if len(chosen) > 2 and chosen == list(range(chosen[0], chosen[-1] + 1)):
        return f"{_WEEKDAYS_JA[chosen[0]]}から{_WEEKDAYS_JA[chosen[-1]]}"
    return "・".join(_WEEKDAYS_JA[d] for d in chosen)


def hours_ja(spans: Iterable[Span]) -> str:
    """Opening hours as one phrase: 平日、午前9時から午後6時まで.

    >>> from service.clients.model import Span
    >>> hours_ja([Span(d, time(9), time(18)) for d in range(5)])
    '平日、午前9時から午後6時まで'
    """
    by_range: dict[tuple[time, time, bool], list[int]] = {}
    for span in spans:
        by_range.setdefault((span.start, span.end, span.until_midnight), []).append(span.weekday)
    parts = [f"{weekdays_ja(days)}、{time_ja(start)}から{time_ja(end, midnight)}まで"
             for (start, end, midnight), days in sorted(by_range.items(),
                                                         key=lambda item: min(item[1]))]
    return "。".join(parts)


def client_texts(client: Client) -> dict[str, str]:
    """What the client's greeting, whisper and closed prompts say, in its language."""
    if client.language == "en":
        closed = f"{client.name} is closed now."
        if client.closed_action == "voicemail":
            closed += " Please leave a message after the tone."
        return {"greeting": client.greeting_script if _is_english(client.greeting_script)
                else f"Thank you for calling {client.name}.",
                "whisper": f"Call for {client.name}.", "closed": closed}
    name = client.name_ja or client.name
    closed = f"お電話ありがとうございます。{name}です。ただいまの時間は受付を終了しております。"
    if client.hours:
        closed += f"受付時間は、{hours_ja(client.hours)}です。"
    if client.closed_action == "voicemail":
        closed += "発信音のあとに、ご用件とお名前、お電話番号をお話しください。"
    return {"greeting": client.greeting_script or
            f"お電話ありがとうございます。{name}でございます。",
            "whisper": f"{name}のお電話です。", "closed": closed}


def _is_english(text: str) -> bool:
    return bool(text) and all(ord(ch) < 0x3000 for ch in text)


def needed_prompts(directory: Directory) -> list[Prompt]:
    """Every prompt the dialplan may play for these clients, with what it should say."""
    wanted: dict[str, Prompt] = {}
    for name, text in SEGMENTS.items():
        wanted[name] = Prompt(name, text, "en" if name.endswith("-en") else "ja",
                              name.startswith(_FAST))
    for client in sorted(directory.clients.values(), key=lambda c: c.code):
        texts = client_texts(client)
        if client.whisper:
            wanted[client.whisper] = Prompt(client.whisper, texts["whisper"], client.language,
                                            True)
        if client.greeting:
            wanted[client.greeting] = Prompt(client.greeting, texts["greeting"],
                                             client.language)
        if client.closed_prompt:
            wanted[client.closed_prompt] = Prompt(client.closed_prompt, texts["closed"],
                                                  client.language)
    unknown = directory.unknown_did
    for name in (unknown.whisper, unknown.greeting):
        if name and name not in wanted:
            wanted[name] = Prompt(name, "お電話ありがとうございます。", "ja")
    return [wanted[name] for name in sorted(wanted)]


# --- how long a prompt may last for its text (pure) -----------------------------------------

_SMALL_KANA = set("ゃゅょぁぃぅぇぉゎャュョァィゥェォヮ")
_PAUSES = set("。、，．！？,.!?・\n")


def spoken_units(text: str, language: str) -> tuple[float, int]:
    """(morae for ja / syllables for en, pauses): an estimate of how much there is to say.

    Japanese: a kana is one mora (small ゃゅょ join the one before), a kanji about two, a
    digit about two, a Latin letter about two (spelled out); punctuation is a pause.

    >>> spoken_units("お電話ありがとうございます。", "ja")
    (15.0, 1)
    >>> spoken_units("Call for Kasumi Law Office.", "en")
    (8.0, 1)
    """
    pauses = sum(1 for ch in text if ch in _PAUSES)
    if language == "en":
        syllables = 0.0
        for word in text.split():
            letters = "".join(ch for ch in word.lower() if ch.isalpha())
            groups = sum(1 for i, ch in enumerate(letters)
                         if ch in "aeiouy" and (i == 0 or letters[i - 1] not in "aeiouy"))
            if letters.endswith("e") and groups > 1:
                groups -= 1
            syllables += max(1, groups) if letters else 2 * sum(ch.isdigit() for ch in word)
        return syllables, pauses
    morae = 0.0
    for ch in text:
        if ch in _PAUSES or ch.isspace() or ch in _SMALL_KANA:
            continue
        name = unicodedata.name(ch, "")
        if "HIRAGANA" in name or "KATAKANA" in name or ch == "ー":
            morae += 1
        elif "CJK UNIFIED" in name or ch == "々" or ch.isdigit() or ch.isalpha():
            morae += 2  # a kanji, a digit, a spelled-out Latin letter: about two
    return morae, pauses


def plausible_duration(text: str, lang: str, seconds: float) -> bool:
    """Whether a prompt of ``seconds`` can be ``text`` spoken in ``lang`` by a voice.

    Japanese speech runs about 6-8 morae a second (Open JTalk's KSL greeting: 31 morae in
    4.9 s); English about 3-5 syllables a second.  Allowed: from twice the fastest rate to
    well under the slowest, plus half a second a pause and a second and a half of lead-in and
    tail.  Far outside is a wrong voice (espeak-ng reading kanji as "Chinese letter": 17.9 s
    for that greeting), a cut file or silence.

    >>> plausible_duration("お電話ありがとうございます。霞法律事務所でございます。", "ja", 4.9)
    True
    >>> plausible_duration("お電話ありがとうございます。霞法律事務所でございます。", "ja", 17.9)
    False
    >>> plausible_duration("お電話ありがとうございます。", "ja", 0.2)
    False
    """
    units, pauses = spoken_units(text, lang)
    if units <= 0:
        return seconds < 2.0
    fastest, slowest = (14.0, 4.0) if lang == "ja" else (8.0, 2.0)
    return units / fastest <= seconds <= units / slowest + 0.5 * pauses + 1.5


def wav_duration(path: Path) -> tuple[float, str | None]:
    """(seconds, problem) of a WAV file; the problem says why Asterisk would not play it
    as is (not 8 kHz mono 16-bit), or why it cannot be read."""
    try:
        with wave.open(str(path), "rb") as audio:
            frames, rate = audio.getnframes(), audio.getframerate()
            shape = (rate, audio.getnchannels(), audio.getsampwidth())
    except (wave.Error, EOFError, OSError) as exc:
        return 0.0, f"is not a readable WAV file ({exc})"
    problem = None if shape == (8000, 1, 2) else \
        f"is {shape[0]} Hz, {shape[1]} channel(s), {8 * shape[2]}-bit: want 8 kHz mono 16-bit"
    return frames / rate if rate else 0.0, problem


def check_prompts(directory: Directory, sounds: Path) -> list[str]:
    """Problems with the prompt files under ``sounds`` (WAV files of needed prompts): a
    duration implausible for the prompt's text, a whisper of 4 s or more, or a format
    Asterisk must transcode.  Missing files are not reported here (check_directory does)."""
    problems = []
    for prompt in needed_prompts(directory):
        path = sounds / f"{prompt.name}.wav"
        if not path.exists():
            continue
        seconds, problem = wav_duration(path)
        if problem:
            problems.append(f"prompt {prompt.name}: {path} {problem}")
            continue
        if not plausible_duration(prompt.text, prompt.language, seconds):
            units, _ = spoken_units(prompt.text, prompt.language)
            unit = "morae" if prompt.language == "ja" else "syllables"
            problems.append(
                f"prompt {prompt.name} lasts {seconds:.1f} s, implausible for its "
                f"{prompt.language} text ({units:g} {unit}: "
                f"{prompt.text!r}): wrong voice or a cut file? run `orikaeshi prompts` again")
        elif prompt.whisper and seconds >= WHISPER_MAX_S:
            problems.append(f"prompt {prompt.name} is a whisper of {seconds:.1f} s (at most "
                            f"{WHISPER_MAX_S:g} s: the caller waits while the member hears it)")
    return problems


# --- generation -------------------------------------------------------------------------------

def _openjtalk() -> object | None:
    try:
        # pyopenjtalk-plus prints a notice about an optional model on import.
        with contextlib.redirect_stdout(io.StringIO()):
            import pyopenjtalk
    except ImportError:
        return None
    return pyopenjtalk


def missing_tools(prompts: Iterable[Prompt]) -> list[str]:
    """What must be installed to generate these prompts (empty: everything is there)."""
    languages = {p.language for p in prompts}
    missing = [] if shutil.which("sox") else ["sox (Debian package sox)"]
    if "ja" in languages and _openjtalk() is None:
        missing.append("Open JTalk (pip install 'orikaeshi[tts]', i.e. pyopenjtalk-plus)")
    if "en" in languages and not shutil.which("espeak-ng"):
        missing.append("espeak-ng (Debian package espeak-ng), for English prompts")
    return missing


def tools_available() -> bool:
    return not missing_tools([Prompt("x", "x", "ja"), Prompt("y", "y", "en")])


def _speak_ja(text: str, fast: bool, out: Path) -> None:
    import numpy as np

    engine = _openjtalk()
    if engine is None:
        raise RuntimeError("Open JTalk is not installed (pip install pyopenjtalk-plus)")
    samples, rate = engine.tts(text, speed=1.15 if fast else 1.0)  # type: ignore[attr-defined]
    pcm = np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes()
    with wave.open(str(out), "wb") as raw:
        raw.setnchannels(1)
        raw.setsampwidth(2)
        raw.setframerate(int(rate))
        raw.writeframes(pcm)


def generate(prompts: list[Prompt], out_dir: Path) -> list[Path]:
    """Write ``out_dir/<name>.wav`` for each prompt; return the files written."""
    missing = missing_tools(prompts)
    if missing:
        raise RuntimeError("cannot generate prompts without: " + ", ".join(missing))
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        for prompt in prompts:
            target = out_dir / f"{prompt.name}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            if prompt.language == "ja":
                _speak_ja(prompt.text, prompt.whisper, raw)
            else:
                subprocess.run(["espeak-ng", "-v", prompt.voice,
                                "-s", "170" if prompt.whisper else "150", "-w", str(raw),
                                prompt.text], check=True, capture_output=True, timeout=60)
            # -D: no dither, so the same text always gives the same file.
            subprocess.run(["sox", "-D", str(raw), "-r", "8000", "-c", "1", "-b", "16",
                            str(target)], check=True, capture_output=True, timeout=60)
            written.append(target)
    return written
