"""Rate-limited warnings: a flood of bad input must not become a flood of log lines.

A peer sending 50,000 junk AMI messages used to produce 100,000 warning lines.  A
:class:`Throttle` lets ``burst`` lines of one kind through per ``interval`` and counts the
rest; the next line that is let through says how many were held back (``suppressed``), so
the log still tells how big the flood was.  The counters of what was refused are kept by the
callers (and exported as metrics), not here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Window:
    started: float
    lines: int = 0
    suppressed: int = 0


class Throttle:
    def __init__(self, interval: float = 60.0, burst: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.burst = burst
        self.clock = clock
        self._windows: dict[str, _Window] = {}

    def allow(self, key: str) -> int | None:
        """None: hold this line back.  Otherwise log it, with the returned number of lines
        held back since the last one let through.

        >>> t = Throttle(interval=60, burst=2, clock=lambda: 0.0)
        >>> [t.allow("bad") for _ in range(4)]
        [0, 0, None, None]
        """
        now = self.clock()
        window = self._windows.get(key)
        if window is None or now - window.started >= self.interval:
            held = window.suppressed if window else 0
            self._windows[key] = _Window(now, 1)
            if len(self._windows) > 1000:  # keys are a few fixed names; never grow unbounded
                self._windows = {key: self._windows[key]}
            return held
        if window.lines < self.burst:
            window.lines += 1
            held, window.suppressed = window.suppressed, 0
            return held
        window.suppressed += 1
        return None
