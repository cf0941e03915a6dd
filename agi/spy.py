"""``agi://host/spy``: a supervisor dialled a listen / whisper / barge feature code.

Called by dialplan/supervisor.conf on the supervisor's own channel as
``AGI(agi://host/spy,<mode>,<operator extension>)`` just before ``ChanSpy``; it only records
the use (``spy_audit``), as the dashboard's buttons do.  The spying does not depend on it.
"""

from __future__ import annotations

import re

import structlog

from agi.context import AgiContext
from agi.server import AgiRequest
from service.ledger.machine import agent_id
from service.logs import get_logger

log = get_logger(__name__)

MODES = ("listen", "whisper", "barge")
_EXTENSION = re.compile(r"^[0-9A-Za-z_-]{1,20}$")


async def spy(request: AgiRequest) -> None:
    headers = request.headers
    context: AgiContext = request.state
    mode = headers.get("agi_arg_1", "")
    operator = headers.get("agi_arg_2", "")
    supervisor = agent_id(headers.get("agi_channel")) or "?"
    structlog.contextvars.bind_contextvars(supervisor=supervisor, operator=operator, mode=mode)
    if mode not in MODES or not _EXTENSION.match(operator):
        log.warning("spy_feature_code_unreadable")
        return
    if context.record_spy is not None:
        await context.record_spy(supervisor, operator, mode)
    log.info("spy_feature_code")
