"""Rows for the database from the machine's calls: plain, JSON-safe dicts (epoch seconds).

They go to PostgreSQL or, while it is away, to the spool unchanged; ``key`` says which row a
newer record of the same thing replaces.
"""

from __future__ import annotations

from typing import Any

from service.ledger.model import Call
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
