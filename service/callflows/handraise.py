"""手上げ with hold: the operator puts the caller on hold and a supervisor comes to help.

1. **hold** (feature code ``*8`` through the ``handraise`` AGI, or ``POST /api/handraise``):
   a ``handraise`` row is opened and the caller is moved to ``[orikaeshi-handraise-hold]``
   (music on hold; the queue's bridge with the operator ends).  From there the ``handraise``
   AGI (step ``ring``) rings the operator's phone and every supervisor's phone (AMI
   Originate) into the consult room, a ConfBridge of their own: the operator hears
   "お客様を保留にしました", the supervisor "手上げです".  A wallboard alert is raised.
   Why the operator's phone is rung again rather than moved: a channel cannot be moved out
   of a bridge from inside its own feature code (Asterisk hangs it up when the feature's
   Gosub returns), and the operator's headset answers at once (auto-answer).
2. **take over** or **hand back** (``POST /api/handraise/{id}/take_over|hand_back``): the
   caller is redirected into the room, and the one who leaves (the operator on take over,
   the supervisor on hand back) is hung up.  Hold time (held .. decision) and help time
   (supervisor joined .. decision) go to the handraise row and to the call in the ledger
   (``calls.hold_s``, ``calls.help_s``, summed over the call's handraises).
3. **listen** / **whisper** while the caller is on hold (``POST /api/handraise/{id}/listen``
   or ``/whisper``): listen mutes the helping supervisor in the room (AMI ConfbridgeMute), or,
   when no supervisor has joined yet, rings the acting supervisor's own phone into the room
   muted (``[orikaeshi-handraise-listen]``: a ConfBridge user profile with ``startmuted``, set
   on the channel with ``CONFBRIDGE(user,startmuted)``); whisper unmutes the supervisor
   (ConfbridgeUnmute), who then talks to the operator only: the caller is not in the room but
   on music on hold.  A take over unmutes a listening supervisor before the caller joins.
4. After a hand back the supervisor may listen or whisper on the operator as usual
   (``POST /api/spy``, ``*221``/``*222``): audited in ``spy_audit``.

Every step is in ``handraise_audit`` (who, what, when).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.ami.adapter import AmiClient, AmiError
from service.callflows.alerts import raise_alert
from service.config import PbxConfig
from service.ledger.notify import CHANNEL
from service.logs import get_logger

log = get_logger(__name__)

ACTIONS = ("take_over", "hand_back")
# What the helping supervisor does while the caller is on hold (muted or talking).
SUPERVISE = ("listen", "whisper")
HOLD_CONTEXT = "orikaeshi-handraise-hold"
ROOM_CONTEXT = "orikaeshi-handraise-room"
SUPERVISOR_CONTEXT = "orikaeshi-handraise-supervisor"
JOIN_CONTEXT = "orikaeshi-handraise-join"
LISTEN_CONTEXT = "orikaeshi-handraise-listen"


class HandraiseError(Exception):
    """The step cannot be done (no such handraise, already decided, AMI refused)."""


@dataclass(frozen=True)
class HoldRequest:
    pbx_id: str
    linkedid: str | None
    client: str | None
    operator: str
    caller_channel: str
    via: str  # feature_code | api
    requested_by: str


def hold_times(held_at: datetime, helped_at: datetime | None, decided_at: datetime
               ) -> tuple[float, float | None]:
    """(hold seconds, help seconds) of a handraise decided at ``decided_at``: the caller was
    on hold from ``held_at``; the supervisor helped from ``helped_at`` (None: never came).

    >>> from datetime import UTC, datetime as d
    >>> hold_times(d(2026, 1, 1, 10, 0, 0, tzinfo=UTC), d(2026, 1, 1, 10, 0, 20, tzinfo=UTC),
    ...            d(2026, 1, 1, 10, 1, 5, tzinfo=UTC))
    (65.0, 45.0)
    """
    hold = max(0.0, (decided_at - held_at).total_seconds())
    help_ = None if helped_at is None else max(0.0, (decided_at - helped_at).total_seconds())
    return hold, help_


async def _audit(conn: asyncpg.Connection, handraise_id: int, actor: str, action: str,
                 at: datetime, detail: str = "") -> None:
    await conn.execute("INSERT INTO handraise_audit (handraise_id, actor, action, at, detail) "
                       "VALUES ($1, $2, $3, $4, $5)", handraise_id, actor, action, at, detail)


def handraise_state(ended: bool, resolution: str | None, helped_by: str | None) -> str:
    """Where a handraise stands, as the operator's page says it: ``held`` (waiting for a
    supervisor), ``joined`` (a supervisor is in the room), or how it ended (``taken_over``,
    ``handed_back``, ``caller_hung_up``, ``cancelled``).

    >>> handraise_state(False, None, None), handraise_state(False, None, "sup")
    ('held', 'joined')
    >>> handraise_state(True, "handed_back", "sup")
    'handed_back'
    """
    if ended:
        return resolution or "cancelled"
    return "joined" if helped_by else "held"


async def _tell(conn: asyncpg.Connection, handraise_id: int, at: datetime) -> None:
    """Tell the pages (live stream, at commit) where the handraise stands now.  The event
    carries no client: client users' streams are filtered by client, and a 手上げ is the
    answering company's business, not the client's."""
    row = await conn.fetchrow(
        "SELECT id, pbx_id, linkedid, operator, held_at, helped_by, ended_at, resolution, "
        "hold_s, help_s FROM handraises WHERE id = $1", handraise_id)
    if row is None:
        return
    message = {"kind": "handraise", "id": row["id"], "pbx": row["pbx_id"],
               "linkedid": row["linkedid"], "operator": row["operator"],
               "state": handraise_state(row["ended_at"] is not None, row["resolution"],
                                        row["helped_by"]),
               "helped_by": row["helped_by"], "held_at": row["held_at"].isoformat(),
               "hold_s": row["hold_s"], "help_s": row["help_s"], "at": at.isoformat()}
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL,
                       json.dumps(message, ensure_ascii=False))


async def open_hold(conn: asyncpg.Connection, request: HoldRequest, at: datetime) -> int:
    """Record the handraise (the caller is about to be moved to hold); returns its id."""
    async with conn.transaction():
        handraise_id: int = await conn.fetchval(
            """INSERT INTO handraises (pbx_id, linkedid, client, operator, caller_channel,
                   via, held_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
            request.pbx_id, request.linkedid, request.client, request.operator,
            request.caller_channel, request.via, at)
        await _audit(conn, handraise_id, request.requested_by, "hold", at, request.via)
        await raise_alert(conn, kind="handraise", pbx_id=request.pbx_id,
                          linkedid=request.linkedid, client=request.client, at=at,
                          detail={"handraise": handraise_id, "operator": request.operator,
                                  "via": request.via})
        await _tell(conn, handraise_id, at)
    return handraise_id


