"""One live service for the dashboard tests (module scope): a real Redis, a replay upstream behind the gateway,
two policies in a running A/B experiment, traffic with feedback; and headless Chromium driven by selenium from
the Debian packages (nothing downloaded at run time)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from banditroute.bandit import LinUCB, to_bytes
from banditroute.env.features import Featurizer
from banditroute.service.app import create_app
from banditroute.service.config import Settings
from banditroute.service.embedded import EmbeddedRedis
from banditroute.testing import ServerThread, free_port
from banditroute.testing_upstreams import ReplayModel, ReplayUpstream

ADMIN = "ui-admin-key-0123456789"
READ = "ui-read-key-0123456789"
ROUTER = "ui-route-key-0123456789"
MODELS = ["small", "medium", "large"]
COST = {"small": 0.001, "medium": 0.004, "large": 0.02}
TOPICS = ["algebra proof theorem", "court statute contract", "python loop function", "cell protein enzyme"]
PROMPTS = [f"{TOPICS[i % 4]} question {i} about {TOPICS[(i * 7) % 4].split()[0]}" for i in range(80)]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[2]
#: where the tests save their screenshots (override with BANDITROUTE_UI_SCREENSHOTS)
SCREENSHOTS = Path(os.environ.get("BANDITROUTE_UI_SCREENSHOTS", ROOT / "build" / "ui-screenshots"))


@dataclass
class Live:
    url: str
    admin: httpx.Client
    router: httpx.Client
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def traffic(self, n: int, chat: int = 0) -> None:
        """``n`` routes through the experiment with feedback, and ``chat`` gateway calls; then waits until the
        learner applied every accepted event, so the figures stand still."""
        with self.lock:
            for i in range(n):
                prompt = PROMPTS[int(self.rng.integers(len(PROMPTS)))]
                r = self.router.post("/v1/route", json={"query": prompt, "experiment": "ab", "unit_id": f"u{i % 37}"})
                assert r.status_code == 200, r.text
                d = r.json()
                good = (d["model"] == "large") == ("algebra" in prompt)
                score = float(np.clip((0.8 if good else 0.4) + self.rng.normal(0, 0.1), 0, 1))
                if i % 5 != 4:  # some decisions get no feedback
                    fb = {
                        "decision_id": d["decision_id"],
                        "source": "user",
                        "score": score,
                        "cost_usd": COST[d["model"]],
                        "latency_ms": float(self.rng.uniform(50, 400)),
                    }
                    assert self.router.post("/v1/feedback", json=fb).status_code == 202
            for i in range(chat):
                r = self.router.post(
                    "/v1/chat/completions",
                    json={"model": "router/pol-a", "messages": [{"role": "user", "content": PROMPTS[i % 80]}]},
                )
                assert r.status_code == 200, r.text
            self.settle()

    def settle(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for pid in ("pol-a", "pol-b"):
            while self.admin.get(f"/v1/policies/{pid}").json()["feedback"]["pending"]:
                assert time.monotonic() < deadline, "feedback still pending"
                time.sleep(0.05)
        time.sleep(0.3)  # gateway settling runs in the background


def _artifact() -> bytes:
    fz = Featurizer(dim=8, max_features=300).fit(PROMPTS)
    X = fz.transform(PROMPTS)
    q = np.array([[0.2, 0.4, 0.9] if "algebra" in p else [0.8, 0.5, 0.6] for p in PROMPTS])
    c = np.tile([COST[m] for m in MODELS], (len(PROMPTS), 1))
    policy = LinUCB(MODELS, 8, alpha=0.05, seed=0, explore_floor=0.1)
    policy.fit_full(X, q, c)
    return to_bytes(policy, fz)


def _populate(admin: httpx.Client) -> None:
    """Policy pol-a (a warm LinUCB), pol-b (a cold paced LinTS), experiment ab between them."""
    r = admin.post(
        "/v1/policies/import", params={"id": "pol-a"}, content=_artifact(), headers={"Content-Type": "application/zip"}
    )
    assert r.status_code == 201, r.text
    r = admin.post(
        "/v1/policies",
        json={
            "id": "pol-b",
            "policy": "lints",
            "models": MODELS,
            "featurizer_from": "pol-a",
            "budget": {"target_cost_usd": 0.005},
        },
    )
    assert r.status_code == 201, r.text
    arms = [{"name": "control", "policy": "pol-a"}, {"name": "treatment", "policy": "pol-b"}]
    r = admin.post("/v1/experiments", json={"id": "ab", "arms": arms})
    assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    upstream = ServerThread(
        ReplayUpstream({m: ReplayModel(m, latency_s=0.002, default=f"{m}: the answer is (B).") for m in MODELS})
    ).start()
    cfg = tmp_path_factory.mktemp("ui") / "upstreams.toml"
    cfg.write_text(
        "".join(
            f'[models."{m}"]\nbase_url = "{upstream.url}/v1"\ninput_usd_per_mtok = 1.0\noutput_usd_per_mtok = 2.0\n\n'
            for m in MODELS
        )
    )
    with EmbeddedRedis(port=free_port()) as redis_server:
        settings = Settings(
            redis_url=redis_server.url,
            api_keys={ADMIN: ["admin", "route", "feedback"], READ: ["read"], ROUTER: ["route", "feedback"]},
            decision_ttl_seconds=3600,
            log_level="WARNING",
            upstreams=str(cfg),
        )
        server = ServerThread(create_app(settings)).start()
        admin = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
        router = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ROUTER}"}, timeout=30)
        try:
            _populate(admin)
            live = Live(server.url, admin, router)
            live.traffic(160, chat=12)
            yield live
        finally:
            admin.close()
            router.close()
            server.stop()
            upstream.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium from the Debian packages: skipped with the reason when absent, a failure under CI."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    if missing:
        reason = f"browser tests need {', '.join(missing)} (.ci/setup installs chromium and chromium-driver as root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true: " + reason)
        pytest.skip(reason)
    profile = Path(tempfile.mkdtemp(prefix="banditroute-chromium-"))
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    # an explicit chromedriver path: selenium-manager never runs (it would download a driver)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(30)
    driver.get("about:blank")
    driver.get_log("performance")  # the browser's own start-up requests (its new-tab page), not the dashboard's
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
