"""A file-descriptor budget the service keeps itself, so routing never runs out of sockets.

Every accepted connection costs a descriptor.  At the process limit (``RLIMIT_NOFILE``,
1,024 by default under systemd) ``accept()`` fails for everyone: 1,000 idle HTTP connections
used to leave FastAGI sessions unanswered.  So connections are admitted against a budget
before the limit is reached:

* ``reserve`` descriptors are never handed to connections (PostgreSQL pools, AMI sessions,
  the spool, logs, the event loop's own);
* HTTP may hold at most ``http_share`` of the rest, and at most ``per_source`` connections
  from one address;
* FastAGI may use everything HTTP does not hold: the calls come first.

A refused connection is closed at once (a browser retries; Asterisk's AGI() returns at once
and the dialplan's fallback queues the call).  Counting is exact and cheap (counters kept by
the servers), not a scan of ``/proc/self/fd``.
"""

from __future__ import annotations

import resource
from collections import Counter
from dataclasses import dataclass, field


def nofile_limit() -> int:
    """The soft RLIMIT_NOFILE of this process (what ``accept()`` runs into)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


@dataclass
class DescriptorBudget:
    limit: int = field(default_factory=nofile_limit)
    reserve: int = 128
    http_share: float = 0.5
    per_source: int = 64
    http_open: int = 0
    agi_open: int = 0
    http_refused: int = 0
    agi_refused: int = 0
    _by_source: Counter[str] = field(default_factory=Counter)

    @property
    def usable(self) -> int:
        return max(8, self.limit - self.reserve)

    @property
    def http_max(self) -> int:
        return max(4, int(self.usable * self.http_share))

    def admit_http(self, source: str, trusted: bool = False) -> bool:
        """Count an HTTP connection in (True) or refuse it.  ``trusted`` sources (a
        reverse proxy listed in ``trust_proxy``) carry many clients: no per-source cap."""
        if self.http_open >= self.http_max or self.http_open + self.agi_open >= self.usable or (
                not trusted and self._by_source[source] >= self.per_source):
            self.http_refused += 1
            return False
        self.http_open += 1
        self._by_source[source] += 1
        return True

    def release_http(self, source: str) -> None:
        self.http_open -= 1
        self._by_source[source] -= 1
        if self._by_source[source] <= 0:
            del self._by_source[source]

    def admit_agi(self) -> bool:
        if self.http_open + self.agi_open >= self.usable:
            self.agi_refused += 1
            return False
        self.agi_open += 1
        return True

    def release_agi(self) -> None:
        self.agi_open -= 1
