"""The evaluator hook: a sampled answer is judged and posted as ``evaluator`` feedback; a judge that fails or a
full queue never touches the served request, and both are counted."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from tests.gateway.conftest import Gw, ask


def _metric(gw: Gw, outcome: str) -> float:
    text = httpx.get(gw.url + "/metrics").text
    m = re.search(rf'banditroute_judge_total{{outcome="{outcome}"}} ([0-9.e+]+)', text)
    return float(m.group(1)) if m else 0.0


def test_evaluator_hook_posts_feedback(gateway_factory: Any) -> None:
    gw: Gw = gateway_factory('[evaluator]\njudge = "judge"\nsample_rate = 1.0\nrubric = "Grade 0-10."\n')
    raw = gw.client().chat.completions.with_raw_response.create(model="router/main", messages=ask(3))
    d = gw.wait_decision(raw.headers["x-banditroute-decision-id"], "score:evaluator")
    assert float(d["score:evaluator"]) == 0.8
    sent = gw.ups.apps["judge"].last_body
    assert sent is not None and sent["messages"][0]["content"] == "Grade 0-10."
    assert raw.parse().choices[0].message.content in sent["messages"][1]["content"]
    assert _metric(gw, "posted") >= 1


def test_judge_failure_and_full_queue_never_touch_the_request(gateway_factory: Any) -> None:
    gw: Gw = gateway_factory('[evaluator]\njudge = "judge"\nqueue_size = 1\ntimeout_s = 3\n')
    gw.ups.apps["judge"].mode = "hang"
    client = gw.client()
    start = time.monotonic()
    for i in range(6):
        r = client.chat.completions.with_raw_response.create(model="router/main", messages=ask(1, i))
        assert r.status_code == 200
    assert time.monotonic() - start < 3  # nobody waited for the judge
    deadline = time.monotonic() + 10
    while _metric(gw, "failed") < 2:  # the two workers' calls time out
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert _metric(gw, "dropped") >= 1
    gw.ups.apps["judge"].mode = "500"
    r = client.chat.completions.with_raw_response.create(model="router/main", messages=ask(2))
    assert r.status_code == 200
