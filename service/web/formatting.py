"""How the pages show things people read: phone numbers as written in Japan."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers


@lru_cache(maxsize=65536)
def display_number(e164: str | None) -> str | None:
    """A number as people read it: national format for Japan, international otherwise.

    >>> display_number("+819011112222"), display_number("+81312345678")
    ('090-1111-2222', '03-1234-5678')
    >>> display_number("+12125551234"), display_number(None)
    ('+1 212-555-1234', None)
    >>> display_number("+81905700023")  # not a valid Japanese number: digits as dialled
    '0905700023'

    """
    if not e164:
        return None
    try:
        number = phonenumbers.parse(e164, "JP")
    except phonenumbers.NumberParseException:
        return e164
    if not phonenumbers.is_valid_number(number):
        # Not a number phonenumbers can group (a test line, a short code): as dialled in
        # Japan, without hyphens, rather than a wrongly grouped one.
        national = str(number.national_number)
        return "0" + national if number.country_code == 81 else e164
    fmt = phonenumbers.PhoneNumberFormat.NATIONAL if number.country_code == 81 \
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(number, fmt)


def with_display(row: dict[str, object], *fields: str) -> dict[str, object]:
    """Add ``<field>_display`` for each phone-number field of a row (in place)."""
    for name in fields:
        value = row.get(name)
        row[f"{name}_display"] = display_number(value if isinstance(value, str) else None)
    return row
