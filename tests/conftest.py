"""Shared fixtures: small record files written on the fly, and a slice of the bundled data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def pytest_configure(config: pytest.Config) -> None:
    # Feature caches of the tests go to a throwaway folder, never the user's ~/.cache.
    if "BANDITROUTE_CACHE_DIR" not in os.environ:
        import tempfile

        os.environ["BANDITROUTE_CACHE_DIR"] = tempfile.mkdtemp(prefix="banditroute-test-cache-")


WORDS = [
    "algebra",
    "integral",
    "proof",
    "theorem",
    "history",
    "war",
    "treaty",
    "empire",
    "biology",
    "cell",
    "protein",
    "enzyme",
    "law",
    "court",
    "contract",
    "statute",
    "code",
    "python",
    "function",
    "loop",
    "chemistry",
    "acid",
    "molecule",
    "bond",
    "physics",
    "force",
    "energy",
]


def synthetic_long(
    n_queries: int = 120, models: tuple[str, ...] = ("small", "medium", "large"), seed: int = 0, with_cost: bool = True
) -> pd.DataFrame:
    """A long-format frame whose best model depends on the topic words of the prompt."""
    rng = np.random.default_rng(seed)
    rows = []
    topics = [WORDS[i : i + 6] for i in range(0, len(WORDS), 6)]
    for q in range(n_queries):
        t = q % len(topics)
        prompt = " ".join(rng.choice(topics[t], size=8)) + f" question {q}"
        for j, m in enumerate(models):
            p = 0.2 + 0.6 * ((t + j) % len(models) == 0) + 0.1 * j
            row = {
                "query_id": f"q{q}",
                "benchmark": f"synth/topic{t}",
                "prompt": prompt,
                "model": m,
                "score": float(rng.random() < min(p, 1.0)),
                "output_chars": 100 * (j + 1),
            }
            if with_cost:
                row["cost_usd"] = 1e-4 * (3**j)
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture
def synthetic_frame() -> pd.DataFrame:
    return synthetic_long()


@pytest.fixture
def synthetic_parquet(tmp_path: Path) -> Path:
    path = tmp_path / "synth.parquet"
    synthetic_long().to_parquet(path)
    return path


@pytest.fixture(scope="session")
def mmlu_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 queries x 6 models of the bundled MMLU-Pro records, with the bundled price table beside them."""
    df = pd.read_parquet(DATA / "mmlu_pro.parquet")
    models = [
        "gpt-4o-2024-05-13",
        "gemini-1.5-flash-002",
        "Meta-Llama-3_1-70B-Instruct",
        "Meta-Llama-3_1-8B-Instruct",
        "Mistral-7B-Instruct-v0.2",
        "Phi-3-mini-4k-instruct",
    ]
    df = df[df["model"].isin(models)]
    complete = df.groupby("query_id")["model"].transform("count") == len(models)
    ids = df.loc[complete, "query_id"].drop_duplicates().sample(400, random_state=0)
    d = tmp_path_factory.mktemp("slice")
    path = d / "mmlu_slice.parquet"
    df[df["query_id"].isin(ids)].to_parquet(path)
    (d / "prices.csv").write_bytes((DATA / "prices.csv").read_bytes())
    return path
