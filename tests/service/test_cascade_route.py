"""The two-call cascade protocol over HTTP (no gateway: the caller calls the models itself): /v1/route gives the
first stage, POST /v1/route/{id}/answers the next stage or the answer, /v1/feedback trains the cascade; and the
protocol's 4xx errors. Answer reading (choice letters, a router's own pattern, text clusters)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from banditroute.bandit import import_artifact, to_bytes
from banditroute.bandit.cascade import AgreementCascade, Cascade
from banditroute.env.features import Featurizer
from banditroute.service.cascade_answers import AnswerReader, compile_pattern, extract_choice
from banditroute.service.gateway.cascade_config import parse_routers
from banditroute.service.gateway.config import UpstreamConfigError
from tests.service.conftest import MODELS, PROMPTS, import_policy

STAGES = [["small", "medium"], ["large"]]


@pytest.fixture
def cascade(admin: httpx.Client, featurizer: Featurizer, artifact: bytes) -> str:
    """``casc``: the agreement rule (escalates exactly when the first stage disagrees); ``learned``: the learned
    stop decision; ``main``: a single-call policy."""
    import_policy(admin, to_bytes(AgreementCascade(MODELS, 8, stages=STAGES, seed=0), featurizer), "casc")
    import_policy(admin, to_bytes(Cascade(MODELS, 8, stages=STAGES, seed=0), featurizer), "learned")
    import_policy(admin, artifact, "main")
    return "casc"


def post(admin: httpx.Client, did: str, **body: object) -> httpx.Response:
    return admin.post(f"/v1/route/{did}/answers", json=body)


def exported(admin: httpx.Client, pid: str) -> Any:
    return import_artifact(admin.get(f"/v1/policies/{pid}/export").content).policy


def feedback(admin: httpx.Client, did: str) -> None:
    fb = admin.post("/v1/feedback", json={"decision_id": did, "source": "user", "score": 1.0, "wait": True})
    assert fb.status_code == 202 and fb.json()["applied"], fb.text


def test_round_trip_to_the_answer_then_feedback(admin: httpx.Client, cascade: str) -> None:
    r = admin.post("/v1/route", json={"query": PROMPTS[1], "policy": cascade})
    assert r.status_code == 200, r.text
    first = r.json()
    did, stage = first["decision_id"], first["cascade"]
    assert stage["action"] == "call" and stage["models"] == ["small", "medium"]
    assert first["model"] == "small" and first["propensity"] == 1.0  # a fixed first stage: taken for sure
    assert stage["answers_url"] == f"/v1/route/{did}/answers"
    # feedback before the cascade has an answer: refused, nothing consumed
    early = admin.post("/v1/feedback", json={"decision_id": did, "source": "user", "score": 1.0})
    assert early.status_code == 409 and "has not returned an answer" in early.text
    # answers from a model the stage did not ask / missing ones
    bad = post(admin, did, answers={"small": "B", "large": "B"})
    assert bad.status_code == 422 and "not asked: ['large']" in bad.text
    bad = post(admin, did, answers={"small": "B"})
    assert bad.status_code == 422 and "missing for ['medium']" in bad.text
    # the first stage disagrees: escalate to large
    answers = {"small": "So the answer is (A).", "medium": "The answer is (C)."}
    r = post(admin, did, answers=answers, costs={"small": 0.001, "medium": 0.002})
    assert r.status_code == 200, r.text
    step = r.json()
    assert step["answers"] == {"small": "A", "medium": "C"} and step["step"]["action"] == "call"
    assert step["step"]["models"] == ["large"] and step["cost_usd"] == pytest.approx(0.003)
    r = post(admin, did, answers={"large": "The answer is (C)."}, costs={"large": 0.01})
    assert r.status_code == 200, r.text
    step = r.json()
    assert step["step"] == {**step["step"], "action": "stop", "answer": "C", "answer_model": "large"}
    assert step["cost_usd"] == pytest.approx(0.013)  # costs add up over the stages
    # posting again after the stop: 409
    again = post(admin, did, answers={"large": "C"})
    assert again.status_code == 409 and "already stopped" in again.text
    before = exported(admin, cascade)
    feedback(admin, did)
    after = exported(admin, cascade)
    assert after.n[MODELS.index("large")] == before.n[MODELS.index("large")] + 1  # the query level learned
    assert admin.post("/v1/feedback", json={"decision_id": did, "source": "user", "score": 1.0}).status_code == 409

    # the learned cascade: whatever it decides, its stop decisions learn from the feedback
    did = admin.post("/v1/route", json={"query": PROMPTS[2], "policy": "learned"}).json()["decision_id"]
    stop_decisions, models = 0, ["small", "medium"]
    while True:
        step = post(admin, did, answers={m: "The answer is (B)." if m != "medium" else "(D)" for m in models}).json()
        stop_decisions += set(step["pmf"]) == {"stop", "escalate"}
        if step["step"]["action"] == "stop":
            break
        models = step["step"]["models"]
    before = exported(admin, "learned")
    feedback(admin, did)
    assert exported(admin, "learned").stop_n.sum() == before.stop_n.sum() + stop_decisions >= 1


def test_protocol_errors(admin: httpx.Client, cascade: str) -> None:
    unknown = "casc." + "0" * 32
    r = post(admin, unknown, answers={"small": "B"})
    assert r.status_code == 404 and "unknown or expired decision" in r.text
    assert post(admin, "not-a-decision", answers={"small": "B"}).status_code == 422
    single = admin.post("/v1/route", json={"query": PROMPTS[0], "policy": "main"}).json()
    assert single["cascade"] is None
    r = post(admin, single["decision_id"], answers={"small": "B"})
    assert r.status_code == 409 and "single-call policy" in r.text
    did = admin.post("/v1/route", json={"query": PROMPTS[0], "policy": cascade}).json()["decision_id"]
    r = post(admin, did, answers={"small": "B", "medium": "B"}, costs={"large": 0.1})
    assert r.status_code == 422 and "not asked: ['large']" in r.text
    assert post(admin, did, answers={}).status_code == 422
    r = post(admin, did, answers={"small": "B", "medium": "B"}, kind="text")
    assert r.status_code == 200, r.text  # text answers, compared on the policy's featurizer
    assert r.json()["answers"]["small"] == r.json()["answers"]["medium"]  # identical texts agree


def test_choice_extraction_and_router_settings() -> None:
    cases = {
        "The answer is (B).": "B",
        "Answer: **D**": "D",
        "(A) looks right, but no: the answer is (C)": "C",
        " e. ": "E",
        "(e).": "E",
        "I cannot tell.": "",
        "": "",
    }
    for text, want in cases.items():
        assert extract_choice(text) == want, text
    own = AnswerReader("choice", compile_pattern(r"FINAL=(\w)"))
    assert own.labels({"a": "FINAL=x", "b": "the answer is (B)"}) == {"a": "X", "b": ""}
    readers = parse_routers({"c": {"answers": "text", "agreement_threshold": 0.9}}, UpstreamConfigError)
    assert readers["c"].kind == "text" and readers["c"].threshold == 0.9
    for raw, match in [
        ({"c": {"answers": "vote"}}, r'routers."c"\] answers: must be one of'),
        ({"c": {"choice_pattern": "(a)(b)"}}, "exactly one capture group"),
        ({"c": {"choice_pattern": "("}}, "not a regular expression"),
        ({"c": {"agreement_threshold": 0}}, r"agreement_threshold: must be a number in \(0, 1\]"),
        ({"c": {"extra": 1}}, "extra: unknown field"),
    ]:
        with pytest.raises(UpstreamConfigError, match=match):
            parse_routers(raw, UpstreamConfigError)


def test_text_answers_agree_by_similarity(featurizer: Featurizer) -> None:
    reader = AnswerReader("text", threshold=0.8)
    texts = {"small": PROMPTS[0], "medium": PROMPTS[0] + " ", "large": PROMPTS[1], "x": ""}
    labels = reader.labels(texts, featurizer)
    assert labels["small"] == labels["medium"] != labels["large"] and labels["x"] == ""
    with pytest.raises(ValueError, match="has none"):
        reader.labels(texts, None)
