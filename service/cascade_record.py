"""A served cascade's record on its decision, and the arithmetic around it (no I/O).

A cascade decision is one logged decision (one id, the first stage's propensity in ``propensity``/``pmf``, as any
decision) whose hash also holds:

- ``cascade``: the record as JSON (never pickle): every step with its action, models, stage, distribution,
  propensity, lambda and, for a stop decision, its context (``features``: base64 of little-endian float64); the
  answer label of every called model (``""`` for a failed call or no answer), the answer lengths, the cost of
  every call (USD), the calls made (outcome, status, ms), the answer kind;
- ``cascade_state``: ``calling`` (a stage is out), ``done`` (stopped: the last step is the answer returned) or
  ``aborted`` (an upstream 4xx ended it); feedback is accepted only on ``done`` (keys.FEEDBACK_SCRIPT);
- ``cascade_n``: steps recorded (the two-call protocol's check-and-set counter).

The feedback script copies ``cascade`` into the log entry, so the learner (:func:`apply_cascade`, called by
:func:`service.eventlog.apply_entry`) calls :meth:`Cascade.learn` with exactly what the request saw.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from banditroute.bandit import Decision
from banditroute.bandit.cascade import Cascade, CascadeStep
from banditroute.service.cascade_answers import AnswerReader

#: answer text kept on a text-kind record per model (the two-call protocol recomputes clusters from it)
TEXT_KEEP = 4000


def is_cascade(policy: Any) -> bool:
    return isinstance(policy, Cascade)


def step_json(s: CascadeStep) -> dict[str, Any]:
    feats = None if s.features is None else base64.b64encode(np.asarray(s.features, "<f8").tobytes()).decode()
    return {
        "action": s.action,
        "models": list(s.models),
        "answer": s.answer,
        "answer_model": s.answer_model,
        "stage": s.stage,
        "pmf": s.pmf,
        "propensity": s.propensity,
        "lam": s.lam,
        "kind": s.kind,
        "features": feats,
    }


def step_of(d: Mapping[str, Any]) -> CascadeStep:
    raw = d.get("features")
    feats = None if raw is None else np.frombuffer(base64.b64decode(raw), dtype="<f8").copy()
    return CascadeStep(
        str(d["action"]),
        tuple(str(m) for m in d["models"]),
        d.get("answer"),
        d.get("answer_model"),
        int(d["stage"]),
        {str(k): float(v) for k, v in d["pmf"].items()},
        float(d["propensity"]),
        float(d["lam"]),
        feats,
        str(d.get("kind", "first")),
    )


@dataclass
class CascadeRecord:
    """What a cascade did so far (see the module docstring)."""

    steps: list[CascadeStep]
    lam: float
    candidates: list[str] | None
    kind: str = ""
    answers: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    lengths: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def last(self) -> CascadeStep:
        return self.steps[-1]

    @property
    def state(self) -> str:
        return "done" if self.last.action == "stop" else "calling"

    @property
    def total_cost(self) -> float:
        return float(sum(self.costs.values()))

    def to_json(self) -> str:
        doc = {
            "v": 1,
            "kind": self.kind,
            "lam": self.lam,
            "candidates": self.candidates,
            "steps": [step_json(s) for s in self.steps],
            "answers": self.answers,
            "texts": self.texts,
            "lengths": self.lengths,
            "costs": self.costs,
            "calls": self.calls,
        }
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> CascadeRecord:
        d = json.loads(raw)
        if not isinstance(d, dict) or d.get("v") != 1:
            raise ValueError("not a version-1 cascade record")
        return cls(
            steps=[step_of(s) for s in d["steps"]],
            lam=float(d["lam"]),
            candidates=d.get("candidates"),
            kind=str(d.get("kind", "")),
            answers={str(k): str(v) for k, v in d.get("answers", {}).items()},
            texts={str(k): str(v) for k, v in d.get("texts", {}).items()},
            lengths={str(k): float(v) for k, v in d.get("lengths", {}).items()},
            costs={str(k): float(v) for k, v in d.get("costs", {}).items()},
            calls=list(d.get("calls", [])),
        )

    def fields(self, state: str | None = None) -> dict[str, str]:
        """The decision hash fields that hold this record."""
        return {"cascade": self.to_json(), "cascade_state": state or self.state, "cascade_n": str(len(self.steps))}


def first_step(policy: Cascade, x: np.ndarray, decision: Any, candidates: Sequence[str] | None) -> CascadeStep:
    """The first stage of a cascade whose query-level decision is ``decision`` (a :class:`bandit.Decision` made
    by the service's decider: the first model, drawn with its propensity): one model, or the fixed first stage
    (propensity 1)."""
    if policy.stages is not None:
        return policy.first_stage(x, candidates, decision.lam)
    return CascadeStep("call", (decision.model,), None, None, 0, decision.pmf_dict(), decision.propensity, decision.lam)


def start(policy: Cascade, fields: dict[str, Any], decision: Any, x: np.ndarray) -> CascadeStep:
    """Begin a cascade on a decision about to be logged: its first stage, whose record is added to the decision's
    ``fields`` (state ``calling``).

    Raises:
        ValueError: no candidate is left for the first stage.
    """
    cands = json.loads(fields["candidates"]) if fields.get("candidates") else None
    step = first_step(policy, x, decision, cands)
    if not step.models:
        raise ValueError(f"the cascade has no model to call first among the candidates {cands}")
    fields.update(CascadeRecord([step], float(decision.lam), cands).fields())
    return step


def fixed_stage_decision(policy: Cascade, step: CascadeStep, decision: Any) -> Any:
    """The logged query-level action of a fixed first stage: the stage (its first model named), taken with
    probability 1; the decider's draw (made with the policy's exploration floor) is not what happens."""
    j = policy.index_of(step.models[0])
    p = np.zeros(policy.k)
    p[j] = 1.0
    return Decision(step.models[0], j, p, 1.0, policy.models, decision.lam)


def advance(
    policy: Cascade,
    x: np.ndarray,
    rec: CascadeRecord,
    texts: Mapping[str, str],
    costs: Mapping[str, float],
    reader: AnswerReader,
    featurizer: Any = None,
) -> CascadeStep:
    """Take the answers of the stage that is out (``texts``: model -> response text, ``""`` for a failed call;
    ``costs``: model -> USD), decide the next step and append it to ``rec``.

    Raises:
        ValueError: the answers are not those of the stage that is out, or the cascade has stopped.
    """
    if rec.last.action != "call":
        raise ValueError("the cascade already returned its answer")
    asked = set(rec.last.models)
    unasked = sorted(set(texts) - asked)
    if unasked:
        raise ValueError(f"answers from models that were not asked: {unasked}; this stage asked {sorted(asked)}")
    missing = sorted(asked - set(texts))
    if missing:
        raise ValueError(f'answers missing for {missing}: post every model of the stage ("" for a failed call)')
    bad = sorted(set(costs) - asked)
    if bad:
        raise ValueError(f"costs for models that were not asked: {bad}")
    rec.kind = rec.kind or reader.kind
    new = {m: str(texts[m]) for m in rec.last.models}  # the stage's order: "the model answered last" is defined
    for m, t in new.items():
        rec.lengths[m] = float(len(t))
        rec.costs[m] = float(costs[m])
    if reader.kind == "text":  # agreement clusters over every answer so far
        rec.texts.update({m: t[:TEXT_KEEP] for m, t in new.items()})
        rec.answers = reader.labels(rec.texts, featurizer)
    else:
        rec.answers.update(reader.labels(new))
    step = policy.decide(x, rec.answers, rec.lam, rec.candidates, rec.lengths)
    rec.steps.append(step)
    return step


def apply_cascade(policy: Any, x: np.ndarray, raw: bytes, score: float, weight: float) -> None:
    """The learner's update for feedback on a cascade decision: :meth:`Cascade.learn` on the recorded steps,
    answers and costs.

    Raises:
        TypeError: the policy is not a cascade. ValueError: the record is not a finished cascade's.
    """
    if not isinstance(policy, Cascade):
        raise TypeError(f"a cascade record's feedback reached a {type(policy).__name__}, not a cascade policy")
    rec = CascadeRecord.from_json(raw)
    policy.learn(x, rec.steps, rec.answers, rec.costs, score, weight)


__all__ = [
    "CascadeRecord",
    "advance",
    "apply_cascade",
    "first_step",
    "fixed_stage_decision",
    "is_cascade",
    "start",
    "step_json",
    "step_of",
]
