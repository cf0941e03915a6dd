"""The typed keys of what the application shares between its parts (aiohttp ``AppKey``)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from agi.server import AgiServer
from service.clock import Clock
from service.config import Config
from service.fdbudget import DescriptorBudget
from service.ledger.pipeline import LedgerPipeline
from service.metrics import Metrics
from service.routing.cache import RoutingCache
from service.routing.repeat import RepeatLookup
from service.web.auth import PasswordWorkers
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
# The service's clock (service.clock): what every "now" of the service is read from.
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
PASSWORDS = web.AppKey("passwords", PasswordWorkers)
FD_BUDGET = web.AppKey("fd_budget", DescriptorBudget)
METRICS = web.AppKey("metrics", Metrics)
