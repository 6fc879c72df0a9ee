"""Cascades: call cheap models first, read their answers, stop or escalate (see :mod:`.policy`)."""

from banditroute.bandit.cascade.agreement import AgreementCascade
from banditroute.bandit.cascade.policy import Cascade
from banditroute.bandit.cascade.replay import Replay, replay
from banditroute.bandit.cascade.step import ACTIONS, FINAL_ANSWERS, CascadeStep
from banditroute.bandit.cascade.vote import Vote, encode, stop_features, vote_weights, weighted_vote

__all__ = [
    "ACTIONS",
    "FINAL_ANSWERS",
    "AgreementCascade",
    "Cascade",
    "CascadeStep",
    "Replay",
    "Vote",
    "encode",
    "replay",
    "stop_features",
    "vote_weights",
    "weighted_vote",
]
