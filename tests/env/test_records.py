from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from banditroute.env.records import LOADERS, RecordsError, load_records
from tests.conftest import synthetic_long


def write(df: pd.DataFrame, path: Path) -> Path:
    name = path.name
    if name.endswith(".parquet"):
        df.to_parquet(path)
    elif name.endswith((".csv", ".csv.gz")):
        df.to_csv(path, index=False)
    elif name.endswith((".jsonl", ".jsonl.gz")):
        df.to_json(path, orient="records", lines=True)
    else:
        path.write_text(df.to_csv(index=False))
    return path


@pytest.mark.parametrize("suffix", sorted(LOADERS))
def test_every_loader_gives_the_same_record_set(tmp_path: Path, suffix: str) -> None:
    df = synthetic_long(30)
    ref = load_records(write(df, tmp_path / "ref.parquet"))
    got = load_records(write(df, tmp_path / f"recs{suffix}"))
    assert got.models == ("large", "medium", "small")
    assert len(got) == 30
    np.testing.assert_array_equal(got.quality, ref.quality)
    np.testing.assert_allclose(got.cost, ref.cost)
    assert list(got.prompts) == list(ref.prompts)
    assert list(got.query_ids) == list(ref.query_ids)


def test_dense_matrices_follow_the_rows(synthetic_frame: pd.DataFrame, tmp_path: Path) -> None:
    rs = load_records(write(synthetic_frame, tmp_path / "a.parquet"), models=["small", "large"])
    assert rs.models == ("small", "large")
    row = synthetic_frame[(synthetic_frame.query_id == "q7") & (synthetic_frame.model == "large")].iloc[0]
    i = list(rs.query_ids).index("q7")
    assert rs.quality[i, 1] == row.score
    assert rs.cost[i, 1] == pytest.approx(row.cost_usd)
    assert rs.benchmarks[i] == row.benchmark
    assert rs.extras["output_chars"].shape == (len(rs), 2)  # extra columns are kept, pivoted
    assert rs.extras["output_chars"][i, 1] == row.output_chars


BAD_FILES = [
    ("missing column", lambda d: d.drop(columns=["score"]), r"missing column\(s\) \['score'\]"),
    ("score above 1", lambda d: d.assign(score=d.score.where(d.index != 5, 1.5)), r"row 6: score 1\.5 .*\[0, 1\]"),
    ("negative score", lambda d: d.assign(score=d.score.where(d.index != 2, -0.1)), r"row 3: score -0\.1"),
    ("NaN score", lambda d: d.assign(score=d.score.where(d.index != 4, np.nan)), r"row 5: score nan"),
    (
        "duplicate row",
        lambda d: pd.concat([d, d.iloc[[3]]], ignore_index=True),
        r"row \d+: duplicate \(query_id, model\)",
    ),
    ("empty model", lambda d: d.assign(model=d.model.where(d.index != 1, None)), r"row 2: model is empty"),
    ("negative cost", lambda d: d.assign(cost_usd=d.cost_usd.where(d.index != 0, -1.0)), r"row 1: cost_usd -1\.0"),
]


