"""Reading a cascade's answers: from a model's response text to the label a cascade compares.

Two kinds, chosen per router (``[routers."<policy-id>"]`` in the upstreams file; default ``choice``):

- **choice**: the final choice letter of the response. The patterns of :data:`CHOICE_PATTERNS` are tried in
  order and the *last* match of the first pattern that matches wins (a model that reasons through "(A) is wrong,
  (B) ..." and ends with "the answer is (C)" answers C):

  1. ``answer is (X)``, ``answer: X``, ``Answer: **X**`` (the phrasing MMLU-Pro's prompts ask for);
  2. a response that is the choice alone: ``X``, ``(X)``, ``X.``.

  ``X`` is one of A-J (MMLU-Pro has ten options). A router may set its own ``choice_pattern`` (a regular
  expression with one capture group, replacing the list). A response with no match is no answer (``""``): it
  agrees with nothing, as a failed call does. The label is :func:`env.answers.normalise_choice`'s form.
- **text**: the response text itself, compared by :func:`env.answers.text_agreement` (cosine similarity of the
  policy's featurizer's vectors of the answers >= ``threshold``); the labels are the agreement clusters of the
  answers seen so far (``"#0"``, ``"#1"``, ...), recomputed over every answer at every decision.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from banditroute.env.answers import normalise_choice, query_labels

#: the default choice extractors, in order of preference (see the module docstring)
CHOICE_PATTERNS = (
    re.compile(r"answer\s*(?:is|:)\s*[:\s]*\**\s*[(\[]?\s*([A-J])\b", re.IGNORECASE),
    re.compile(r"^\s*[(\[]?\s*([A-J])\s*[)\].:]*\s*$", re.IGNORECASE),
)
KINDS = ("choice", "text")


def extract_choice(text: str, patterns: tuple[re.Pattern[str], ...] = CHOICE_PATTERNS) -> str:
    """The final choice letter of ``text`` (``""`` when no pattern matches)."""
    for pattern in patterns:
        found = list(pattern.finditer(text or ""))
        if found:
            return normalise_choice(found[-1].group(1))
    return ""


def compile_pattern(raw: str) -> re.Pattern[str]:
    """A router's ``choice_pattern``, checked: it compiles and has exactly one capture group.

    Raises:
        ValueError: it does not (the message says which).
    """
    try:
        pattern = re.compile(raw)
    except re.error as exc:
        raise ValueError(f"not a regular expression ({exc})") from exc
    if pattern.groups != 1:
        raise ValueError(f"must have exactly one capture group (the answer), has {pattern.groups}")
    return pattern


@dataclass(frozen=True)
class AnswerReader:
    """How one router reads answers (see the module docstring)."""

    kind: str = "choice"
    pattern: re.Pattern[str] | None = None
    threshold: float = 0.8

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"answers must be one of {list(KINDS)}, got {self.kind!r}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"agreement_threshold must be in (0, 1], got {self.threshold}")

    def labels(self, texts: Mapping[str, str], featurizer: Any = None) -> dict[str, str]:
        """The label of each answer in ``texts`` (model -> response text, ``""`` for a failed call), in its
        order. Text answers need the policy's fitted featurizer.

        Raises:
            ValueError: text answers and no featurizer.
        """
        if self.kind == "choice":
            patterns = (self.pattern,) if self.pattern is not None else CHOICE_PATTERNS
            return {m: extract_choice(t, patterns) for m, t in texts.items()}
        if featurizer is None:
            raise ValueError("text answers are compared on the policy's featurizer, and this policy has none")
        models = list(texts)
        got = query_labels([str(texts[m]).strip() for m in models], "text", featurizer, self.threshold)
        return dict(zip(models, got, strict=True))


DEFAULT_READER = AnswerReader()

__all__ = ["CHOICE_PATTERNS", "DEFAULT_READER", "KINDS", "AnswerReader", "compile_pattern", "extract_choice"]
