"""Operators' queue states for the wallboard, from AMI (a tap of the ledger pipeline).

``QueueMemberAdded``/``QueueMemberStatus``/``QueueMemberPause``/``QueueMemberRemoved`` give
each member's device state and pause; they are kept in memory and written to
``operator_states`` once a second when they changed, so every instance's wallboard sees them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import asyncpg

from service.ledger.machine import agent_id
from service.logs import get_logger
from service.store.db import TRANSIENT_ERRORS

log = get_logger(__name__)

# app_queue's member status numbers (AST_DEVICE_*).
STATUS = {"0": "unknown", "1": "not_in_use", "2": "in_use", "3": "busy", "4": "invalid",
          "5": "unavailable", "6": "ringing", "7": "ring_in_use", "8": "on_hold"}
_EVENTS = ("QueueMemberAdded", "QueueMemberStatus", "QueueMemberPause", "QueueMemberRemoved")


def _event_time(event: Mapping[str, str]) -> float:
    """The event's own time (``Timestamp``, with ``timestampevents``), else now."""
    try:
        return float(event["Timestamp"])
    except (KeyError, ValueError):
        return time.time()


class OperatorStates:
    def __init__(self) -> None:
        self.states: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.removed: set[tuple[str, str, str]] = set()
        self.dirty: set[tuple[str, str, str]] = set()

    def __call__(self, pbx_id: str, events: list[Mapping[str, str]]) -> None:
        """The pipeline tap: keep the members' states."""
        for event in events:
            name = event.get("Event")
            if name not in _EVENTS:
                continue
            key = (pbx_id, event.get("Queue", ""), event.get("Interface", ""))
            if name == "QueueMemberRemoved":
                self.states.pop(key, None)
                self.removed.add(key)
                self.dirty.discard(key)
                continue
            state = self.states.setdefault(key, {})
            state["operator"] = agent_id(key[2]) or key[2]
            state["member_name"] = event.get("MemberName", state.get("member_name", ""))
            status = STATUS.get(event.get("Status", ""), event.get("Status")) or \
                state.get("status")
            paused = event["Paused"] == "1" if "Paused" in event else state.get("paused")
            if (status, paused) != (state.get("status"), state.get("paused")):
                # The wallboard's "since" timer: when the state last changed, not when the
                # last event (an unchanged status repeated) was seen.
                state["since"] = _event_time(event)
            if status:
                state["status"] = status
            if "Paused" in event:
                state["paused"] = paused
                if not paused:
                    state["paused_reason"] = ""
                elif "PausedReason" in event:  # a status event repeats Paused, not why
                    state["paused_reason"] = event["PausedReason"]
            self.removed.discard(key)
            self.dirty.add(key)

    async def flush(self, conn: asyncpg.Connection) -> None:
        dirty, removed = list(self.dirty), list(self.removed)
        async with conn.transaction():
            for key in removed:
                await conn.execute("DELETE FROM operator_states WHERE pbx_id = $1 AND "
                                   "queue = $2 AND interface = $3", *key)
            for key in dirty:
                state = self.states.get(key)
                if state is None:
                    continue
                await conn.execute(
                    """INSERT INTO operator_states (pbx_id, queue, interface, operator,
                           member_name, status, paused, paused_reason, status_since,
                           updated_at)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
                               coalesce(to_timestamp($9::float8), now()), now())
                       ON CONFLICT (pbx_id, queue, interface) DO UPDATE SET
                           operator = EXCLUDED.operator, member_name = EXCLUDED.member_name,
                           status = EXCLUDED.status, paused = EXCLUDED.paused,
                           paused_reason = EXCLUDED.paused_reason,
                           status_since = EXCLUDED.status_since, updated_at = now()""",
                    *key, state["operator"], state.get("member_name", ""),
                    state.get("status", "unknown"), state.get("paused", False),
                    state.get("paused_reason", ""), state.get("since"))
        # Only now: a failed write keeps them for the next flush.
        self.dirty.difference_update(dirty)
        self.removed.difference_update(removed)

    async def run(self, pool: asyncpg.Pool, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            if not (self.dirty or self.removed):
                continue
            try:
                async with pool.acquire(timeout=5) as conn:
                    await self.flush(conn)
            except TRANSIENT_ERRORS as exc:
                log.warning("operator_states_not_saved", error=str(exc) or type(exc).__name__)