async def hold_by_api(ami: AmiClient, conn: asyncpg.Connection, request: HoldRequest,
                      at: datetime) -> int:
    """The page's 手上げ button: record, then move the caller to hold (AMI Redirect)."""
    handraise_id = await open_hold(conn, request, at)
    try:
        answer = await ami.send_action({
            "Action": "Redirect", "Channel": request.caller_channel,
            "Context": HOLD_CONTEXT, "Exten": f"hr{handraise_id}", "Priority": "1"})
        detail = getattr(answer, "message", "")
        moved = getattr(answer, "response", "") == "Success"
    except AmiError as exc:
        detail, moved = str(exc), False
    if not moved:
        async with conn.transaction():
            await conn.execute("UPDATE handraises SET ended_at = $2, resolution = 'cancelled' "
                               "WHERE id = $1", handraise_id, at)
            await _audit(conn, handraise_id, "service", "hold_failed", at, detail)
            await _tell(conn, handraise_id, at)
        raise HandraiseError(f"the PBX refused the hold: {detail or 'no answer'}")
    return handraise_id


async def ring_helpers(ami: AmiClient, conn: asyncpg.Connection, pbx: PbxConfig,
                       handraise_id: int, at: datetime) -> list[str]:
    """Ring the operator's phone and every supervisor's phone into the consult room (the
    caller is on hold by now); returns the extensions rung."""
    row = await conn.fetchrow("SELECT operator, ended_at FROM handraises WHERE id = $1",
                              handraise_id)
    if row is None or row["ended_at"] is not None:
        raise HandraiseError(f"no open handraise {handraise_id}")
    calls = [(row["operator"], ROOM_CONTEXT)] + [
        (phone, SUPERVISOR_CONTEXT) for phone in await supervisor_phones(conn)
        if phone != row["operator"]]
    # Audited before ringing: a phone may answer (and join) before the last one is rung.
    await _audit(conn, handraise_id, "service", "alert", at,
                 "ringing " + ", ".join(phone for phone, _ in calls))
    rung = []
    for phone, context in calls:
        try:
            answer = await ami.send_action({
                "Action": "Originate", "Channel": pbx.phone_channel.format(ext=phone),
                "Context": context, "Exten": f"hr{handraise_id}", "Priority": "1",
                "CallerID": f'"手上げ {row["operator"]}" <{row["operator"]}>',
                "Timeout": "30000", "Async": "true"})
            if getattr(answer, "response", "") == "Success":
                rung.append(phone)
        except AmiError as exc:
            log.warning("handraise_ring_failed", phone=phone, error=str(exc))
    return rung


