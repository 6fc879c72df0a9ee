"""The dashboard (/ui) against a live service with a running experiment and traffic: its JSON (auth, one source
with the JSON API), and in headless Chromium each page's figures equal the JSON API's, an unauthenticated visit
asks for a key, the page never leaves the service's origin, and it refreshes by itself. Screenshots go to
``conftest.SCREENSHOTS``."""

from __future__ import annotations

import math
from typing import Any

import httpx

from tests.ui.conftest import ADMIN, READ, ROUTER, Live

# ---- the JSON (no browser) ------------------------------------------------------------------------------------


def test_page_is_served_without_key_and_json_needs_read_scope(live: Live) -> None:
    page = httpx.get(live.url + "/ui/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset, kind in (("app.js", "javascript"), ("charts.js", "javascript"), ("style.css", "css")):
        r = httpx.get(f"{live.url}/ui/{asset}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    assert httpx.get(live.url + "/ui/secrets.txt").status_code == 404
    assert httpx.get(live.url + "/ui/api/overview").status_code == 401
    bad = httpx.get(live.url + "/ui/api/overview", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    routing_only = httpx.get(live.url + "/ui/api/overview", headers={"Authorization": f"Bearer {ROUTER}"})
    assert routing_only.status_code == 403 and "read" in routing_only.json()["error"]["message"]
    for key in (READ, ADMIN):
        assert httpx.get(live.url + "/ui/api/overview", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    # a read key reads; it cannot stop an experiment
    stop = httpx.post(live.url + "/v1/experiments/ab/stop", headers={"Authorization": f"Bearer {READ}"})
    assert stop.status_code == 403


def _read(live: Live, path: str) -> Any:
    r = httpx.get(live.url + path, headers={"Authorization": f"Bearer {READ}"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_json_is_the_apis_own(live: Live) -> None:
    """The dashboard's JSON holds the existing endpoints' answers unchanged (one source)."""
    live.settle()
    exp = _read(live, "/ui/api/experiments/ab")
    assert exp["report"] == live.admin.get("/v1/experiments/ab").json()
    pol = _read(live, "/ui/api/policies/pol-b")
    assert pol["info"] == live.admin.get("/v1/policies/pol-b").json()
    assert pol["lam"] == {"paced": True, "value": pol["info"]["pacer_lam"], "target_cost_usd": 0.005}
    ds = _read(live, "/ui/api/decisions?limit=20")
    assert len(ds) == 20
    assert ds == sorted(ds, key=lambda d: -d["time"])
    for d in ds[:5]:
        assert d == live.admin.get(f"/v1/decisions/{d['decision_id']}").json()
    # the window's per-model figures: decisions add up, shares sum to one, intervals bracket the mean
    w = pol["window"]
    assert sum(m["decisions"] for m in w["models"]) == w["decisions"] > 0
    assert math.isclose(sum(m["share"] for m in w["models"] if m["share"]), 1.0)
    for m in w["models"]:
        if m["reward"]["ci95"]:
            lo, hi = m["reward"]["ci95"]
            assert lo <= m["reward"]["mean"] <= hi
    # the arms over time end where the report is (all of the experiment's decisions are in the window)
    for arm in exp["report"]["arms"]:
        last = exp["series"]["arms"][arm["name"]][-1]
        assert last["decisions"] == arm["decisions"]
        assert math.isclose(last["score"]["mean"], arm["score"]["mean"])
    gw = _read(live, "/ui/api/gateway")
    assert gw["configured"] and sum(u["calls"] for u in gw["upstreams"]) >= 12
    assert all(u["circuit"] == "closed" for u in gw["upstreams"])
