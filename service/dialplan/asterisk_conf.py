"""Reading Asterisk's own configuration files, as Asterisk reads them, for ``dialplan check``.

Only what the checks need: ``[section]`` headers (with ``(template)`` marks), ``key = value``
and ``key => value`` lines, ``;`` comments (``\\;`` is a literal semicolon), and
``#include`` / ``#tryinclude`` followed relative to the configuration directory.  Every line
keeps its file and number, so a problem can name exactly where to fix it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_SECTION = re.compile(r"^\[([^\]]+)\]\s*(\(([^)]*)\))?")
_INCLUDE = re.compile(r"^#\s*(try)?include\s+\"?([^\"]+?)\"?\s*$")
_MAX_INCLUDE_DEPTH = 10


@dataclass(frozen=True)
class ConfLine:
    """One ``key = value`` (or ``key => value``) line and where it is."""

    path: Path
    lineno: int
    section: str | None
    key: str
    value: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.lineno}"


@dataclass
class ConfFile:
    """A configuration file with its includes read in place."""

    path: Path
    lines: list[ConfLine] = field(default_factory=list)
    # Section name -> where its header is (first occurrence), template sections excluded.
    sections: dict[str, str] = field(default_factory=dict)
    templates: set[str] = field(default_factory=set)
    # Section name -> the templates its header names, ``[q-ksl](orikaeshi-queue)``.
    inherits: dict[str, tuple[str, ...]] = field(default_factory=dict)
    missing_includes: list[str] = field(default_factory=list)  # "file:line: name"

    def values(self, section: str, key: str) -> list[ConfLine]:
        return [line for line in self.lines
                if line.section == section and line.key.lower() == key.lower()]

    def setting(self, section: str, key: str) -> ConfLine | None:
        """The last value of ``key`` in ``section`` (Asterisk keeps the last one)."""
        found = self.values(section, key)
        return found[-1] if found else None

    def section_lines(self, section: str) -> list[ConfLine]:
        return [line for line in self.lines if line.section == section]

    def effective(self, section: str, key: str, _seen: frozenset[str] = frozenset()
                  ) -> ConfLine | None:
        """The value Asterisk gives ``key`` in ``section``: the section's own last line
        (``[s](+)`` additions included), else the last of the templates it names, in
        order (a later template overrides an earlier one)."""
        own = self.setting(section, key)
        if own is not None:
            return own
        found = None
        for parent in self.inherits.get(section, ()):
            if parent not in _seen:  # a template naming itself must not loop
                found = self.effective(parent, key, _seen | {section}) or found
        return found


def _strip_comment(text: str) -> str:
    out = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if text[i] == ";":
            break
        out.append(text[i])
        i += 1
    return "".join(out).strip()


def read_conf(path: Path, base: Path | None = None) -> ConfFile | None:
    """Read ``path`` and every file it includes; None when ``path`` cannot be read."""
    base = base or path.parent
    conf = ConfFile(path)
    if not _read_into(conf, path, base, None, 0):
        return None
    return conf


def _read_into(conf: ConfFile, path: Path, base: Path, section: str | None,
               depth: int) -> bool:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    current = section
    for lineno, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        include = _INCLUDE.match(stripped)
        if include:
            target = Path(include.group(2))
            target = target if target.is_absolute() else base / target
            read = depth < _MAX_INCLUDE_DEPTH and _read_into(conf, target, base, current,
                                                             depth + 1)
            if not read and not include.group(1):
                conf.missing_includes.append(f"{path}:{lineno}: {include.group(2)}")
            continue
        line = _strip_comment(stripped)
        if not line:
            continue
        header = _SECTION.match(line)
        if header:
            current = header.group(1).strip()
            marks = [m.strip() for m in (header.group(3) or "").split(",") if m.strip()]
            if marks[:1] == ["!"]:
                conf.templates.add(current)
            else:
                conf.sections.setdefault(current, f"{path}:{lineno}")
            parents = tuple(m for m in marks if m not in ("!", "+"))
            if parents:
                conf.inherits[current] = parents
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value[1:] if value.startswith(">") else value
        conf.lines.append(ConfLine(path, lineno, current, key.strip(), value.strip()))
    return True


def split_args(text: str) -> list[str]:
    """An application's arguments split at the commas that separate them (not the commas
    inside ``${...}``, ``$[...]`` or parentheses).

    >>> split_args("${ROUTE_QUEUE},t,,${WHISPER},${QUEUE_WAIT},,orikaeshi-member-whisper")
    ['${ROUTE_QUEUE}', 't', '', '${WHISPER}', '${QUEUE_WAIT}', '', 'orikaeshi-member-whisper']
    >>> split_args("a,${IF($[1]?x:y)},b")
    ['a', '${IF($[1]?x:y)}', 'b']
    """
    args: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}" and depth:
            depth -= 1
        if ch == "," and depth == 0:
            args.append("".join(current))
            current = []
        else:
            current.append(ch)
    args.append("".join(current))
    return args


def applications(value: str) -> list[tuple[str, str]]:
    """The dialplan applications an ``exten``/``same`` line runs: ``[(name, args)]``, the
    application itself and any run through ``ExecIf(...?App(args))``.

    >>> applications("n,ExecIf($[1]?Dial(PJSIP/1,45))")
    [('ExecIf', '$[1]?Dial(PJSIP/1,45)'), ('Dial', 'PJSIP/1,45')]
    """
    found = []
    for match in re.finditer(r"([A-Za-z][A-Za-z0-9_]*)\(", value):
        start = match.end()
        depth = 1
        i = start
        while i < len(value) and depth:
            depth += {"(": 1, ")": -1}.get(value[i], 0)
            i += 1
        found.append((match.group(1), value[start:i - 1]))
    known = [(name, args) for name, args in found if name[0].isupper()]
    return known
