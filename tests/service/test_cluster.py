"""The service unchanged against a 3-master Redis Cluster on loopback (started here from the same redis-server
binary): route and feedback work, a policy's keys sit in one slot, and exactly-once holds across workers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import redis

from banditroute.service.app import create_app
from banditroute.testing import LocalCluster, ServeProcess, ServerThread, free_cluster_ports
from tests.service.conftest import ADMIN, KEYS, import_policy, route, settings_for, wait_applied
from tests.service.test_concurrency import exactly_once_round


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(free_cluster_ports(3)) as c:
        yield c


def test_route_feedback_and_experiments_on_a_cluster(cluster: LocalCluster, artifact: bytes) -> None:
    srv = ServerThread(create_app(settings_for(cluster.url, redis_cluster=True))).start()
    try:
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30) as c:
            import_policy(c, artifact, "cl1")
            import_policy(c, artifact, "cl2")
            d = route(c, query="algebra proof theorem", policy="cl1").json()
            fb = c.post(
                "/v1/feedback", json={"decision_id": d["decision_id"], "source": "user", "score": 1.0, "wait": True}
            )
            assert fb.status_code == 202 and fb.json()["applied"]
            assert (
                c.post(
                    "/v1/feedback", json={"decision_id": d["decision_id"], "source": "user", "score": 1.0}
                ).status_code
                == 409
            )
            c.post(
                "/v1/experiments",
                json={"id": "cx", "arms": [{"name": "a", "policy": "cl1"}, {"name": "b", "policy": "cl2"}]},
            )
            for i in range(20):
                e = route(c, query=f"court statute {i}", experiment="cx", unit_id=f"u{i}").json()
                c.post("/v1/feedback", json={"decision_id": e["decision_id"], "source": "evaluator", "score": 0.5})
            rep = c.get("/v1/experiments/cx").json()
            assert sum(a["decisions"] for a in rep["arms"]) == 20 and sum(a["feedback"] for a in rep["arms"]) == 20
            assert c.get("/v1/policies/cl1/export").status_code == 200
            wait_applied(c, "cl1")
            assert c.get("/readyz").json()["policies"] == 2
    finally:
        srv.stop()
    # every key of a policy lives in one hash slot, so on one node
    for pid in ("cl1", "cl2"):
        slots, holders = set(), set()
        for node in cluster.nodes:
            r = redis.Redis(port=node.port)
            keys = r.keys(f"br:{{{pid}}}:*")
            if keys:
                holders.add(node.port)
            slots |= {r.cluster("keyslot", k) for k in keys}
        assert len(slots) == 1 and len(holders) == 1, (pid, slots, holders)


def test_exactly_once_on_a_cluster(cluster: LocalCluster, artifact: bytes) -> None:
    env = {
        "BANDITROUTE_REDIS_URL": cluster.url,
        "BANDITROUTE_REDIS_CLUSTER": "true",
        "BANDITROUTE_API_KEYS": json.dumps(KEYS),
        "BANDITROUTE_LOG_LEVEL": "WARNING",
        "BANDITROUTE_REDIS_TIMEOUT_SECONDS": "20",
    }
    with ServeProcess(3, env) as srv:
        exactly_once_round(srv.url, artifact, "clconc")
