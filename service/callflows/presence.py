"""Operator presence: log in, log out, pause with a reason; after-call work; dispositions.

Each change is made on the PBX over AMI (QueueAdd / QueueRemove / QueuePause with its
Reason, which app_queue keeps as the member's PausedReason) and kept as a span of
``presence_spans`` (state, reason, from, to), so per-operator figures are sums of spans
(:func:`time_in_states`).  A login remembers its queues, so the next login by feature code
(``*41``) needs none.  After-call work is app_queue's ``wrapuptime`` per client queue
(:func:`render_wrapup`); one disposition code per answered call (the client's list in the
clients file) is kept in ``call_dispositions``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.ami.adapter import AmiClient, AmiError
from service.clients.model import Directory
from service.config import PbxConfig

ACTIONS = ("login", "logout", "pause", "unpause")
PAUSE_REASONS = ("break", "after_call_work", "training", "meeting", "lunch", "other")
# The feature code's digit after *42: the reason.
REASON_KEYS = {"1": "break", "2": "after_call_work", "3": "training", "4": "meeting",
               "5": "lunch", "9": "other"}
_QUEUE = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


class PresenceError(Exception):
    """The change cannot be made (the message says why)."""


@dataclass(frozen=True)
class Span:
    state: str
    reason: str | None
    started_at: datetime
    ended_at: datetime | None


def time_in_states(spans: Iterable[Span], start: datetime, end: datetime
                   ) -> dict[str, float]:
    """Seconds in each state (``paused:<reason>`` for pauses) between ``start`` and ``end``;
    an open span runs to ``end``.

    >>> from datetime import UTC, datetime as d
    >>> t = lambda h, m: d(2026, 1, 5, h, m, tzinfo=UTC)
    >>> time_in_states([Span("logged_in", None, t(9, 0), t(12, 0)),
    ...                 Span("paused", "lunch", t(12, 0), t(13, 0)),
    ...                 Span("logged_in", None, t(13, 0), None)], t(10, 0), t(14, 0))
    {'logged_in': 10800.0, 'paused:lunch': 3600.0}
    """
    totals: dict[str, float] = {}
    for span in spans:
        first = max(span.started_at, start)
        last = min(span.ended_at or end, end)
        if last <= first:
            continue
        key = span.state if span.state != "paused" else f"paused:{span.reason or 'other'}"
        totals[key] = totals.get(key, 0.0) + (last - first).total_seconds()
    return totals


# The file `orikaeshi dialplan wrapup` writes, #include'd at the end of queues.conf.
WRAPUP_INCLUDE = "orikaeshi-wrapup.conf"


def wrapup_times(directory: Directory) -> dict[str, int]:
    """Each client queue's after-call work in seconds (``wrapup`` in the clients file; the
    client's queue and skill queue).  A queue shared by clients takes the first client's
    (by code) that sets one; queues of clients without a wrap-up are absent.

    >>> from service.clients.model import Client, Directory
    >>> wrapup_times(Directory({"A": Client("A", "A", (), "q-a"),
    ...                         "K": Client("K", "K", (), "q-k", wrapup_s=15)}, {}))
    {'q-k': 15}
    """
    times: dict[str, int] = {}
    for client in sorted(directory.clients.values(), key=lambda c: c.code):
        for queue in (client.queue, client.skill_queue):
            if queue and client.wrapup_s and queue not in times:
                times[queue] = client.wrapup_s
    return times


def render_wrapup(directory: Directory) -> str:
    """queues.conf additions giving each client's queues its after-call work time
    (``wrapup`` in the clients file): ``#include orikaeshi-wrapup.conf`` at the end of
    queues.conf; ``[q](+)`` adds to the queue's own section.

    >>> from service.clients.model import Client, Directory
    >>> print(render_wrapup(Directory({"K": Client("K", "K", (), "q-k", wrapup_s=15)}, {})))
    ; after-call work per client (orikaeshi clients file: wrapup)
    [q-k](+)
    wrapuptime = 15
    <BLANKLINE>
    """
    out = ["; after-call work per client (orikaeshi clients file: wrapup)"]
    for queue, seconds in wrapup_times(directory).items():
        out += [f"[{queue}](+)", f"wrapuptime = {seconds}"]
    return "\n".join(out) + "\n"


async def _open_span(conn: asyncpg.Connection, pbx_id: str, operator: str
                     ) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM presence_spans WHERE pbx_id = $1 AND operator = $2 "
        "AND ended_at IS NULL ORDER BY id DESC LIMIT 1", pbx_id, operator)
    return row


async def _last_queues(conn: asyncpg.Connection, pbx_id: str, operator: str) -> list[str]:
    queues = await conn.fetchval(
        "SELECT queues FROM presence_spans WHERE pbx_id = $1 AND operator = $2 "
        "AND cardinality(queues) > 0 ORDER BY id DESC LIMIT 1", pbx_id, operator)
    return list(queues or [])


async def _ok(ami: AmiClient, action: dict[str, str]) -> None:
    try:
        answer = await ami.send_action(action)
    except AmiError as exc:
        raise PresenceError(f"{action['Action']}: the PBX did not answer ({exc})") from exc
    reply = answer[0] if isinstance(answer, list) else answer
    if getattr(reply, "response", "") != "Success":
        message = getattr(reply, "message", "")
        # Adding a member already there is no failure: the state is what was asked.
        if "Already there" not in message and "Not there" not in message:
            raise PresenceError(f"{action['Action']}: {message or 'refused'}")


async def change(ami: AmiClient, conn: asyncpg.Connection, pbx: PbxConfig, *, operator: str,
                 action: str, reason: str | None, queues: list[str] | None, via: str,
                 at: datetime) -> dict[str, Any]:
    """Log in / log out / pause / unpause ``operator`` on the PBX, then keep the span."""
    if action not in ACTIONS:
        raise PresenceError(f"action must be one of {', '.join(ACTIONS)}")
    if action == "pause" and reason not in PAUSE_REASONS:
        raise PresenceError(f"a pause needs a reason: one of {', '.join(PAUSE_REASONS)}")
    interface = pbx.phone_channel.format(ext=operator)
    current = await _open_span(conn, pbx.pbx_id, operator)
    logged_in_to = list(current["queues"]) if current is not None and \
        current["state"] != "logged_out" else []
    if action == "login":
        wanted = queues or await _last_queues(conn, pbx.pbx_id, operator)
        if not wanted or not all(_QUEUE.match(q) for q in wanted):
            raise PresenceError("login needs the queues (none remembered for this operator)")
        for queue in wanted:
            await _ok(ami, {"Action": "QueueAdd", "Queue": queue, "Interface": interface,
                            "MemberName": operator, "Paused": "false"})
        state, new_queues = "logged_in", wanted
    elif action == "logout":
        for queue in logged_in_to:
            await _ok(ami, {"Action": "QueueRemove", "Queue": queue, "Interface": interface})
        state, new_queues = "logged_out", logged_in_to
    else:
        if not logged_in_to:
            raise PresenceError(f"operator {operator} is not logged in")
        pause = action == "pause"
        request = {"Action": "QueuePause", "Interface": interface,
                   "Paused": "true" if pause else "false"}
        if pause:
            request["Reason"] = str(reason)
        await _ok(ami, request)
        state, new_queues = ("paused" if pause else "logged_in"), logged_in_to
    async with conn.transaction():
        await conn.execute("UPDATE presence_spans SET ended_at = $3 WHERE pbx_id = $1 "
                           "AND operator = $2 AND ended_at IS NULL", pbx.pbx_id, operator, at)
        span_id = await conn.fetchval(
            """INSERT INTO presence_spans (pbx_id, operator, state, reason, queues, via,
                   started_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
            pbx.pbx_id, operator, state, reason if state == "paused" else None, new_queues,
            via, at)
    return {"id": span_id, "operator": operator, "state": state,
            "reason": reason if state == "paused" else None, "queues": new_queues,
            "started_at": at}


