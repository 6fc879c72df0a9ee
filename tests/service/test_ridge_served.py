"""The ridge router is served like any other policy: an artifact imports (with the ridge its fit chose), routes
over HTTP, learns from feedback and exports to the same decisions (the test of test_new_learners, on ridge)."""

from __future__ import annotations

import numpy as np
import pytest

from banditroute.bandit import import_artifact, make_policy, to_bytes
from banditroute.env.features import Featurizer
from tests.service.conftest import MODELS, PROMPTS
from tests.service.test_new_learners import test_served_routed_fed_back_and_exported  # noqa: F401  (run here)


@pytest.fixture
def learner_artifact(featurizer: Featurizer) -> tuple[str, bytes]:
    X = featurizer.transform(PROMPTS)
    q = np.array([[0.2, 0.4, 0.9] if "algebra" in p else [0.8, 0.5, 0.6] for p in PROMPTS])
    c = np.tile([0.001, 0.004, 0.02], (len(PROMPTS), 1))
    policy = make_policy("ridge", MODELS, featurizer.dim, seed=0, ridge_grid=[0.01, 1.0, 100.0])
    policy.fit_full(X, q, c)
    artifact = to_bytes(policy, featurizer)
    assert import_artifact(artifact).policy.ridge == policy.ridge  # the chosen value travels
    return "ridge", artifact
