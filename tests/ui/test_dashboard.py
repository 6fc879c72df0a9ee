"""The dashboard (/ui) against a live service with a running experiment and traffic: its JSON (auth, one source
with the JSON API), and in headless Chromium each page's figures equal the JSON API's, an unauthenticated visit
asks for a key, the page never leaves the service's origin, and it refreshes by itself. Screenshots go to
``conftest.SCREENSHOTS``."""

from __future__ import annotations

import json
import math
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.ui.conftest import ADMIN, READ, ROUTER, SCREENSHOTS, Live

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


# ---- in the browser ---------------------------------------------------------------------------------------------

COLLECT = """
return [...document.querySelectorAll('section[data-api]')].map(s => ({
  api: s.dataset.api,
  items: [...s.querySelectorAll('[data-k]')].map(e => ({
    k: JSON.parse(e.dataset.k), text: e.textContent, live: !!e.dataset.live, pct: !!e.dataset.pct}))}))
"""


def _resolve(data: Any, path: list[Any]) -> Any:
    for p in path:
        data = data[p]
    return data


def _shown(text: str, pct: bool) -> float | None:
    if text == "\u2013":
        return None
    return float(text[:-1]) / 100 if pct else float(text)


def _agrees(shown: float | None, value: Any) -> bool:
    """The shown figure is the JSON value (integers exactly, others to the 4 significant digits shown)."""
    if shown is None or value is None:
        return shown is None and value is None
    if isinstance(value, int):
        return shown == value
    if value == 0:
        return shown == 0
    tol = 0.5 * 10 ** (math.floor(math.log10(abs(value))) - 3) * 1.0001
    return abs(shown - value) <= tol


def _visit(driver: Any, live: Live, hash_: str) -> None:
    """Open a page and wait for a render that started after the visit (the page fetched its JSON)."""
    t0 = driver.execute_script("return Date.now()")
    if driver.current_url.startswith(live.url + "/ui/"):
        driver.execute_script("location.hash = arguments[0]", hash_)
    else:
        driver.get(f"{live.url}/ui/{hash_}")
    deadline = time.monotonic() + 20
    while True:
        done = driver.execute_script(
            "return Number(document.body.dataset.rendered || 0) > arguments[0] && "
            "!!document.querySelector('section[data-api]')",
            t0,
        )
        if done:
            return
        assert time.monotonic() < deadline, driver.find_element("id", "main").text
        time.sleep(0.05)


def _check_figures(driver: Any, live: Live, min_figures: int) -> list[dict[str, Any]]:
    """Every figure on the page equals its field in the JSON the page fetched (read again here)."""
    sections = driver.execute_script(COLLECT)
    assert sections
    checked = 0
    for sec in sections:
        data = _read(live, sec["api"])
        for item in sec["items"]:
            shown = _shown(item["text"], item["pct"])
            value = _resolve(data, item["k"])
            if item["live"]:  # moves with the clock (rates, ages): a number where the JSON has one
                assert (shown is None) == (value is None), item
                continue
            assert _agrees(shown, value), (sec["api"], item, value)
            checked += 1
    assert checked >= min_figures, checked
    return list(sections)


def _same_origin(driver: Any, live: Live) -> None:
    """No request left the service's origin: Chrome's network log and the Resource Timing API."""
    origin = urlsplit(live.url)
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    urls += driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    urls.append(driver.current_url)
    assert urls
    for u in urls:
        if u.startswith("data:"):  # inline (the empty favicon): no request at all
            continue
        parts = urlsplit(u)
        assert (parts.scheme, parts.netloc) == (origin.scheme, origin.netloc), u


def _shot(driver: Any, name: str) -> None:
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def _login(driver: Any, live: Live, key: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{live.url}/ui/")
    driver.execute_script("sessionStorage.clear()")
    driver.get(f"{live.url}/ui/")
    _wait(lambda: driver.find_element(By.ID, "login").is_displayed())
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.ID, "save-key").click()
    _wait(lambda: driver.execute_script("return !!document.querySelector('section[data-api]')"))


