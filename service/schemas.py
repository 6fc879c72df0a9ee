"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, model_validator

from banditroute.service.schemas_cascade import CascadeStage

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
DECISION_PATTERN = r"^[A-Za-z0-9_-]{1,64}\.[0-9a-f]{32}$"
FiniteFloat = Field(allow_inf_nan=False)
#: a JSON number and nothing else: no booleans, no numeric strings
StrictNumber = StrictFloat | StrictInt


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RouteRequest(Strict):
    # the schema says what the validator below enforces, so that clients and generators know it
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "oneOf": [{"required": ["query"]}, {"required": ["features"]}],
            "not": {"required": ["policy", "experiment"]},
            "examples": [
                {"query": "Prove that the square root of 2 is irrational.", "policy": "main"},
                {
                    "query": "Summarise this contract clause.",
                    "policy": "main",
                    "candidates": ["small", "large"],
                    "lam": 2.0,
                    "max_cost_usd": 0.01,
                },
                {"query": "Write a Python loop over a dict.", "experiment": "ab1", "unit_id": "user-42"},
                {"features": [0.1, -0.3, 0.7, 0.0, 0.2, 0.5, -0.1, 0.9], "policy": "main"},
            ],
        },
    )

    query: str | None = Field(None, min_length=1, pattern=r"\S", description="The query text (or give `features`).")
    features: list[StrictNumber] | None = Field(
        None, min_length=1, max_length=4096, description="A precomputed feature vector of the policy's dimension."
    )
    candidates: list[str] | None = Field(
        None, min_length=1, max_length=256, description="Restrict the choice to these models."
    )
    lam: StrictNumber | None = Field(None, ge=0, le=1e6, description="Price of cost_scale USD in quality units.")
    max_cost_usd: StrictNumber | None = Field(
        None, gt=0, description="Budget preference: skip models estimated dearer."
    )
    unit_id: str | None = Field(None, min_length=1, max_length=256, description="User or session, for sticky A/B.")
    policy: str | None = Field(None, pattern=ID_PATTERN, description="Policy id (default: the configured one).")
    experiment: str | None = Field(None, pattern=ID_PATTERN, description="Route through this A/B experiment.")

    @model_validator(mode="after")
    def _one_input(self) -> RouteRequest:
        if (self.query is None) == (self.features is None):
            raise ValueError("give exactly one of `query` and `features`")
        if self.query is not None and not self.query.strip():
            raise ValueError("query must not be blank")
        if self.policy and self.experiment:
            raise ValueError("give `policy` or `experiment`, not both")
        return self


class RouteResponse(BaseModel):
    decision_id: str
    model: str
    propensity: float
    pmf: dict[str, float]
    policy: str
    policy_version: int
    lam: float
    experiment: str | None = None
    arm: str | None = None
    fallback: bool = False
    shadow_decisions: list[str] = Field(default_factory=list)
    cascade: CascadeStage | None = Field(
        None, description="A cascade policy's first stage: call its models, post their answers to answers_url."
    )


class FeedbackRequest(Strict):
    # strict numbers: true, false and "0.9" are refused (422), not coerced into a score
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {"decision_id": "main." + "0" * 32, "source": "user", "score": 1.0},
                {
                    "decision_id": "main." + "0" * 32,
                    "source": "evaluator",
                    "score": 0.7,
                    "cost_usd": 0.0021,
                    "latency_ms": 840.0,
                },
            ]
        },
    )

    decision_id: str = Field(pattern=DECISION_PATTERN)
    source: Literal["user", "evaluator"]
    score: StrictNumber = Field(ge=0, le=1, description="Quality of the answer in [0, 1] (a JSON number).")
    cost_usd: StrictNumber | None = Field(
        None, ge=0, le=1e6, description="Observed cost (default: the policy's estimate)."
    )
    latency_ms: StrictNumber | None = Field(None, ge=0, le=1e9, description="Observed latency, stored on the decision.")
    wait: StrictBool = Field(
        False, description="Answer only once the update is applied (bounded by the Redis deadline)."
    )


class FeedbackResponse(BaseModel):
    status: Literal["accepted"] = "accepted"
    decision_id: str
    source: str
    feedback_id: str
    applied: bool


class Budget(Strict):
    target_cost_usd: float = Field(gt=0, le=1e3)
    lr: float = Field(0.05, gt=0, le=10)
    lam_max: float = Field(100.0, gt=0, le=1e6)


