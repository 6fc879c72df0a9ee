"""The sharing learners (shared-linucb, shared-lints, knn, neural-linear) are served like any other policy: an
artifact imports, routes over HTTP, learns from feedback, and exports to the same decisions."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from banditroute.bandit import import_artifact, make_policy, to_bytes
from banditroute.env.features import Featurizer
from tests.service.conftest import MODELS, PROMPTS, import_policy, route, wait_applied

LEARNERS = ["shared-linucb", "shared-lints", "knn", "neural-linear"]


@pytest.fixture(params=LEARNERS)
def learner_artifact(request: pytest.FixtureRequest, featurizer: Featurizer) -> tuple[str, bytes]:
    X = featurizer.transform(PROMPTS)
    q = np.array([[0.2, 0.4, 0.9] if "algebra" in p else [0.8, 0.5, 0.6] for p in PROMPTS])
    c = np.tile([0.001, 0.004, 0.02], (len(PROMPTS), 1))
    extra = {"epochs": 5, "refit_every": 50} if request.param == "neural-linear" else {}
    policy = make_policy(request.param, MODELS, featurizer.dim, seed=0, **extra)
    policy.fit_full(X, q, c)
    return request.param, to_bytes(policy, featurizer)


def test_served_routed_fed_back_and_exported(admin: httpx.Client, learner_artifact: tuple[str, bytes]) -> None:
    name, artifact = learner_artifact
    info = import_policy(admin, artifact, "learner")
    assert info["policy"] == name
    before = info["n_updates"]
    queries = ["an algebra question about groups", "a question of contract law", "history of the empire"]
    decisions = []
    for qtext in queries:
        r = route(admin, query=qtext, policy="learner")
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["model"] in MODELS and 0 < d["propensity"] <= 1 and abs(sum(d["pmf"].values()) - 1) < 1e-9
        decisions.append(d)
    for d in decisions:
        r = admin.post("/v1/feedback", json={"decision_id": d["decision_id"], "source": "user", "score": 1.0})
        assert r.status_code in (200, 202), r.text
    after = wait_applied(admin, "learner")
    assert after["n_updates"] == before + len(decisions)
    exported = admin.get("/v1/policies/learner/export")
    assert exported.status_code == 200
    served = import_artifact(exported.content)
    assert served.policy.name == name and served.policy.n_updates == after["n_updates"]
    # the exported policy decides as the served one: same distributions on the same features
    fz = served.featurizer()
    assert fz is not None
    x = fz.transform(queries)
    again = import_artifact(exported.content).policy
    np.testing.assert_array_equal(served.policy.pmf_batch(x, 0.0), again.pmf_batch(x, 0.0))
