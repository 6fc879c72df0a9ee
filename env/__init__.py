"""Offline core: performance records, query features and Gymnasium routing environments.

Importing ``env`` registers the environment ids ``banditroute/Routing-v0``, ``banditroute/BudgetedRouting-v0``
and ``banditroute/CascadeRouting-v0`` with Gymnasium. Their entry points (:mod:`env.defaults`) build them on the
bundled records when ``gym.make`` is given no arguments; nothing is loaded at import.
"""

from gymnasium.envs.registration import register, registry

from banditroute.env.budgeted_env import BudgetedRoutingEnv
from banditroute.env.cascade_env import CascadeRoutingEnv
from banditroute.env.costs import PriceTable, PriceTableError
from banditroute.env.features import Featurizer, FeaturizerError, FeaturizerSpec
from banditroute.env.records import RecordsError, RecordSet, load_records
from banditroute.env.routing_env import RoutingEnv

ROUTING_ENV_ID = "banditroute/Routing-v0"
BUDGETED_ENV_ID = "banditroute/BudgetedRouting-v0"
CASCADE_ENV_ID = "banditroute/CascadeRouting-v0"

for _id, _entry in (
    (ROUTING_ENV_ID, "banditroute.env.defaults:routing_env"),
    (BUDGETED_ENV_ID, "banditroute.env.defaults:budgeted_env"),
    (CASCADE_ENV_ID, "banditroute.env.defaults:cascade_env"),
):
    if _id not in registry:
        register(id=_id, entry_point=_entry)

__all__ = [
    "BUDGETED_ENV_ID",
    "CASCADE_ENV_ID",
    "ROUTING_ENV_ID",
    "BudgetedRoutingEnv",
    "CascadeRoutingEnv",
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
