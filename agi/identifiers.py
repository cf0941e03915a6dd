"""What Asterisk sends in AGI headers and arguments that the routes keep: channel names,
unique/linked ids, account codes.  Anything else there (a caller-controlled value, a
dialplan mistake) is not kept."""

from __future__ import annotations

import re

CHANNEL = re.compile(r"^[A-Za-z0-9/@;:._+-]{1,160}$")   # PJSIP/201-0000001a, Local/x@ctx-1;2
UNIQUEID = re.compile(r"^[0-9]{1,20}\.[0-9]{1,10}$")      # 1795346827.42 (linkedids too)
ACCOUNT = re.compile(r"^[A-Za-z0-9_-]{1,40}$")            # a client code: KSL


def valid(pattern: re.Pattern[str], value: str | None) -> str | None:
    """``value`` when it is what Asterisk would send there, else None.

    >>> valid(UNIQUEID, "1795346827.42"), valid(ACCOUNT, "KSL\\r\\nX")
    ('1795346827.42', None)
    """
    return value if value and pattern.match(value) else None
