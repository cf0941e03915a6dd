"""AMI adapter -> ledger machine -> writer, for one PBX; and the resync after a (re)connect."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from agi import variables as v
from service.ledger.machine import LedgerMachine
from service.ledger.snapshot import channels_from, queue_entries_from
from service.ledger.validate import plausible_epoch
from service.ledger.writer import LedgerWriter
from service.logs import get_logger
from service.logthrottle import Throttle

log = get_logger(__name__)

CallListener = Callable[[list[Any]], None]
# (channel name, variable) -> its value on the PBX, or None when it cannot be had.
VariableGetter = Callable[[str, str], Awaitable[str | None]]


def event_time(event: Mapping[str, str], received: float) -> float:
    """The event's own ``Timestamp`` (``timestampevents = yes``), else when it was read."""
    stamp = stamped_time(event)
    return received if stamp is None else stamp


def stamped_time(event: Mapping[str, str]) -> float | None:
    """The event's own ``Timestamp`` as epoch seconds; None without a plausible one.

    Only a plausible time counts (finite, 2000..2100): ``nan`` or ``1e12`` would stop the
    writer's conversion to ``timestamptz`` (the edge, :mod:`service.ledger.validate`, has
    usually removed such a header already)."""
    return plausible_epoch(event.get("Timestamp"))


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
        # Asks the PBX for a channel variable (AMI Getvar): set by the pipeline.
        self.get_variable: VariableGetter | None = None
        self.getvar_limit = 200
        self.getvar_timeout_s = 2.0
        self.untimed_events = 0  # events without a Timestamp: Asterisk's figures decide

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
                stamp = stamped_time(event)
                if stamp is None:
                    self.untimed_events += 1
                feed(event, received if stamp is None else stamp, stamp is not None)
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

    def on_snapshot(self, action: str, messages: list[Any]) -> Awaitable[None] | None:
        """Apply Asterisk's picture of what is alive, at its place in the event order.

        Calls adopted from the channel list carry none of their variables; when the
        pipeline can ask the PBX, the answer is a coroutine that fetches each adopted
        caller's ``ROUTE_SOURCE`` before the events after the list are applied.
        """
        last = messages[-1] if messages else {}
        now = event_time(last, self.clock())
        if action == "CoreShowChannels":
            channels = channels_from(messages)
            adopted = self.machine.apply_channels(channels, now)
            log.info("ledger_resync_channels", pbx=self.machine.pbx_id, channels=len(channels),
                     live_calls=len(self.machine.calls), adopted=len(adopted))
            if adopted and self.get_variable is not None:
                self._publish()
                return self._fetch_route_sources(adopted, now)
        elif action == "QueueStatus":
            entries = queue_entries_from(messages)
            self.machine.apply_queue_entries(entries, now)
            log.info("ledger_resync_queues", pbx=self.machine.pbx_id, waiting=len(entries))
        self._publish()
        return None

    async def _fetch_route_sources(self, adopted: list[tuple[str, str]], now: float) -> None:
        """``Getvar ROUTE_SOURCE`` on each adopted caller channel (bounded in number and
        time): a call the dialplan's fallback routed while the service was away keeps its
        ``fallback_routed`` flag.  A channel that cannot be asked is logged and skipped
        (its Cdr ``UserField`` still tells, at its end)."""
        getter = self.get_variable
        assert getter is not None
        if len(adopted) > self.getvar_limit:
            log.warning("ledger_getvar_limited", pbx=self.machine.pbx_id, adopted=len(adopted),
                        asked=self.getvar_limit)

        async def one(channel: str) -> str | None:
            try:
                async with asyncio.timeout(self.getvar_timeout_s):
                    return await getter(channel, v.ROUTE_SOURCE)
            except TimeoutError:
                log.warning("ledger_getvar_timeout", pbx=self.machine.pbx_id)
                return None

        chosen = adopted[:self.getvar_limit]
        values = await asyncio.gather(*(one(channel) for _, channel in chosen))
        for (linkedid, _), value in zip(chosen, values, strict=True):
            if value is not None:
                self.machine.apply_variable(linkedid, v.ROUTE_SOURCE, value, now)
        self._publish()


