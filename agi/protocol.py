"""Pure FastAGI wire helpers: headers, replies, argument quoting.  No sockets.

A session starts with Asterisk sending ``agi_*`` headers, one per line, ended by an empty line::

    agi_network: yes
    agi_network_script: route
    agi_channel: Local/0312345678@from-pstn-00000000;2
    agi_uniqueid: 1795346827.1
    agi_callerid: 09011112222
    agi_calleridname: 田中太郎
    agi_arg_1: 0312345678

then each command line the server sends gets a reply line::

    SET VARIABLE ROUTE_QUEUE "q-ksl"
    200 result=1

Other replies: ``510 Invalid or unknown command``, ``511 Command Not Permitted on a dead
channel or intercept routine``, a multi-line usage error::

    520-Invalid command syntax.  Proper usage follows:
    Usage: SET VARIABLE <variablename> <value>
    520 End of proper usage.

and ``HANGUP`` on a line of its own when the caller hangs up while the AGI runs.
"""

from __future__ import annotations

from dataclasses import dataclass


class AgiProtocolError(ValueError):
    """A line that is not what Asterisk sends."""


@dataclass(frozen=True, slots=True)
class AgiReply:
    code: int               # 200, 510, 511, 520 (0 for a line that is not a reply)
    result: str = ""        # the value after ``result=``
    data: str = ""          # the text in parentheses, e.g. ``(timeout)``
    text: str = ""          # the whole reply, usage text included for 520

    @property
    def ok(self) -> bool:
        """Asterisk ran the command (``200 result=`` other than -1)."""
        return self.code == 200 and self.result != "-1"


def parse_headers(block: bytes) -> dict[str, str]:
    """The header block (without its final empty line) as a dict; lines without ``: `` are
    skipped, values decoded as UTF-8 with replacement (a caller name is never fatal).

    >>> parse_headers(b"agi_network: yes\\nagi_calleridname: \\xe7\\x94\\xb0\\xe4\\xb8\\xad")
    {'agi_network': 'yes', 'agi_calleridname': '田中'}
    """
    headers: dict[str, str] = {}
    # One decode for the block: a per-line decode was a third of the server's header cost.
    for line in block.decode("utf-8", "replace").split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        key, sep, value = line.partition(": ")
        if sep and key.startswith("agi_"):
            headers[key] = value
        elif line.endswith(":") and line.startswith("agi_"):
            headers[line[:-1]] = ""
    return headers


def parse_reply(line: str) -> AgiReply:
    """One reply line (the first, for a multi-line 520).

    >>> parse_reply("200 result=1")
    AgiReply(code=200, result='1', data='', text='200 result=1')
    >>> parse_reply("200 result= (timeout)").data
    'timeout'
    >>> parse_reply("510 Invalid or unknown command").code
    510
    """
    line = line.rstrip("\r\n")
    head, _, rest = line.partition(" ")
    code_text = head.split("-", 1)[0]
    if not code_text.isdigit():
        raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
    code = int(code_text)
    result, data = "", ""
    if code == 200 and rest.startswith("result="):
        value = rest[7:]
        result, _, tail = value.partition(" ")
        if tail.startswith("(") and tail.endswith(")"):
            data = tail[1:-1]
        elif value.startswith("(") and value.endswith(")"):
            result, data = "", value[1:-1]
    return AgiReply(code, result, data, line)


def is_multiline_start(line: str) -> bool:
    """``520-Invalid command syntax...`` opens a usage text ended by ``520 End...``."""
    return len(line) >= 4 and line[:3].isdigit() and line[3] == "-"


# Control characters become spaces; backslash and double quote are escaped.
_QUOTE = {code: " " for code in (*range(32), 127)} | {ord("\\"): "\\\\", ord('"'): '\\"'}


def quote(value: object) -> str:
    """One AGI argument, safe whatever it holds.

    Asterisk splits command lines on spaces outside double quotes and takes a backslash as an
    escape, so backslashes and quotes are escaped, and CR/LF (which would end the command and
    start another) and other control characters become spaces.  Multibyte text is kept.

    >>> quote('田中 "太郎"\\r\\nEXEC Dial')
    '"田中 \\\\"太郎\\\\"  EXEC Dial"'
    """
    return '"' + str(value).translate(_QUOTE) + '"'


# In MSet's argument, separators and quotes inside a value are escaped with a backslash
# (Asterisk's app-argument parsing); control characters become spaces.
_MSET = {code: " " for code in (*range(32), 127)} | {
    ord(ch): "\\" + ch for ch in ("\\", ",", "|", '"')}


def mset_data(pairs: list[tuple[str, str]]) -> str:
    """The argument of ``EXEC MSet``: every ``name=value`` in one application call.

    >>> print(mset_data([("ROUTE_QUEUE", "q-ksl"), ("ROUTE_FLAGS", "unknown_did,withheld")]))
    ROUTE_QUEUE=q-ksl,ROUTE_FLAGS=unknown_did\\,withheld
    """
    for name, _ in pairs:
        if not name or any(ch in name for ch in ",=| \"\\") or not name.isprintable():
            raise ValueError(f"not a variable name: {name!r}")
    return ",".join(f"{name}={value.translate(_MSET)}" for name, value in pairs)