@pytest.mark.parametrize(("case", "mutate", "match"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_bad_files_are_refused_with_file_row_and_fix(
    tmp_path: Path, case: str, mutate, match: str, suffix: str
) -> None:
    path = write(mutate(synthetic_long(10)), tmp_path / f"bad{suffix}")
    with pytest.raises(RecordsError, match=match) as err:
        load_records(path)
    assert str(path) in str(err.value)
    assert "Fix" in str(err.value) or "expected" in str(err.value) or "missing column" in str(err.value)


def test_unknown_model_in_price_table(tmp_path: Path) -> None:
    df = synthetic_long(10, with_cost=False)
    path = write(df, tmp_path / "nocost.csv")
    (tmp_path / "prices.csv").write_text("model,input_usd_per_mtok,output_usd_per_mtok\nsmall,1,2\nmedium,1,2\n")
    with pytest.raises(RecordsError, match=r"model\(s\) \['large'\] have no cost_usd and are not in the price table"):
        load_records(path)


def test_no_price_table_at_all(tmp_path: Path) -> None:
    path = write(synthetic_long(10, with_cost=False), tmp_path / "nocost.csv")
    with pytest.raises(RecordsError, match="no price table"):
        load_records(path)


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecordsError, match="unknown record format"):
        load_records(write(synthetic_long(5), tmp_path / "x.xlsx"))
    with pytest.raises(RecordsError, match="no such file"):
        load_records(tmp_path / "absent.parquet")
    (tmp_path / "garbage.parquet").write_bytes(b"not parquet")
    with pytest.raises(RecordsError, match="cannot parse"):
        load_records(tmp_path / "garbage.parquet")


def test_incomplete_queries_dropped_or_refused(tmp_path: Path) -> None:
    df = synthetic_long(20)
    df = df[~((df.query_id == "q3") & (df.model == "medium"))]
    path = write(df, tmp_path / "inc.parquet")
    rs = load_records(path)
    assert len(rs) == 19 and rs.n_dropped_incomplete == 1
    assert "q3" not in set(rs.query_ids)
    assert len(load_records(path, models=["small", "large"])) == 20  # restricting models keeps q3
    with pytest.raises(RecordsError, match=r"query 'q3' has no score for \['medium'\]"):
        load_records(path, missing="error")


def test_nan_scores_can_mean_missing_explicitly(tmp_path: Path) -> None:
    df = synthetic_long(10)
    df.loc[df.index[4], "score"] = np.nan
    path = write(df, tmp_path / "nan.parquet")
    rs = load_records(path, nan_scores="missing")
    assert len(rs) == 9 and rs.n_dropped_incomplete == 1


def test_unknown_model_selection(synthetic_parquet: Path) -> None:
    with pytest.raises(RecordsError, match=r"unknown model\(s\) \['huge'\]"):
        load_records(synthetic_parquet, models=["small", "huge"])


def test_split_is_seeded_disjoint_and_complete(synthetic_parquet: Path) -> None:
    rs = load_records(synthetic_parquet)
    a_train, a_test = rs.split(0.3, seed=1)
    b_train, b_test = rs.split(0.3, seed=1)
    c_train, c_test = rs.split(0.3, seed=2)
    assert list(a_test.query_ids) == list(b_test.query_ids)
    assert list(a_test.query_ids) != list(c_test.query_ids)
    assert len(a_test) == 36 and len(a_train) == 84
    assert set(a_train.query_ids).isdisjoint(a_test.query_ids)
    assert set(a_train.query_ids) | set(a_test.query_ids) == set(rs.query_ids)
    with pytest.raises(ValueError, match="test_frac"):
        rs.split(1.0)


def test_out_of_domain_split_by_benchmark(synthetic_parquet: Path) -> None:
    rs = load_records(synthetic_parquet)
    train, test = rs.split_by_benchmark(["synth/topic0"])
    assert set(test.benchmarks) == {"synth/topic0"}
    assert "synth/topic0" not in set(train.benchmarks)
    with pytest.raises(RecordsError, match="empty train or test"):
        rs.split_by_benchmark(["nothing"])
    assert len(rs.with_benchmarks("synth")) == len(rs)


def test_bundled_data_matches_its_reference_figures() -> None:
    root = Path(__file__).resolve().parents[2] / "data"
    rs = load_records(root / "routellm_gpt4_mixtral.parquet", merge_duplicates=False)
    assert load_records(root / "routellm_gpt4_mixtral.parquet").n_merged_duplicates == 105
    ref = (
        json.loads(
            (Path(__file__).resolve().parents[3] / "shared/data/routellm_gpt4_mixtral.reference.json").read_text()
        )
        if (Path(__file__).resolve().parents[3] / "shared/data").exists()
        else None
    )
    assert len(rs) == 15521 and rs.n_models == 2
    assert rs.quality.max(axis=1).mean() == pytest.approx(0.8654, abs=1e-4)
    if ref:
        assert rs.quality.mean(axis=0).max() == pytest.approx(ref["all"]["best_single_accuracy"], abs=1e-4)
    assert rs.cost_derived and (rs.cost > 0).all()


def test_identical_prompts_are_merged_with_mean_scores(tmp_path: Path) -> None:
    df = synthetic_long(12, seed=1)
    dup = df[df["query_id"] == "q3"].copy()
    dup["query_id"] = "q3-again"
    dup["score"] = 1.0 - dup["score"]
    dup["cost_usd"] = dup["cost_usd"] * 3
    path = write(pd.concat([df, dup]), tmp_path / "dup.parquet")
    merged = load_records(path)
    assert len(merged) == 12 and merged.n_merged_duplicates == 1
    assert "q3-again" not in set(merged.query_ids)
    i = list(merged.query_ids).index("q3")
    np.testing.assert_allclose(merged.quality[i], 0.5)  # s and 1 - s averaged
    kept = load_records(path, merge_duplicates=False)
    assert len(kept) == 13 and kept.n_merged_duplicates == 0
    np.testing.assert_allclose(merged.cost[i], 2 * kept.cost[list(kept.query_ids).index("q3")])


def test_the_records_own_split_column(tmp_path: Path) -> None:
    df = synthetic_long(20)
    q = df["query_id"].str[1:].astype(int)
    df["split"] = np.where(q < 12, "train", np.where(q < 17, "test", "test_ood"))
    rs = load_records(write(df, tmp_path / "s.parquet"))
    train, test, ood = rs.split_by_column("split")
    assert (len(train), len(test), len(ood) if ood else 0) == (12, 5, 3)
    assert set(train.query_ids).isdisjoint(test.query_ids)
    with pytest.raises(RecordsError, match=r"no column 'fold'.*split"):
        rs.split_by_column("fold")
    df["split"] = np.where(q < 12, "train", "validation")
    with pytest.raises(RecordsError, match=r"value\(s\) \['validation'\].*'train', 'test'"):
        load_records(write(df, tmp_path / "t.parquet")).split_by_column("split")


def test_per_query_column_for_labels(tmp_path: Path) -> None:
    rs = load_records(write(synthetic_long(10), tmp_path / "l.parquet"))
    assert list(rs.column("benchmark")) == list(rs.benchmarks)
    np.testing.assert_allclose(rs.column("output_chars"), 300.0)  # the first model (large) in column order


def test_nan_score_error_names_the_flag(tmp_path: Path) -> None:
    df = synthetic_long(10)
    df.loc[3, "score"] = np.nan
    with pytest.raises(RecordsError, match="--nan-scores missing"):
        load_records(write(df, tmp_path / "n.parquet"))


def test_unknown_price_names_the_model_and_the_flag(tmp_path: Path) -> None:
    df = synthetic_long(10, with_cost=False)
    path = write(df, tmp_path / "p.parquet")
    with pytest.raises(RecordsError, match="--prices FILE"):
        load_records(path)
    prices = tmp_path / "mine.csv"
    prices.write_text("model,input_usd_per_mtok,output_usd_per_mtok\nsmall,0.1,0.2\nmedium,1,2\n")
    with pytest.raises(RecordsError, match=r"\['large'\].*--prices FILE"):
        load_records(path, prices=prices)
    prices.write_text(prices.read_text() + "large,10,20\n")
    assert load_records(path, prices=prices).cost_derived
