"""Offline core: performance records, query features and Gymnasium routing environments.

Importing ``env`` registers the environment ids ``banditroute/Routing-v0`` and
``banditroute/BudgetedRouting-v0`` with Gymnasium.
"""

from gymnasium.envs.registration import register, registry

from banditroute.env.budgeted_env import BudgetedRoutingEnv
from banditroute.env.costs import PriceTable, PriceTableError
from banditroute.env.features import Featurizer, FeaturizerError, FeaturizerSpec
from banditroute.env.records import RecordsError, RecordSet, load_records
from banditroute.env.routing_env import RoutingEnv

ROUTING_ENV_ID = "banditroute/Routing-v0"
BUDGETED_ENV_ID = "banditroute/BudgetedRouting-v0"

if ROUTING_ENV_ID not in registry:
    register(id=ROUTING_ENV_ID, entry_point="banditroute.env.routing_env:RoutingEnv")
if BUDGETED_ENV_ID not in registry:
    register(id=BUDGETED_ENV_ID, entry_point="banditroute.env.budgeted_env:BudgetedRoutingEnv")

__all__ = [
    "BUDGETED_ENV_ID",
    "ROUTING_ENV_ID",
    "BudgetedRoutingEnv",
    "Featurizer",
    "FeaturizerError",
    "FeaturizerSpec",
    "PriceTable",
    "PriceTableError",
    "RecordSet",
    "RecordsError",
    "RoutingEnv",
    "load_records",
]
