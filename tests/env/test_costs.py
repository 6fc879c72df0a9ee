from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from banditroute.env.costs import CHARS_PER_TOKEN, DEFAULT_OUTPUT_CHARS, PriceTable, PriceTableError
from banditroute.env.records import load_records


def test_cost_formula_by_hand() -> None:
    table = PriceTable({"a": 2.0, "b": 10.0}, {"a": 6.0, "b": 30.0})
    got = table.cost(np.array(["a", "b"]), np.array([400.0, 800.0]), np.array([1000.0, np.nan]))
    want_a = (400 / CHARS_PER_TOKEN * 2.0 + 1000 / CHARS_PER_TOKEN * 6.0) / 1e6
    want_b = (800 / CHARS_PER_TOKEN * 10.0 + DEFAULT_OUTPUT_CHARS / CHARS_PER_TOKEN * 30.0) / 1e6
    np.testing.assert_allclose(got, [want_a, want_b])


def test_derived_cost_uses_output_chars_column(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "query_id": ["q1", "q1"],
            "benchmark": ["b", "b"],
            "prompt": ["x" * 40, "x" * 40],
            "model": ["a", "b"],
            "score": [1.0, 0.0],
            "output_chars": [400, np.nan],
        }
    )
    df.to_csv(tmp_path / "r.csv", index=False)
    (tmp_path / "prices.csv").write_text("model,input_usd_per_mtok,output_usd_per_mtok\na,1,2\nb,3,4\n")
    rs = load_records(tmp_path / "r.csv")
    assert rs.cost[0, 0] == pytest.approx((10 * 1 + 100 * 2) / 1e6)
    assert rs.cost[0, 1] == pytest.approx((10 * 3 + DEFAULT_OUTPUT_CHARS / 4 * 4) / 1e6)


def test_given_cost_wins_over_prices(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {"query_id": ["q"], "benchmark": ["b"], "prompt": ["p"], "model": ["zz"], "score": [1.0], "cost_usd": [0.5]}
    )
    df.to_parquet(tmp_path / "r.parquet")
    assert load_records(tmp_path / "r.parquet").cost[0, 0] == 0.5  # no price table needed


@pytest.mark.parametrize(
    ("csv", "match"),
    [
        ("model,input_usd_per_mtok\na,1\n", r"missing column\(s\) \['output_usd_per_mtok'\]"),
        ("model,input_usd_per_mtok,output_usd_per_mtok\na,1,x\n", r"row 2 \(model 'a'\): output_usd_per_mtok"),
        ("model,input_usd_per_mtok,output_usd_per_mtok\na,-1,1\n", r"input_usd_per_mtok must be a finite number >= 0"),
        ("model,input_usd_per_mtok,output_usd_per_mtok\na,1,1\na,2,2\n", r"model 'a' is listed twice"),
    ],
)
def test_bad_price_tables(tmp_path: Path, csv: str, match: str) -> None:
    (tmp_path / "p.csv").write_text(csv)
    with pytest.raises(PriceTableError, match=match):
        PriceTable.load(tmp_path / "p.csv")


def test_bundled_price_table_covers_bundled_models() -> None:
    root = Path(__file__).resolve().parents[2] / "data"
    table = PriceTable.load(root / "prices.csv")
    for name in ("mmlu_pro.parquet", "routellm_gpt4_mixtral.parquet"):
        table.check_models(pd.read_parquet(root / name, columns=["model"])["model"].unique())
