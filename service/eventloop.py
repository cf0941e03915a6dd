"""Which asyncio event loop runs the service, and keeping the collector's pauses short.

uvloop (libuv, by asyncpg's authors) is the default where it installs: its transports are C
objects, where asyncio's selector transports each hold a reference cycle (the transport keeps
a bound method of itself), so every FastAGI session left garbage that only the cyclic
collector could free, in full passes of 25-50 ms under load.  Measured with
``bench/agi_route.py`` (docs/routing.md): uvloop cut the route's p99 and the time spent in the
collector several-fold.  ``event_loop = "asyncio"`` keeps the standard loop.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

from service.config import ConfigError
from service.logs import get_logger

log = get_logger(__name__)

EVENT_LOOPS = ("uvloop", "asyncio")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for :class:`asyncio.Runner`; ``None`` means asyncio's own loop."""
    if name not in EVENT_LOOPS:
        raise ConfigError(f"event_loop: {name!r} is not one of {', '.join(EVENT_LOOPS)}")
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # not built for this platform (Windows): the standard loop works too
        log.warning("uvloop_unavailable", fallback="asyncio")
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: what /healthz reports."""
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") \
        else "asyncio"


def freeze_startup_objects() -> None:
    """Move what exists after start-up (modules, the clients directory, pools) out of the
    collector's reach: it lives as long as the process, and a full pass need not walk it."""
    gc.collect()
    gc.freeze()