async def joined(conn: asyncpg.Connection, handraise_id: int, who: str, channel: str,
                 at: datetime, mode: str = "") -> str:
    """Someone answered the ring and is in the room: the operator (their phone's channel is
    kept, for a take over) or a supervisor (the first one is the helper; help time starts
    now, listening or not).  ``mode`` "listen": a supervisor who joins muted.  Returns the
    role."""
    row = await conn.fetchrow("SELECT operator FROM handraises WHERE id = $1", handraise_id)
    if row is None:
        raise HandraiseError(f"no handraise {handraise_id}")
    if who == row["operator"]:
        await conn.execute("UPDATE handraises SET operator_channel = $2 WHERE id = $1",
                           handraise_id, channel)
        role = "operator"
    else:
        await conn.execute(
            "UPDATE handraises SET helped_at = $2, helped_by = $3, supervisor_channel = $4 "
            "WHERE id = $1 AND helped_at IS NULL AND ended_at IS NULL",
            handraise_id, at, who, channel)
        role = "supervisor"
    listening = " listening" if mode == "listen" and role == "supervisor" else ""
    async with conn.transaction():
        await _audit(conn, handraise_id, who, "join", at, f"{role}{listening} {channel}")
        await _tell(conn, handraise_id, at)
    return role


def room_of(handraise_id: int) -> str:
    """The consult room's ConfBridge name (dialplan/handraise.conf: orikaeshi-hr<id>)."""
    return f"orikaeshi-hr{handraise_id}"


async def supervisor_mode(conn: asyncpg.Connection, handraise_id: int) -> str | None:
    """The helping supervisor's last listen / whisper step (None: neither, so talking)."""
    mode: str | None = await conn.fetchval(
        "SELECT action FROM handraise_audit WHERE handraise_id = $1 "
        "AND action IN ('listen', 'whisper') ORDER BY id DESC LIMIT 1", handraise_id)
    return mode


async def _answer(ami: AmiClient, action: dict[str, str]) -> tuple[bool, str]:
    """Send an AMI action: (accepted, the PBX's message)."""
    try:
        answer = await ami.send_action(action)
    except AmiError as exc:
        return False, str(exc)
    return getattr(answer, "response", "") == "Success", getattr(answer, "message", "")


async def _open(conn: asyncpg.Connection, handraise_id: int, action: str,
                allowed: tuple[str, ...]) -> asyncpg.Record:
    """The handraise a decision or a listen / whisper is about: it exists and is open."""
    if action not in allowed:
        raise HandraiseError(f"action must be one of {', '.join(allowed)}")
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM handraises WHERE id = $1", handraise_id)
    if row is None:
        raise HandraiseError(f"no handraise {handraise_id}")
    if row["ended_at"] is not None:
        raise HandraiseError(f"handraise {handraise_id} already ended ({row['resolution']})")
    return row


async def supervise(ami: AmiClient, conn: asyncpg.Connection, pbx: PbxConfig,
                    handraise_id: int, action: str, actor: str, phone: str | None,
                    at: datetime) -> dict[str, Any]:
    """Listen (muted) or whisper (talk to the operator; the caller stays on hold music).

    With a supervisor in the room (the helper), listen mutes and whisper unmutes that
    supervisor's channel in the conference.  With none yet, listen rings ``phone`` (the
    acting user's extension) into the room muted, and that phone becomes the helper when
    it answers (the ``joined`` step); whisper needs someone in the room.
    """
    row = await _open(conn, handraise_id, action, SUPERVISE)
    channel = row["supervisor_channel"]
    if channel is None:
        if action == "whisper":
            raise HandraiseError("no supervisor has joined yet: listen first (or answer the "
                                 "alert)")
        if not phone:
            raise HandraiseError("no supervisor has joined yet and you have no phone "
                                 "extension to listen on")
        # Audited before ringing: the phone may answer (and join) at once.
        await _audit(conn, handraise_id, actor, "listen", at, f"ringing {phone}")
        accepted, message = await _answer(ami, {
            "Action": "Originate", "Channel": pbx.phone_channel.format(ext=phone),
            "Context": LISTEN_CONTEXT, "Exten": f"hr{handraise_id}", "Priority": "1",
            "CallerID": f'"手上げ聴取 {row["operator"]}" <{row["operator"]}>',
            "Timeout": "30000", "Async": "true"})
        if not accepted:
            await _audit(conn, handraise_id, "service", "listen_failed", at, message)
            raise HandraiseError(f"the PBX refused to ring {phone}: {message or 'no answer'}")
        return {"id": handraise_id, "mode": "listen", "supervisor": phone, "rung": True}
    accepted, message = await _answer(ami, {
        "Action": "ConfbridgeMute" if action == "listen" else "ConfbridgeUnmute",
        "Conference": room_of(handraise_id), "Channel": channel})
    if not accepted:
        # E.g. the supervisor's phone answered but is still hearing the alert.
        raise HandraiseError(f"the PBX refused to {action}: {message or 'no answer'}")
    await _audit(conn, handraise_id, actor, action, at, f"{row['helped_by']} {channel}")
    return {"id": handraise_id, "mode": action, "supervisor": row["helped_by"],
            "rung": False}


