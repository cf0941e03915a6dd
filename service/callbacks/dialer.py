"""Placing a call back through AMI: the operator's phone rings, then the callee is dialled.

Checked by the calling-hours guard first; a refusal is recorded and logged with its reason.
Nothing caller-controlled reaches the Originate: the number is digits only, the client's
name and DID come from the clients file, the extension is validated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.ami.adapter import AmiClient, AmiError
from service.callbacks.guard import check_calling_hours
from service.config import PbxConfig
from service.logs import get_logger
from service.phone import to_e164

log = get_logger(__name__)

_EXTENSION = re.compile(r"^[0-9A-Za-z_-]{1,20}$")


@dataclass(frozen=True)
class CallbackResult:
    placed: bool
    reason: str
    request_id: int | None = None


def dial_string(e164: str) -> str:
    """What a Japanese PBX dials: national format for +81, 010 + digits abroad.

    >>> dial_string("+819011112222"), dial_string("+12125551234")
    ('09011112222', '01012125551234')
    """
    digits = e164.lstrip("+")
    return "0" + digits[2:] if digits.startswith("81") else "010" + digits


def _caller_id(name: str, did: str) -> str:
    safe = re.sub(r'[\x00-\x1f"<>\\]', " ", name).strip()[:40]
    return f'"{safe}" <{re.sub(r"[^0-9+]", "", did)}>'


async def place_callback(ami: AmiClient | None, conn: asyncpg.Connection, pbx: PbxConfig, *,
                         client: str, number: str, operator: str, requested_by: str,
                         now: datetime, obligation_id: int | None = None) -> CallbackResult:
    row = await conn.fetchrow(
        "SELECT name, dids, timezone, calling_hours_start, calling_hours_end FROM clients "
        "WHERE code = $1 AND active", client)
    e164 = to_e164(number)
    reason: str | None = None
    if row is None:
        reason = f"no active client {client!r}"
    elif e164 is None:
        reason = "the number is not one that can be called"
    elif not _EXTENSION.match(operator):
        reason = f"{operator!r} is not an extension"
    if reason is not None or row is None or e164 is None:
        log.warning("callback_refused", client=client, operator=operator, reason=reason)
        return CallbackResult(False, reason or "refused")
    decision = check_calling_hours(e164, now, (row["calling_hours_start"],
                                               row["calling_hours_end"]), row["timezone"])
    if not decision.allowed:
        request_id = await _record(conn, obligation_id, client, e164, operator, requested_by,
                                   "refused", decision.reason)
        log.warning("callback_refused", client=client, callee=e164, operator=operator,
                    reason=decision.reason)
        return CallbackResult(False, decision.reason, request_id)
    if ami is None:
        return CallbackResult(False, "no AMI session to the PBX")
    action: dict[str, Any] = {
        "Action": "Originate", "Channel": pbx.phone_channel.format(ext=operator),
        "Context": pbx.callback_context, "Exten": dial_string(e164), "Priority": "1",
        "CallerID": _caller_id(row["name"], row["dids"][0] if row["dids"] else ""),
        "Account": client, "Timeout": "30000", "Async": "true",
    }
    try:
        answer = await ami.send_action(action)
        ok = getattr(answer, "response", "") == "Success"
        detail = getattr(answer, "message", "") or "Originate refused"
    except AmiError as exc:
        ok, detail = False, str(exc)
    request_id = await _record(conn, obligation_id, client, e164, operator, requested_by,
                               "originated" if ok else "failed", None if ok else detail)
    log.info("callback_placed" if ok else "callback_failed", client=client, callee=e164,
             operator=operator, detail=detail)
    return CallbackResult(ok, "dialling" if ok else detail, request_id)


async def _record(conn: asyncpg.Connection, obligation_id: int | None, client: str,
                  callee: str, operator: str, requested_by: str, result: str,
                  reason: str | None) -> int:
    return int(await conn.fetchval(
        """INSERT INTO callback_requests (obligation_id, client, callee_e164, operator,
               requested_by, result, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)
           RETURNING id""", obligation_id, client, callee, operator, requested_by, result,
        reason))
