"""What the FastAGI routes share: routing data in memory, the repeat lookup, the clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from service.callbacks.escalation import FeatureCodeEscalation
from service.clock import utc_now
from service.routing.cache import RoutingCache
from service.routing.repeat import NoHistory, RepeatLookup

if TYPE_CHECKING:
    from agi.outbound_guard import OutboundCheck


@dataclass
class AgiContext:
    routing: RoutingCache
    repeat_lookup: RepeatLookup = field(default_factory=NoHistory)
    # The repeat lookup may not hold a call up: past this, route normally and flag it.
    repeat_timeout_s: float = 0.15
    clock: Callable[[], datetime] = utc_now
    # Records an escalation requested by feature code (the escalate route).
    record_escalation: Callable[[FeatureCodeEscalation], Awaitable[None]] | None = None
    # Records a listen/whisper/barge by feature code: (supervisor, operator, mode).
    record_spy: Callable[[str, str, str], Awaitable[None]] | None = None
    # Decides and records a handset dial (the outbound_guard route); None refuses every dial.
    check_outbound: OutboundCheck | None = None