async def current_states(conn: asyncpg.Connection, operator: str | None = None
                         ) -> list[dict[str, Any]]:
    """Every operator's open span (``operator``: only that one's)."""
    rows = await conn.fetch(
        "SELECT pbx_id, operator, state, reason, queues, via, started_at FROM presence_spans "
        "WHERE ended_at IS NULL AND ($1::text IS NULL OR operator = $1) ORDER BY operator",
        operator)
    return [dict(r) for r in rows]


async def report(conn: asyncpg.Connection, start: datetime, end: datetime
                 ) -> dict[str, dict[str, float]]:
    """Per operator: seconds in each state between ``start`` and ``end``."""
    rows = await conn.fetch(
        "SELECT operator, state, reason, started_at, ended_at FROM presence_spans "
        "WHERE started_at < $2 AND (ended_at IS NULL OR ended_at > $1) ORDER BY id",
        start, end)
    by_operator: dict[str, list[Span]] = {}
    for row in rows:
        by_operator.setdefault(row["operator"], []).append(
            Span(row["state"], row["reason"], row["started_at"], row["ended_at"]))
    return {op: time_in_states(spans, start, end) for op, spans in sorted(by_operator.items())}


async def set_disposition(conn: asyncpg.Connection, directory: Directory | None, *,
                          pbx_id: str, linkedid: str, code: str, set_by: str,
                          at: datetime) -> dict[str, Any]:
    """One disposition code for an answered call, from its client's list."""
    call = await conn.fetchrow("SELECT client, answered_at, answered_by FROM calls "
                               "WHERE pbx_id = $1 AND linkedid = $2", pbx_id, linkedid)
    if call is None:
        raise LookupError(f"no call {linkedid}")
    if call["answered_at"] is None:
        raise PresenceError("only an answered call takes a disposition")
    client = directory.clients.get(call["client"] or "") if directory else None
    allowed = client.dispositions if client is not None else ()
    if code not in allowed:
        raise PresenceError(f"{code!r} is not a disposition of client {call['client']} "
                            f"(its list: {', '.join(allowed) or 'none'})")
    await conn.execute(
        """INSERT INTO call_dispositions (pbx_id, linkedid, client, code, operator, set_by,
               set_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (pbx_id, linkedid) DO UPDATE SET code = EXCLUDED.code,
               set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at""",
        pbx_id, linkedid, call["client"], code, call["answered_by"], set_by, at)
    return {"linkedid": linkedid, "client": call["client"], "code": code}