def _wait(cond: Any, timeout: float = 20.0) -> None:
    """Until ``cond()`` holds. The page re-renders itself every few seconds, so an element found a moment ago may
    be replaced before it is read: that (or its absence) counts as "not yet", never as an answer."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while True:
        try:
            if cond():
                return
        except (StaleElementReferenceException, NoSuchElementException):
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _text(driver: Any, selector: str) -> str:
    """The text of the element at ``selector``, read again if a re-render replaced it meanwhile."""
    out: list[str] = []
    _wait(lambda: out.append(driver.find_element("css selector", selector).text) is None)
    return out[-1]


def test_unauthenticated_visit_asks_for_a_key(live: Live, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{live.url}/ui/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(f"{live.url}/ui/#/experiment/ab")
    _wait(lambda: browser.find_element(By.ID, "login").is_displayed())
    assert "API key" in browser.find_element(By.ID, "login").text
    assert browser.find_element(By.ID, "main").text == ""
    _shot(browser, "login")
    # a key without the read scope is refused, and the page asks again
    browser.find_element(By.ID, "key").send_keys(ROUTER)
    browser.find_element(By.ID, "save-key").click()
    _wait(lambda: "refused" in browser.find_element(By.ID, "login-reason").text)
    assert "read" in browser.find_element(By.ID, "login-reason").text
    assert not browser.find_element(By.ID, "main").is_displayed()
    # the key lives in sessionStorage only
    assert browser.execute_script("return localStorage.length") == 0
    assert browser.get_cookies() == []
    _same_origin(browser, live)


def test_overview(live: Live, browser: Any) -> None:
    live.settle()
    _login(browser, live, READ)
    _visit(browser, live, "#/")
    _check_figures(browser, live, min_figures=20)
    text = browser.find_element("id", "main").text
    assert "pol-a" in text and "pol-b" in text and "ab" in text and "running" in text
    _shot(browser, "overview")
    _same_origin(browser, live)


def test_policy_page(live: Live, browser: Any) -> None:
    _login(browser, live, READ)
    for pid in ("pol-a", "pol-b"):
        _visit(browser, live, f"#/policy/{pid}")
        _check_figures(browser, live, min_figures=25)
        # the JSON API's own figures, not only the dashboard's copy of them
        info = live.admin.get(f"/v1/policies/{pid}").json()
        for item in browser.execute_script(COLLECT)[0]["items"]:
            if item["k"][0] == "info":
                assert _agrees(_shown(item["text"], item["pct"]), _resolve(info, item["k"][1:])), item
        charts = browser.find_elements("css selector", ".chart")
        assert len(charts) == 3 and all(c.find_element("css selector", "svg path") for c in charts)
        assert "share of decisions" in charts[0].text and "small" in charts[0].text
    assert "Pacer target" in browser.find_element("id", "main").text
    _shot(browser, "policy")
    _same_origin(browser, live)


def test_experiment_page(live: Live, browser: Any) -> None:
    _login(browser, live, READ)
    _visit(browser, live, "#/experiment/ab")
    sections = _check_figures(browser, live, min_figures=20)
    report = live.admin.get("/v1/experiments/ab").json()
    compared = 0
    for item in sections[0]["items"]:
        if item["k"][0] == "report":
            assert _agrees(_shown(item["text"], item["pct"]), _resolve(report, item["k"][1:])), item
            compared += 1
    assert compared >= 20
    assert report["arms"][1]["score_minus_control"] is not None  # the difference is shown with its interval
    assert "running" in _text(browser, "#exp-status")
    assert len(browser.find_elements("css selector", ".chart > svg")) == 3
    _shot(browser, "experiment")
    _same_origin(browser, live)


def test_recent_decisions_and_detail(live: Live, browser: Any) -> None:
    _login(browser, live, READ)
    _visit(browser, live, "#/decisions")
    sections = _check_figures(browser, live, min_figures=100)
    listed = _read(live, sections[0]["api"])
    for item in sections[0]["items"][:40]:  # each row equals GET /v1/decisions/{id}
        did = listed[item["k"][0]]["decision_id"]
        one = live.admin.get(f"/v1/decisions/{did}").json()
        assert _agrees(_shown(item["text"], item["pct"]), _resolve(one, item["k"][1:])), item
    _shot(browser, "decisions")
    first = browser.find_element("css selector", "a[href^='#/decision/']")
    did = first.get_attribute("href").split("#/decision/")[1]
    first.click()
    _wait(lambda: did in browser.find_element("id", "main").text)
    _check_figures(browser, live, min_figures=6)
    assert live.admin.get(f"/v1/decisions/{did}").json()["context_digest"] in browser.find_element("id", "main").text
    _shot(browser, "decision")
    _same_origin(browser, live)


def test_gateway_page(live: Live, browser: Any) -> None:
    _login(browser, live, READ)
    assert browser.find_element("id", "nav-gateway").is_displayed()
    _visit(browser, live, "#/gateway")
    _check_figures(browser, live, min_figures=9)
    assert "closed" in browser.find_element("id", "main").text
    _shot(browser, "gateway")
    _same_origin(browser, live)


def test_page_refreshes_by_itself(live: Live, browser: Any) -> None:
    _login(browser, live, READ)
    _visit(browser, live, "#/experiment/ab")
    before = _read(live, "/ui/api/experiments/ab")["report"]["arms"]
    shown = _text(browser, '[data-k=\'["report","arms",0,"decisions"]\']')
    assert int(shown) == before[0]["decisions"]
    live.traffic(40)
    after = _read(live, "/ui/api/experiments/ab")["report"]["arms"][0]["decisions"]
    assert after > before[0]["decisions"]
    sel = '[data-k=\'["report","arms",0,"decisions"]\']'
    _wait(lambda: browser.find_element("css selector", sel).text == str(after), timeout=15)  # no reload
    _check_figures(browser, live, min_figures=20)


def test_stop_needs_admin_scope(live: Live, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    _login(browser, live, READ)
    _visit(browser, live, "#/experiment/ab")
    browser.find_element(By.ID, "stop").click()
    browser.switch_to.alert.accept()
    _wait(lambda: "admin" in browser.find_element(By.ID, "flash").text)
    assert live.admin.get("/v1/experiments/ab").json()["status"] == "running"
    _login(browser, live, ADMIN)
    _visit(browser, live, "#/experiment/ab")
    browser.find_element(By.ID, "stop").click()
    browser.switch_to.alert.accept()
    _wait(lambda: "stopped" in browser.find_element(By.ID, "exp-status").text)
    assert live.admin.get("/v1/experiments/ab").json()["status"] == "stopped"
    assert not browser.find_elements(By.ID, "stop")
    _same_origin(browser, live)