async def decide(ami: AmiClient, conn: asyncpg.Connection, handraise_id: int, action: str,
                 actor: str, at: datetime) -> dict[str, Any]:
    """Take over (the caller to the supervisor) or hand back (the caller to the operator)."""
    row = await _open(conn, handraise_id, action, ACTIONS)
    leaving = row["operator_channel"] if action == "take_over" else row["supervisor_channel"]
    if action == "take_over" and row["supervisor_channel"] is None:
        raise HandraiseError("no supervisor has joined yet: nobody to take the caller over")
    if action == "take_over" and await supervisor_mode(conn, handraise_id) == "listen":
        # A listening supervisor is muted: unmuted before the caller joins, or the caller
        # would hear nobody.
        accepted, message = await _answer(ami, {
            "Action": "ConfbridgeUnmute", "Conference": room_of(handraise_id),
            "Channel": row["supervisor_channel"]})
        if not accepted:
            log.warning("handraise_unmute_failed", channel=row["supervisor_channel"],
                        error=message)
    try:
        moved = await ami.send_action({"Action": "Redirect", "Channel": row["caller_channel"],
                                       "Context": JOIN_CONTEXT, "Exten": f"hr{handraise_id}",
                                       "Priority": "1"})
    except AmiError as exc:
        raise HandraiseError(f"the PBX refused to move the caller: {exc}") from exc
    if getattr(moved, "response", "") != "Success":
        raise HandraiseError("the caller is gone: " + getattr(moved, "message", ""))
    if leaving:
        try:
            await ami.send_action({"Action": "Hangup", "Channel": leaving})
        except AmiError as exc:
            log.warning("handraise_release_failed", channel=leaving, error=str(exc))
    hold_s, help_s = hold_times(row["held_at"], row["helped_at"], at)
    resolution = "taken_over" if action == "take_over" else "handed_back"
    async with conn.transaction():
        await conn.execute(
            "UPDATE handraises SET ended_at = $2, resolution = $3, hold_s = $4, help_s = $5 "
            "WHERE id = $1", handraise_id, at, resolution, hold_s, help_s)
        await _audit(conn, handraise_id, actor, action, at)
        if row["linkedid"]:
            # The ledger's figures for the call: every handraise of it, summed.
            await conn.execute(
                """UPDATE calls SET (hold_s, help_s) = (
                       SELECT sum(h.hold_s), sum(h.help_s) FROM handraises h
                        WHERE h.pbx_id = $1 AND h.linkedid = $2 AND h.ended_at IS NOT NULL)
                    WHERE pbx_id = $1 AND linkedid = $2""", row["pbx_id"], row["linkedid"])
        await conn.execute("UPDATE callflow_alerts SET cleared_at = $2, cleared_by = $3 "
                           "WHERE kind = 'handraise' AND cleared_at IS NULL "
                           "AND (detail->>'handraise')::bigint = $1", handraise_id, at, actor)
        await _tell(conn, handraise_id, at)
    return {"id": handraise_id, "resolution": resolution, "hold_s": hold_s, "help_s": help_s}


async def supervisor_phones(conn: asyncpg.Connection) -> list[str]:
    """The extensions of active supervisors (users with a phone)."""
    return [r["extension"] for r in await conn.fetch(
        "SELECT extension FROM users WHERE role = 'supervisor' AND active "
        "AND extension IS NOT NULL AND extension <> '' ORDER BY extension")]


async def handraises(conn: asyncpg.Connection, *, open_only: bool, limit: int = 100
                     ) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT id, pbx_id, linkedid, client, operator, via, held_at, helped_at, helped_by,
                  ended_at, resolution, hold_s, help_s,
                  (SELECT a.action FROM handraise_audit a WHERE a.handraise_id = h.id
                      AND a.action IN ('listen', 'whisper')
                    ORDER BY a.id DESC LIMIT 1) AS supervisor_mode
             FROM handraises h WHERE (NOT $1 OR ended_at IS NULL)
            ORDER BY id DESC LIMIT $2""", open_only, limit)
    return [dict(r) for r in rows]
