"""Long-lived tasks that do not die quietly.

A service loop (a PBX's ledger, the live-stream listener, the workers) that ends with an
exception used to leave its task done and unnoticed until shutdown: a live process doing
nothing, which systemd never restarts.  :func:`keep_running` runs such a loop, logs every
end with its traceback, and starts it again after a backoff (doubling up to 30 s while
it keeps failing soon after each start), for as long as it is not cancelled.  Restarts are
counted per loop (:data:`RESTARTS`, exported as a metric).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from service.logs import get_logger

log = get_logger(__name__)

LoopFactory = Callable[[], Coroutine[Any, Any, Any]]


@dataclass
class Restarts:
    """How often each supervised loop was restarted (for metrics and /healthz)."""

    counts: dict[str, int] = field(default_factory=dict)

    def note(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1


RESTARTS = Restarts()


def restart_delay(failures: int, low: float, high: float) -> float:
    """Seconds before restart number ``failures``: doubling from ``low`` to ``high``,
    jittered by 20 %.

    >>> 0.4 <= restart_delay(1, 0.5, 30) <= 0.6, restart_delay(40, 0.5, 30) <= 36
    (True, True)
    """
    return min(high, low * 2 ** min(max(failures - 1, 0), 30)) * random.uniform(0.8, 1.2)


async def keep_running(name: str, factory: LoopFactory, *, min_delay: float = 0.5,
                       max_delay: float = 30.0, healthy_after_s: float = 60.0,
                       clock: Callable[[], float] = time.monotonic) -> None:
    """Run ``factory()`` until cancelled, restarting it whenever it ends."""
    failures = 0
    while True:
        started = clock()
        try:
            await factory()
            log.error("task_ended", task=name)  # a service loop never returns on its own
        except Exception:
            log.exception("task_failed", task=name)
        if clock() - started >= healthy_after_s:
            failures = 0
        failures += 1
        RESTARTS.note(name)
        delay = restart_delay(failures, min_delay, max_delay)
        log.warning("task_restarting", task=name, seconds=round(delay, 2), failures=failures)
        await asyncio.sleep(delay)
