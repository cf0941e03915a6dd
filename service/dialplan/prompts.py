"""The prompts the dialplan plays, and ``orikaeshi prompts`` to make them.

With espeak-ng and sox installed the prompts are generated (8 kHz mono 16-bit WAV, what
Asterisk plays without transcoding), reproducibly: the same text gives the same bytes.
Without them, the command lists what to record and what each file should say.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from service.clients.model import Directory

# Segments of the whisper to whoever answers an escalated caller, and of escalation reasons.
SEGMENTS = {
    "orikaeshi/repeat-caller": "Repeat caller.",
    "orikaeshi/call-number": "Call number",
    "orikaeshi/whisper-unknown": "Call to a number of no client.",
    "orikaeshi/whisper-transfer": "Transferred by an operator.",
    "orikaeshi/escalation-complaint": "Escalated: complaint.",
    "orikaeshi/escalation-complaint_naming_operator": "Escalated: complaint about an operator.",
    "orikaeshi/escalation-payment_dispute": "Escalated: payment dispute.",
    "orikaeshi/escalation-other": "Escalated by the operator.",
    "orikaeshi/escalation-menu": ("Escalation. Press 1 for a complaint, 2 for a complaint about "
                                  "an operator, 3 for a payment dispute, 9 for anything else."),
    # The outbound guard's refusals, to the operator who dialled (dialplan/outbound-guard.conf).
    "orikaeshi/outbound-refused-hours": "発信できません。相手の方の時間で、発信できる時間外です。",
    "orikaeshi/outbound-refused-limit": ("発信できません。本日の発信回数、"
                                         "または発信間隔の制限に達しています。"),
    "orikaeshi/outbound-refused-dnc": "発信できません。この番号は発信禁止に登録されています。",
    "orikaeshi/outbound-guard-unavailable": ("発信できません。発信の確認ができません。"
                                             "管理者に連絡してください。"),
}


@dataclass(frozen=True)
class Prompt:
    name: str  # as played: custom/whisper-ksl -> custom/whisper-ksl.wav
    text: str
    voice: str  # espeak-ng voice


def _voice(text: str) -> str:
    return "ja" if any(ord(ch) > 0x3000 for ch in text) else "en-us"


def needed_prompts(directory: Directory) -> list[Prompt]:
    """Every prompt the dialplan may play for these clients, with what it should say."""
    wanted: dict[str, str] = dict(SEGMENTS)
    for client in sorted(directory.clients.values(), key=lambda c: c.code):
        if client.whisper:
            wanted[client.whisper] = f"Call for {client.name}."
        if client.greeting:
            wanted[client.greeting] = client.greeting_script or \
                f"Thank you for calling {client.name}."
        if client.closed_prompt:
            wanted[client.closed_prompt] = (f"{client.name} is closed now. Please leave a "
                                            "message after the tone.")
    unknown = directory.unknown_did
    for name in (unknown.whisper, unknown.greeting):
        if name and name not in wanted:
            wanted[name] = "Thank you for calling."
    return [Prompt(name, text, _voice(text)) for name, text in sorted(wanted.items())]


def tools_available() -> bool:
    return bool(shutil.which("espeak-ng") and shutil.which("sox"))


def generate(prompts: list[Prompt], out_dir: Path) -> list[Path]:
    """Write ``out_dir/<name>.wav`` for each prompt; return the files written."""
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        for prompt in prompts:
            target = out_dir / f"{prompt.name}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["espeak-ng", "-v", prompt.voice, "-s", "150", "-w", str(raw),
                            prompt.text], check=True, capture_output=True, timeout=60)
            # -D: no dither, so the same text always gives the same file.
            subprocess.run(["sox", "-D", str(raw), "-r", "8000", "-c", "1", "-b", "16",
                            str(target)], check=True, capture_output=True, timeout=60)
            written.append(target)
    return written
