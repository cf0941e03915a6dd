"""手上げ over real sockets: the feature code's ``escalate`` AGI through the service's own
FastAGI server and database, and the dashboard's escalation as an AMI BlindTransfer."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from service.app import POOL, agi_ctx, create_app, database_ctx, routing_ctx
from service.callbacks.escalation import escalate
from service.config import PbxConfig
from tests.agi_peer import agi_session
from tests.live_asterisk import free_port
from tests.replaying import config_for, logged_in_ami

# The operator's half of a queue member's Local channel, as in the recordings.
OPERATOR_CHANNEL = "Local/201@operators-00000001;1"
CALLER_CHANNEL = "Local/0312345678@from-pstn-00000000;2"


def escalate_headers(*args: str, accountcode: str = "KSL") -> list[tuple[str, str]]:
    """What Asterisk sends for AGI(agi://host/escalate,<reason>,<peer>,<linkedid>) on the
    operator's channel."""
    return [("agi_network", "yes"), ("agi_network_script", "escalate"),
            ("agi_request", "agi://127.0.0.1/escalate"), ("agi_channel", OPERATOR_CHANNEL),
            ("agi_language", "en"), ("agi_type", "Local"), ("agi_uniqueid", "1795346830.4"),
            ("agi_version", "GIT-master"), ("agi_callerid", "201"),
            ("agi_calleridname", "op201"), ("agi_context", "orikaeshi-escalate-menu"),
            ("agi_extension", "s"), ("agi_priority", "4"), ("agi_enhanced", "0.0"),
            ("agi_accountcode", accountcode), ("agi_threadid", "1"),
            *[(f"agi_arg_{i}", arg) for i, arg in enumerate(args, start=1)]]


async def escalations(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch("SELECT * FROM escalations ORDER BY id")


async def test_feature_code_is_recorded_by_the_service(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    config = dataclasses.replace(config_for(tmp_path), database_url=db_url, agi_port=port,
                                 pbxs=(PbxConfig(pbx_id="pbx1"),))
    app = create_app(config, [database_ctx, routing_ctx, agi_ctx])
    async with TestClient(TestServer(app)):
        await agi_session(port, escalate_headers("complaint_naming_operator", CALLER_CHANNEL,
                                                 "1795346827.0"))
        # An unknown reason is kept as "other"; what is not an Asterisk identifier is dropped.
        await agi_session(port, escalate_headers("shouting", "x'); DROP TABLE calls; --",
                                                 "not-a-linkedid", accountcode="K S L"))
        rows = await escalations(app[POOL])
    first, second = rows
    assert (first["pbx_id"], first["linkedid"], first["client"], first["channel"]) == \
        ("pbx1", "1795346827.0", "KSL", CALLER_CHANNEL)
    assert (first["reason"], first["requested_by"], first["via"], first["result"]) == \
        ("complaint_naming_operator", "201", "feature_code", "moved")
    assert (second["reason"], second["linkedid"], second["client"], second["channel"]) == \
        ("other", None, None, "?")


async def test_dashboard_escalation_blind_transfers_the_operator_channel(pool) -> None:
    async with logged_in_ami() as (ami, server), pool.acquire() as conn:
        refused = await escalate(ami, conn, pbx_id="pbx1",
                                 call=("1795346827.0", OPERATOR_CHANNEL, "KSL"),
                                 reason="bored", requested_by="sup301")
        moved = await escalate(ami, conn, pbx_id="pbx1",
                               call=("1795346827.0", OPERATOR_CHANNEL, "KSL"),
                               reason="payment_dispute", requested_by="sup301",
                               context="orikaeshi-escalate")
    assert not refused.moved and "reason must be one of" in refused.detail
    assert moved.moved and moved.detail == "Transfer succeeded"
    # The recording's own form: the operator's channel is transferred, its peer (the
    # caller) goes to the destination, whose extension is the reason.
    [transfer] = [a for a in server.actions if a.get("Action") == "BlindTransfer"]
    assert (transfer["Channel"], transfer["Context"], transfer["Exten"]) == \
        (OPERATOR_CHANNEL, "orikaeshi-escalate", "payment_dispute")
    [row] = await escalations(pool)
    assert (row["id"], row["via"], row["requested_by"], row["reason"], row["result"]) == \
        (moved.escalation_id, "api", "sup301", "payment_dispute", "moved")
    assert (row["linkedid"], row["client"]) == ("1795346827.0", "KSL")
