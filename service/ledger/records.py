"""Rows for the database from the machine's calls: plain, JSON-safe dicts (epoch seconds).

They go to PostgreSQL or, while it is away, to the spool unchanged; ``key`` says which row a
newer record of the same thing replaces.
"""

from __future__ import annotations

from typing import Any

from service.ledger.model import Call, RingAttempt, Stint
from service.phone import is_withheld, to_e164

Record = list[Any]  # [kind, row]; kind is "call", "stint" or "ring"


def record_key(record: Record) -> tuple[str, ...]:
    kind, row = record
    if kind == "call":
        return ("call", row["pbx_id"], row["linkedid"])
    if kind == "stint":
        return ("stint", row["pbx_id"], row["linkedid"], str(row["seq"]))
    return ("ring", row["pbx_id"], row["member_uniqueid"])


def call_records(call: Call) -> list[Record]:
    """The call row, then one row per stint and per ring attempt."""
    outbound = call.direction == "outbound"
    records: list[Record] = [["call", {
        "pbx_id": call.pbx_id,
        "linkedid": call.linkedid,
        "direction": call.direction,
        "client": call.client,
        "did": call.did,
        "caller_number": call.caller_number,
        "caller_e164": None if outbound else to_e164(call.caller_number),
        "caller_name": call.caller_name,
        "caller_withheld": (not outbound) and is_withheld(call.caller_number),
        "caller_uniqueid": call.caller_uniqueid,
        "uniqueids": list(call.uniqueids),
        "started_at": call.started_at,
        "queued_at": call.stints[0].joined_at if call.stints else None,
        "answered_at": call.answered_at,
        "ended_at": call.ended_at,
        "outcome": call.outcome,
        "wait_s": call.wait_s,
        "talk_s": call.talk_s,
        "answered_by": call.answered_by,
        "escalated": call.escalated,
        "escalation_reason": call.escalation_reason,
        "fallback_routed": call.fallback_routed,
        "voicemail_left": call.voicemail_left,
        "voicemail_box": call.voicemail_box,
        "forwarded_to": call.forwarded_to,
        "forward_answered": call.forward_answered,
        "route_action": call.route_action,
        "route_queue": call.route_queue,
        "route_flags": call.route_flags,
        "transfers": call.transfers,
        "hangup_cause": call.hangup_cause,
        "callee_number": call.callee_number,
        "callee_e164": to_e164(call.callee_number) if outbound else None,
        "placed_by": call.placed_by,
        "dial_result": call.dial_result,
        "end_seen": call.end_seen,
        # Not a column: when the newest event behind this record happened (live latency).
        "last_event_at": call.last_event_at,
    }]]
    for stint in call.stints:
        records.append(["stint", {
            "pbx_id": call.pbx_id, "linkedid": call.linkedid, "seq": stint.seq,
            "queue": stint.queue, "caller_uniqueid": stint.caller_uniqueid,
            "joined_at": stint.joined_at, "left_at": stint.left_at,
            "connected_at": stint.connected_at, "ended_at": stint.ended_at,
            "position": stint.position, "agent": stint.agent, "interface": stint.interface,
            "result": stint.result, "wait_s": stint.wait_s, "talk_s": stint.talk_s,
            "asterisk_hold_s": stint.asterisk_hold_s,
        }])
        for ring in stint.rings:
            records.append(["ring", {
                "pbx_id": call.pbx_id, "member_uniqueid": ring.member_uniqueid,
                "linkedid": call.linkedid, "stint_seq": ring.stint_seq, "queue": ring.queue,
                "interface": ring.interface, "agent": ring.agent,
                "member_channel": ring.member_channel, "started_at": ring.started_at,
                "ended_at": ring.ended_at, "result": ring.result, "ring_ms": ring.ring_ms,
            }])
    return records


def calls_from_records(records: list[Record]) -> list[Call]:
    """Calls rebuilt from their rows (the newest record of each key wins), for taking over
    open calls from the database or from the spool after a restart."""
    latest: dict[tuple[str, ...], dict[str, Any]] = {}
    for record in records:
        latest[record_key(record)] = record[1]
    calls: dict[str, Call] = {}
    for key, r in latest.items():
        if key[0] != "call":
            continue
        calls[r["linkedid"]] = Call(
            pbx_id=r["pbx_id"], linkedid=r["linkedid"], direction=r["direction"],
            started_at=r["started_at"] or 0.0, did=r["did"], client=r["client"],
            caller_number=r["caller_number"], caller_name=r["caller_name"],
            caller_uniqueid=r["caller_uniqueid"], uniqueids=list(r["uniqueids"] or []),
            route_action=r["route_action"], route_queue=r["route_queue"],
            route_flags=r["route_flags"], escalated=r["escalated"],
            escalation_reason=r["escalation_reason"], fallback_routed=r["fallback_routed"],
            voicemail_left=r["voicemail_left"], voicemail_box=r["voicemail_box"],
            transfers=r["transfers"], forwarded_to=r["forwarded_to"],
            forward_answered=r["forward_answered"], answered_at=r["answered_at"],
            answered_by=r["answered_by"], ended_at=r["ended_at"], outcome=r["outcome"],
            end_seen=r["end_seen"], hangup_cause=r["hangup_cause"],
            callee_number=r["callee_number"], placed_by=r["placed_by"],
            dial_result=r["dial_result"], last_event_at=r.get("updated_at") or 0.0)
    stints: dict[tuple[str, int], Stint] = {}
    for key, s in sorted(latest.items(), key=lambda i: (i[0][0], i[1].get("seq") or 0)):
        if key[0] != "stint" or s["linkedid"] not in calls:
            continue
        stint = Stint(seq=s["seq"], queue=s["queue"], caller_uniqueid=s["caller_uniqueid"],
                      joined_at=s["joined_at"] or 0.0, position=s["position"],
                      left_at=s["left_at"], connected_at=s["connected_at"],
                      ended_at=s["ended_at"], agent=s["agent"], interface=s["interface"],
                      result=s["result"], asterisk_hold_s=s["asterisk_hold_s"])
        calls[s["linkedid"]].stints.append(stint)
        stints[(s["linkedid"], s["seq"])] = stint
    for key, g in sorted(latest.items(), key=lambda i: i[1].get("started_at") or 0.0):
        stint_of_ring = stints.get((g["linkedid"], g["stint_seq"])) if key[0] == "ring" \
            else None
        if stint_of_ring is None:
            continue
        stint_of_ring.rings.append(RingAttempt(
            member_uniqueid=g["member_uniqueid"], member_channel=g["member_channel"] or "",
            queue=g["queue"], interface=g["interface"] or "", agent=g["agent"] or "",
            started_at=g["started_at"] or 0.0, stint_seq=g["stint_seq"],
            ended_at=g["ended_at"], result=g["result"], ring_ms=g["ring_ms"]))
    return list(calls.values())
