"""A user's own records with no workarounds: a price table by flag, the records' own split column, duplicate
prompts merged (or kept), the featurizer chosen by flag; each refusal names the flag that fixes it, and a failed
run leaves no half-written output directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from banditroute.simulations.simulate import parse_overrides
from tests.cli.conftest import assert_user_error, run
from tests.conftest import synthetic_long

POLICIES = "linucb,shared-linucb"


@pytest.fixture
def own(tmp_path: Path) -> dict[str, Path]:
    """Records without costs (models 'small', 'medium', 'large'), a split column, one duplicated prompt, and a
    price table elsewhere (nothing beside the records)."""
    df = synthetic_long(160, with_cost=False)
    q = df["query_id"].str[1:].astype(int)
    df["split"] = np.where(q < 110, "train", "test")
    dup = df[df["query_id"] == "q7"].copy()
    dup["query_id"] = "q7-copy"
    df = pd.concat([df, dup])
    d = tmp_path / "mine"
    d.mkdir()
    records = d / "recs.csv"
    df.to_csv(records, index=False)
    prices = tmp_path / "my_prices.csv"
    prices.write_text("model,input_usd_per_mtok,output_usd_per_mtok\nsmall,0.1,0.2\nmedium,1,2\nlarge,10,30\n")
    return {"records": records, "prices": prices, "out": tmp_path / "out"}


def evaluate(own: dict[str, Path], *extra: str) -> tuple[int, dict]:
    r = run(
        "evaluate", "--records", str(own["records"]), "--out", str(own["out"]), "--policies", POLICIES, "--dim", "8",
        *extra,
    )  # fmt: skip
    report = json.loads((own["out"] / "report.json").read_text()) if r.exit_code == 0 else {}
    return r.exit_code, report


def test_prices_by_flag_and_the_records_own_split(own: dict[str, Path]) -> None:
    code, report = evaluate(own, "--prices", str(own["prices"]), "--split-column", "split")
    assert code == 0
    ds = report["dataset"]
    assert (ds["n_train"], ds["n_test"]) == (110, 50)  # the column's split, with q7-copy merged into q7
    assert ds["n_merged_duplicates"] == 1 and ds["split"] == "column 'split'"
    # derived costs: large is the dearest model at the price table's rates
    assert report["reference"]["best_single_cost_usd"] > 0


def test_keep_duplicates_keeps_the_copy(own: dict[str, Path]) -> None:
    code, report = evaluate(own, "--prices", str(own["prices"]), "--split-column", "split", "--keep-duplicates")
    assert code == 0
    assert report["dataset"]["n_merged_duplicates"] == 0
    assert report["dataset"]["n_train"] + report["dataset"]["n_test"] == 161


def test_missing_prices_name_the_flag_and_leave_no_output(own: dict[str, Path]) -> None:
    r = run("evaluate", "--records", str(own["records"]), "--out", str(own["out"]), "--policies", POLICIES)
    assert_user_error(r, "--prices FILE")
    assert not own["out"].exists()
    assert not [p for p in own["out"].parent.iterdir() if p.name.startswith(".out.partial")]


def test_a_price_table_lacking_a_model_names_it_and_the_flag(own: dict[str, Path], tmp_path: Path) -> None:
    partial = tmp_path / "partial.csv"
    partial.write_text("model,input_usd_per_mtok,output_usd_per_mtok\nsmall,0.1,0.2\nmedium,1,2\n")
    r = run("fit", "--records", str(own["records"]), "--out", str(tmp_path / "a.zip"), "--prices", str(partial))
    assert_user_error(r, "'large'", "--prices FILE")


def test_a_missing_price_file_and_a_bad_split_column(own: dict[str, Path], tmp_path: Path) -> None:
    r = run("evaluate", "--records", str(own["records"]), "--out", str(own["out"]), "--prices", str(tmp_path / "x"))
    assert_user_error(r, "--prices", "no such file")
    r = run(
        "evaluate", "--records", str(own["records"]), "--out", str(own["out"]), "--prices", str(own["prices"]),
        "--split-column", "fold",
    )  # fmt: skip
    assert_user_error(r, "no column 'fold'", "split")


def test_nan_scores_refusal_names_the_flag(own: dict[str, Path], tmp_path: Path) -> None:
    df = pd.read_csv(own["records"])
    df.loc[5, "score"] = np.nan
    bad = tmp_path / "nan.csv"
    df.to_csv(bad, index=False)
    r = run("evaluate", "--records", str(bad), "--out", str(own["out"]), "--prices", str(own["prices"]))
    assert_user_error(r, "--nan-scores missing")


def test_every_feature_set_is_a_row_per_learner(own: dict[str, Path]) -> None:
    code, report = evaluate(own, "--prices", str(own["prices"]), "--features", "category,tfidf-svd+lexical")
    assert code == 0
    names = set(report["methods"])
    for learner in ("linucb[full]", "shared-linucb[online]", "supervised_ridge"):
        assert f"{learner} @category" in names and f"{learner} @tfidf-svd+lexical" in names
    assert "best_single" in names and "best_single @category" not in names  # context-free: reported once
    md = (own["out"] / "report.md").read_text()
    assert "**Wins:**" in md and "@category" in md


def test_unknown_features_are_refused(own: dict[str, Path]) -> None:
    assert_user_error(evaluate_raw(own, "--features", "category+bert"), "--features", "category+bert")


def evaluate_raw(own: dict[str, Path], *extra: str):  # type: ignore[no-untyped-def]
    return run("evaluate", "--records", str(own["records"]), "--out", str(own["out"]), *extra)


def test_one_benchmark_falls_back_from_the_category_default(tmp_path: Path) -> None:
    df = synthetic_long(90)
    df["benchmark"] = "only-one"
    path = tmp_path / "one.parquet"
    df.to_parquet(path)
    r = run("evaluate", "--records", str(path), "--out", str(tmp_path / "o"), "--policies", "linucb", "--dim", "8")
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["dataset"]["features"] == "tfidf-svd"


def test_set_takes_dotted_keys_and_refuses_a_flat_hyperparameter_value() -> None:
    assert parse_overrides(["hyperparameters.knn.alpha=0.01", "hyperparameters.knn.memory=100"]) == {
        "hyperparameters": {"knn": {"alpha": 0.01, "memory": 100}}
    }
    r = run("simulate", "online", "--out", "/tmp/never-written", "--quick", "--set", "hyperparameters=3")
    assert_user_error(r, "table of tables", "hyperparameters.NAME.PARAM")
