"""structlog, configured once for the whole process.

JSON lines when stderr is not a terminal, coloured console otherwise.  Phone numbers are
masked by a processor, so call sites may bind raw numbers without leaking them.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from service.phone import mask, mask_in_text

# Keys whose values are phone numbers wherever they are bound.
PHONE_KEYS = frozenset({
    "caller", "caller_number", "caller_e164", "callee", "callee_number", "number", "callerid",
    "agi_callerid", "to", "from_number", "phone",
})

_configured = False


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written (tests swap it; so may a daemon)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _mask_phone_numbers(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in event_dict.items():
        if key in PHONE_KEYS and isinstance(value, str):
            event_dict[key] = mask(value)
        elif key == "event" and isinstance(value, str):
            event_dict[key] = mask_in_text(value)
    return event_dict


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog and the stdlib root logger (idempotent)."""
    global _configured
    if _configured:
        return
    _configured = True
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_phone_numbers,
    ]
    renderer: Any = (structlog.processors.JSONRenderer(ensure_ascii=False) if use_json
                     else structlog.dev.ConsoleRenderer())
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    # Libraries that log through the stdlib (asyncio, aiohttp, panoramisk) go to stderr too.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
