"""Small helpers shared by the API handlers: JSON out, clear 4xx errors, parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from aiohttp import web


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, set | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(data: Any) -> str:
    return json.dumps(data, default=_default, ensure_ascii=False)


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def bad_request(message: str, **details: Any) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=dumps({"error": message, **details}),
                              content_type="application/json")


def not_found(what: str = "not found") -> web.HTTPNotFound:
    return web.HTTPNotFound(text=dumps({"error": what}), content_type="application/json")


def conflict(message: str) -> web.HTTPConflict:
    return web.HTTPConflict(text=dumps({"error": message}), content_type="application/json")


# Whole numbers the database stores as bigint (ids, cursors).
MAX_ID = 2**63 - 1
# JSON nested deeper than this is refused before Python's recursion limit is near.
MAX_JSON_DEPTH = 32


async def read_body(request: web.Request, limit: int = 64 * 1024) -> bytes:
    """The body, refused past ``limit`` bytes whether its length was declared or not
    (a chunked body has no Content-Length: it is read at most ``limit + 1`` bytes far)."""
    if request.content_length is not None and request.content_length > limit:
        raise bad_request(f"body larger than {limit} bytes")
    body = bytearray()
    while len(body) <= limit:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > limit:
        raise bad_request(f"body larger than {limit} bytes")
    return bytes(body)


def json_depth(text: str) -> int:
    """How deeply brackets nest in ``text`` (strings skipped), without parsing it.

    >>> json_depth('{"a": [1, {"b": "[[["}]}')
    3
    """
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


async def json_body(request: web.Request, limit: int = 64 * 1024) -> dict[str, Any]:
    raw = await read_body(request, limit)
    try:
        text = raw.decode("utf-8")
        if json_depth(text) > MAX_JSON_DEPTH:
            raise bad_request(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise bad_request("body is not JSON") from exc
    if not isinstance(data, dict):
        raise bad_request("body must be a JSON object")
    return data


def text_field(data: dict[str, Any], name: str, *, required: bool = True,
               max_length: int = 1000) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise bad_request(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    if "\x00" in value:
        raise bad_request(f"{name} holds a NUL character")
    if len(value) > max_length:
        raise bad_request(f"{name} is longer than {max_length} characters")
    return value


@dataclass(frozen=True)
class Page:
    limit: int
    before_id: int | None


def page(request: web.Request, default: int = 50, maximum: int = 500) -> Page:
    """``?limit=`` (1..500) and ``?before=<id>`` (keyset pagination, newest first)."""
    try:
        limit = int(request.query.get("limit", default))
        before = request.query.get("before")
        before_id = int(before) if before else None
    except ValueError as exc:
        raise bad_request("limit and before are whole numbers") from exc
    if not 1 <= limit <= maximum:
        raise bad_request(f"limit must be 1..{maximum}")
    if before_id is not None and not 0 < before_id <= MAX_ID:
        raise bad_request("before is not an id")
    return Page(limit, before_id)


def when(request: web.Request, name: str) -> datetime | None:
    """An ISO date/time parameter (Tokyo time when no offset is given), 1970..9999: year 1
    shifted to UTC is year 0, which neither Python nor PostgreSQL can hold."""
    text = request.query.get(name)
    if not text:
        return None
    try:
        if len(text) > 40:
            raise ValueError("too long")
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise bad_request(f"{name} is not an ISO date/time", value=text[:40]) from exc
    if not 1970 <= moment.year <= 9998:
        raise bad_request(f"{name} must be between 1970 and 9998", value=text[:40])
    if moment.tzinfo is None:
        from zoneinfo import ZoneInfo

        moment = moment.replace(tzinfo=ZoneInfo("Asia/Tokyo"))
    return moment


def whole_id(text: str) -> int | None:
    """A database id from a path or query (None when it cannot be one: not a number, or
    out of bigint range, so never an overflow inside the driver)."""
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str | None:
    value = request.query.get(name)
    if value and value not in choices:
        raise bad_request(f"{name} must be one of {', '.join(choices)}", value=value)
    return value or None


def paged(items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """Items plus the cursor for the next page (None at the end)."""
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_before": items[-1]["id"] if more and items else None}
