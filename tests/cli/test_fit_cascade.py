"""``banditroute fit --policy cascade``: the stop decision is warm-started from the records' answers too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from banditroute.bandit import import_artifact

from .conftest import run

MODELS = ["small", "medium", "large"]
TOPICS = ["algebra equation", "history empire", "biology cell", "physics force", "law contract", "chemistry acid"]


def write_records(path: Path, with_answers: bool) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(120):
        prompt = f"question {i} about {TOPICS[i % len(TOPICS)]} and {TOPICS[(i * 7) % len(TOPICS)]}"
        agree = i % 3 != 0
        for j, m in enumerate(MODELS):
            answer = "B" if agree or m == "large" else "AC"[j % 2]
            row = {"query_id": f"q{i}", "benchmark": TOPICS[i % len(TOPICS)], "prompt": prompt, "model": m,
                   "score": float(answer == "B") if m != "large" else float(rng.random() < 0.9),
                   "cost_usd": [0.0001, 0.0003, 0.003][j]}  # fmt: skip
            if with_answers:
                row["pred"] = answer
            rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("with_answers", [True, False])
def test_fit_warm_starts_a_cascades_stop_decision_from_the_answers(tmp_path: Path, with_answers: bool) -> None:
    records = write_records(tmp_path / "r.csv", with_answers)
    out = tmp_path / "casc.zip"
    r = run("fit", "--records", str(records), "--policy", "cascade", "--features", "tfidf-svd", "--dim", "8",
            "--out", str(out))  # fmt: skip
    assert r.exit_code == 0, r.output
    policy: Any = import_artifact(out).policy
    assert policy.n.sum() > 0  # the query-level regressions, either way
    if with_answers:
        assert "stop decision fitted on the models' answers" in r.output
        assert policy.stop_n.sum() > 0
    else:
        assert "carry no answers" in r.output
        assert policy.stop_n.sum() == 0
