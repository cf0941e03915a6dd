"""The typed keys of what the application shares between its parts (aiohttp ``AppKey``)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from agi.server import AgiServer
from service.config import Config
from service.ledger.pipeline import LedgerPipeline
from service.routing.cache import RoutingCache
from service.routing.repeat import RepeatLookup
from service.web.api_status import LinkTracker
from service.web.context import Clock
from service.web.operators import OperatorStates
from service.web.stream import Broadcaster

CONFIG = web.AppKey("config", Config)
POOL = web.AppKey("pool", asyncpg.Pool)
DB_URL = web.AppKey("db_url", str)
PIPELINES = web.AppKey("pipelines", dict[str, LedgerPipeline])
STARTED = web.AppKey("started", float)
ROUTING = web.AppKey("routing", RoutingCache)
REPEAT_LOOKUP = web.AppKey("repeat_lookup", RepeatLookup)
AGI = web.AppKey("agi", AgiServer)
BROADCASTER = web.AppKey("broadcaster", Broadcaster)
OPERATOR_STATES = web.AppKey("operator_states", OperatorStates)
# The service's clock (tests set it: the worklist's calling-hours state and click-to-call
# read it), and the PBX links' up/down history for GET /api/status.
CLOCK = web.AppKey("clock", Clock)
PBX_LINKS = web.AppKey("pbx_links", LinkTracker)