class PolicyCreate(Strict):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "id": "main",
                    "policy": "linucb",
                    "models": ["small", "medium", "large"],
                    "dim": 8,
                    "hyperparameters": {"alpha": 0.5},
                },
                {
                    "id": "candidate",
                    "policy": "lints",
                    "models": ["small", "large"],
                    "dim": 8,
                    "budget": {"target_cost_usd": 0.002},
                },
            ]
        },
    )

    id: str = Field(pattern=ID_PATTERN)
    policy: str = Field(description="Registry name, e.g. linucb.")
    models: list[str] | None = Field(None, min_length=1, max_length=256)
    dim: int | None = Field(None, ge=1, le=4096, description="Feature dimension (default: the featurizer's).")
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    artifact_b64: str | None = Field(None, description="Warm start: an exported artifact (zip), base64.")
    featurizer_from: str | None = Field(None, pattern=ID_PATTERN, description="Copy this policy's featurizer.")
    budget: Budget | None = None


class FeedbackCounts(BaseModel):
    accepted: int
    applied: int
    skipped: int
    pending: int


class PolicyInfo(BaseModel):
    id: str
    policy: str
    models: list[str]
    dim: int
    version: int
    n_updates: int
    hyperparameters: dict[str, Any]
    has_featurizer: bool
    budget: dict[str, Any] | None
    pacer_lam: float
    feedback: FeedbackCounts
    generation: int = Field(description="Bumped by every replace; feedback on older generations is refused.")
    dead_letters: int = Field(0, description="Feedback events whose update raised (see /dead-letters).")


class DeadLetter(BaseModel):
    id: str
    did: str
    model: str
    source: str
    score: str
    cost: str
    error: str


class DecisionInfo(BaseModel):
    decision_id: str
    policy: str
    generation: int
    policy_version: int
    model: str
    propensity: float
    pmf: dict[str, float]
    candidates: list[str] | None = Field(description="The candidates asked for (null: every model of the policy).")
    lam: float
    context_digest: str = Field(description="sha256 of the context vector (little-endian float64).")
    time: float
    experiment: str | None = None
    arm: str | None = None
    shadow: bool = False
    cost_estimate_usd: float
    cost_observed_usd: float | None = None
    latency_ms: float | None = None
    feedback: dict[str, float] = Field(description="Scores received, by source.")


class ModelAdd(Strict):
    model: str = Field(min_length=1, max_length=256)


class ArmSpec(Strict):
    name: str = Field(pattern=ID_PATTERN)
    policy: str = Field(pattern=ID_PATTERN)
    weight: float = Field(1.0, ge=0, le=1e6)
    shadow: bool = False


class ExperimentCreate(Strict):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "id": "ab1",
                    "arms": [
                        {"name": "control", "policy": "main", "weight": 1.0},
                        {"name": "treatment", "policy": "candidate", "weight": 1.0},
                    ],
                    "control": "control",
                },
                {
                    "id": "shadow1",
                    "arms": [
                        {"name": "live", "policy": "main"},
                        {"name": "shadow", "policy": "candidate", "shadow": True},
                    ],
                },
            ]
        },
    )

    id: str = Field(pattern=ID_PATTERN)
    arms: list[ArmSpec] = Field(min_length=1, max_length=32)
    control: str | None = Field(None, description="Arm the others are compared with (default: the first).")

    @model_validator(mode="after")
    def _arms_valid(self) -> ExperimentCreate:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError("arm names must be distinct")
        serving = [a for a in self.arms if not a.shadow]
        if not serving or sum(a.weight for a in serving) <= 0:
            raise ValueError("at least one non-shadow arm with weight > 0 is needed")
        if self.control is not None and self.control not in names:
            raise ValueError(f"control {self.control!r} is not an arm")
        return self


class Summary(BaseModel):
    n: int
    mean: float | None
    ci95: list[float] | None
    var: float | None = None


class Difference(BaseModel):
    mean: float
    ci95: list[float]


class ArmReport(BaseModel):
    n: int = Field(description="Decisions made by this arm (feedback is counted in `feedback`).")
    name: str
    policy: str
    weight: float
    shadow: bool
    decisions: int
    feedback: int
    score: Summary
    cost_usd: Summary
    score_minus_control: Difference | None = None
    cost_minus_control: Difference | None = None


class ExperimentReport(BaseModel):
    id: str
    status: Literal["running", "stopped"]
    control: str
    arms: list[ArmReport]
