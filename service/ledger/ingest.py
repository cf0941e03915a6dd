"""AMI adapter -> ledger machine -> writer, for one PBX; and the resync after a (re)connect."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from service.ledger.machine import LedgerMachine
from service.ledger.snapshot import channels_from, queue_entries_from
from service.ledger.validate import plausible_epoch
from service.ledger.writer import LedgerWriter
from service.logs import get_logger
from service.logthrottle import Throttle

log = get_logger(__name__)

CallListener = Callable[[list[Any]], None]


def event_time(event: Mapping[str, str], received: float) -> float:
    """The event's own ``Timestamp`` (``timestampevents = yes``), else when it was read.

    Only a plausible time counts (finite, 2000..2100): ``nan`` or ``1e12`` would stop the
    writer's conversion to ``timestamptz`` (the edge, :mod:`service.ledger.validate`, has
    usually removed such a header already)."""
    stamp = plausible_epoch(event.get("Timestamp"))
    return received if stamp is None else stamp


class LedgerIngest:
    def __init__(self, machine: LedgerMachine, writer: LedgerWriter,
                 clock: Callable[[], float] = time.time) -> None:
        self.machine = machine
        self.writer = writer
        self.clock = clock
        self.bad_events = 0
        self.lag_s = 0.0
        self.throttle = Throttle()
        self.listeners: list[CallListener] = []

    def on_events(self, events: list[Any]) -> None:
        received = self.clock()
        feed = self.machine.feed
        if events:
            # How far behind the PBX the ledger is: the newest event's own time against the
            # moment it is applied (exported as a metric; 0 without Timestamp headers).
            newest = plausible_epoch(events[-1].get("Timestamp"))
            self.lag_s = max(0.0, received - newest) if newest is not None else 0.0
        for event in events:
            try:
                feed(event, event_time(event, received))
            except Exception:
                # One odd event must not cost the rest of the batch.
                self.bad_events += 1
                held = self.throttle.allow("ledger_event_failed")
                if held is not None:
                    log.exception("ledger_event_failed", pbx=self.machine.pbx_id,
                                  ami_event=event.get("Event"), uniqueid=event.get("Uniqueid"),
                                  linkedid=event.get("Linkedid"), suppressed=held)
        self._publish()

    def _publish(self) -> None:
        dirty = self.machine.take_dirty()
        if not dirty:
            return
        self.writer.submit(dirty)
        for listener in self.listeners:
            listener(dirty)

    # The AMI actions whose answers resynchronise the ledger after every (re)connect.
    SNAPSHOT_ACTIONS = ("CoreShowChannels", "QueueStatus")

    def on_snapshot(self, action: str, messages: list[Any]) -> None:
        """Apply Asterisk's picture of what is alive, at its place in the event order."""
        last = messages[-1] if messages else {}
        now = event_time(last, self.clock())
        if action == "CoreShowChannels":
            channels = channels_from(messages)
            self.machine.apply_channels(channels, now)
            log.info("ledger_resync_channels", pbx=self.machine.pbx_id, channels=len(channels),
                     live_calls=len(self.machine.calls))
        elif action == "QueueStatus":
            entries = queue_entries_from(messages)
            self.machine.apply_queue_entries(entries, now)
            log.info("ledger_resync_queues", pbx=self.machine.pbx_id, waiting=len(entries))
        self._publish()


