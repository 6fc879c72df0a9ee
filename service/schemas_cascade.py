"""Bodies of the two-call cascade protocol (``/v1/route`` on a cascade policy, then
``POST /v1/route/{decision_id}/answers`` until the cascade stops)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

StrictNumber = StrictFloat | StrictInt


class CascadeStage(BaseModel):
    """A cascade's step: call ``models`` (in parallel) and post their answers, or stop and return ``answer``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "action": "call",
                    "models": ["small", "medium"],
                    "stage": 0,
                    "answers_url": "/v1/route/main.0123456789abcdef0123456789abcdef/answers",
                },
                {
                    "action": "stop",
                    "models": [],
                    "stage": 2,
                    "answer": "B",
                    "answer_model": "large",
                    "answers_url": None,
                },
            ]
        }
    )

    action: Literal["call", "stop"] = Field(description="`call`: call `models` and post their answers; `stop`: done.")
    models: list[str] = Field(description="The models to call now, in parallel (empty when stopping).")
    stage: int = Field(description="Stages already done when this step was decided.")
    answer: str | None = Field(None, description="The answer label returned (stop): a choice, or a text cluster.")
    answer_model: str | None = Field(None, description="The called model whose own response to return (stop).")
    answers_url: str | None = Field(None, description="Where to post the answers of `models` (call).")


class CascadeAnswers(BaseModel):
    """The answers of the stage that is out: every model it asked, ``""`` for a call that failed."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "answers": {"small": "... so the answer is (B).", "medium": "The answer is (C)."},
                    "costs": {"small": 0.00012, "medium": 0.0009},
                },
                {"answers": {"small": "B", "medium": ""}},
                {"answers": {"small": "Paris is the capital.", "medium": "The capital is Paris."}, "kind": "text"},
            ]
        },
    )

    answers: dict[str, str] = Field(
        min_length=1,
        max_length=64,
        description='Model -> its response text ("" if the call failed). Choice answers are read as the final '
        'choice letter ("the answer is (X)"); text answers are compared by similarity.',
    )
    costs: dict[str, StrictNumber] | None = Field(
        None, description="Model -> what its call cost (USD); a model left out is charged the policy's estimate."
    )
    kind: Literal["choice", "text"] | None = Field(
        None,
        description="How to compare the answers (default: the router's `answers` in the upstreams file, else "
        "`choice`); fixed by the first post of a decision.",
    )


class CascadeStepResponse(BaseModel):
    """The next step after a stage's answers (the same decision id throughout)."""

    decision_id: str
    policy: str
    step: CascadeStage
    propensity: float = Field(description="Probability of what this step does (stop or escalate).")
    pmf: dict[str, float] = Field(description="The step's distribution: {stop, escalate} (or {stop: 1} forced).")
    answers: dict[str, str] = Field(description="The answer label of every model called so far.")
    cost_usd: float = Field(description="Cost of every call so far.")


__all__ = ["CascadeAnswers", "CascadeStage", "CascadeStepResponse"]
