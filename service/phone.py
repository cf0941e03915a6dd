"""Phone numbers: E.164 normalisation (Japan as the default region) and masking for logs."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

DEFAULT_REGION = "JP"

# What Asterisk and carriers put in the caller number when there is no usable number.
# A Japanese domestic number, as carriers present it: 0 then 9 or 10 digits.
_JP_DOMESTIC = re.compile(r"^0[1-9]\d{8,9}$")

_WITHHELD = {"", "<unknown>", "unknown", "anonymous", "private", "restricted", "unavailable",
             "withheld", "p", "o", "s", "0"}


def is_withheld(raw: str | None) -> bool:
    """True when the presented caller number cannot be called back.

    >>> is_withheld("<unknown>"), is_withheld("anonymous"), is_withheld("09011112222")
    (True, True, False)
    """
    return raw is None or raw.strip().lower() in _WITHHELD


@lru_cache(maxsize=65536)
def to_e164(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """Normalise a dialled or presented number to E.164, or None when it is not a number.

    >>> to_e164("03-1234-5678"), to_e164("+81312345678"), to_e164("0312345678")
    ('+81312345678', '+81312345678', '+81312345678')
    >>> to_e164("anonymous") is None
    True
    """
    if is_withheld(raw):
        return None
    assert raw is not None
    text = raw.strip()
    if region == "JP" and _JP_DOMESTIC.match(text):
        # The common case, without phonenumbers' full parse (~100 us): same result.
        return "+81" + text[1:]
    # International access prefix from Japan written without '+'.
    if text.startswith("010") and len(re.sub(r"\D", "", text)) > 11:
        text = "+" + text[3:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask(raw: str | None) -> str | None:
    """Mask a phone number for logs, keeping enough to recognise it.

    >>> mask("09011112222"), mask("+81312345678"), mask("201")
    ('090*****222', '+813*****678', '201')
    """
    if raw is None:
        return None
    digits = sum(ch.isdigit() for ch in raw)
    if digits < 7:
        return raw
    keep_head = 4 if raw.startswith("+") else 3
    return raw[:keep_head] + "*" * (len(raw) - keep_head - 3) + raw[-3:]


_NUMBER_IN_TEXT = re.compile(r"\+?\d[\d-]{6,}\d")


def mask_in_text(text: str) -> str:
    """Mask every phone-number-looking run of digits inside free text."""
    return _NUMBER_IN_TEXT.sub(lambda m: mask(m.group(0)) or "", text)
