"""Placing a call back through AMI: the operator's phone rings, then the callee is dialled.

Checked by the outbound policy first (service.compliance: calling hours in the callee's time,
contact limits, do-not-call), on the click-to-call and the scheduled path alike; every
decision is evidence in ``outbound_decisions`` and a refusal is also a ``callback_requests``
row with its reason.
Nothing caller-controlled reaches the Originate: the number is digits only, the client's
name and DID come from the clients file, the extension is validated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from agi.variables import OUTBOUND_DECISION
from service.ami.adapter import AmiClient, AmiError
from service.clients.model import Client
from service.clients.store import current_directory
from service.compliance.guard import check_outbound
from service.compliance.policy import Override
from service.config import PbxConfig
from service.logs import get_logger
from service.phone import mask, to_e164
from service.store import compliance_sql

log = get_logger(__name__)

_EXTENSION = re.compile(r"^[0-9A-Za-z_-]{1,20}$")


@dataclass(frozen=True)
class CallbackResult:
    placed: bool
    reason: str
    request_id: int | None = None
    rule: str | None = None            # the policy's rule when it refused
    opens_at: datetime | None = None   # when the policy would allow the callee again


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


async def active_client(conn: asyncpg.Connection, code: str) -> Client | None:
    """The client's rules as loaded (the newest clients file), when it is active."""
    if not await conn.fetchval("SELECT true FROM clients WHERE code = $1 AND active", code):
        return None
    directory = await current_directory(conn)
    return directory.clients.get(code) if directory else None


async def place_callback(ami: AmiClient | None, conn: asyncpg.Connection, pbx: PbxConfig, *,
                         client: str, number: str, operator: str, requested_by: str,
                         now: datetime, obligation_id: int | None = None,
                         path: str = "click_to_call",
                         override: Override | None = None) -> CallbackResult:
    """Ring ``operator``'s phone, then dial ``number`` for ``client``, if the policy allows.

    ``path`` is ``click_to_call`` (a person clicked) or ``scheduled`` (a call back placed
    at a set time); ``override`` is a supervisor's, honoured only where the client's rules
    allow it."""
    rules = await active_client(conn, client)
    e164 = to_e164(number)
    reason: str | None = None
    if rules is None:
        reason = f"no active client {client!r}"
    elif e164 is None:
        reason = "the number is not one that can be called"
    elif not _EXTENSION.match(operator):
        reason = f"{operator!r} is not an extension"
    if reason is not None or rules is None or e164 is None:
        log.warning("callback_refused", client=client, operator=operator, reason=reason)
        return CallbackResult(False, reason or "refused")
    checked = await check_outbound(conn, rules, number, path=path, now=now,
                                   requested_by=requested_by, operator=operator,
                                   override=override, pbx_id=pbx.pbx_id)
    decision = checked.decision
    if not decision.allowed:
        request_id = await _record(conn, obligation_id, client, e164, operator, requested_by,
                                   "refused", decision.reason)
        return CallbackResult(False, decision.reason, request_id, decision.rule,
                              decision.opens_at)
    if ami is None:
        await compliance_sql.set_result(conn, checked.decision_id, "failed")
        return CallbackResult(False, "no AMI session to the PBX")
    action: dict[str, Any] = {
        "Action": "Originate", "Channel": pbx.phone_channel.format(ext=operator),
        "Context": pbx.callback_context, "Exten": dial_string(e164), "Priority": "1",
        "CallerID": _caller_id(rules.name, rules.dids[0] if rules.dids else ""),
        "Account": client, "Timeout": "30000", "Async": "true",
        # The guard in the outbound context confirms this decision instead of counting the
        # call a second time (dialplan/outbound-guard.conf).
        "Variable": f"{OUTBOUND_DECISION}={checked.decision_id}",
    }
    try:
        answer = await ami.send_action(action)
        ok = getattr(answer, "response", "") == "Success"
        detail = getattr(answer, "message", "") or "Originate refused"
    except AmiError as exc:
        ok, detail = False, str(exc)
    await compliance_sql.set_result(conn, checked.decision_id, "originated" if ok else "failed")
    request_id = await _record(conn, obligation_id, client, e164, operator, requested_by,
                               "originated" if ok else "failed", None if ok else detail)
    log.info("callback_placed" if ok else "callback_failed", client=client, callee=mask(e164),
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
