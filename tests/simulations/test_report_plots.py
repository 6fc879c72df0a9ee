"""Report plots: a title, labelled axes with units, and a legend outside the axes (it never hides a line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest

from banditroute.simulations import report as rep

MODELS = ["small", "large"]


def _report() -> dict[str, Any]:
    methods = {
        "linucb": {"cost_usd": 0.002, "quality": 0.7, "call_share": {"small": 0.6, "large": 0.4}},
        "random": {"cost_usd": 0.005, "quality": 0.5, "call_share": {"small": 0.5, "large": 0.5}},
        "single:small": {"cost_usd": 0.001, "quality": 0.5, "call_share": {"small": 1.0, "large": 0.0}},
        "single:large": {"cost_usd": 0.01, "quality": 0.8, "call_share": {"small": 0.0, "large": 1.0}},
    }
    curves = {"linucb": {"cost_usd": [0.001, 0.002, 0.004], "quality": [0.55, 0.7, 0.76]}}
    return {
        "dataset": {"path": "data/x.parquet", "models": MODELS},
        "methods": methods,
        "curves": {"cost_quality": curves},
    }


def _check(fig: Any, categorical_y: bool = False) -> None:
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert "(" in ax.get_xlabel(), "axis labels name their units"
    assert categorical_y or "(" in ax.get_ylabel(), "axis labels name their units"
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend()
    assert legend is not None
    box, axes = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert not box.overlaps(axes), "the legend sits outside the axes"
    plt.close(fig)


@pytest.mark.parametrize("make", [rep.cost_quality_figure, rep.call_shares_figure])
def test_evaluation_plots(make: Any) -> None:
    _check(make(_report()), categorical_y=make is rep.call_shares_figure)


def test_scenario_line_plot_adds_units_and_keeps_the_legend_out() -> None:
    plot = {
        "title": "Cumulative regret against the oracle",
        "xlabel": "step",
        "ylabel": "cumulative regret",
        "series": {n: {"x": [0, 1, 2], "y": [0, 1, 3]} for n in ("linucb", "lints", "eps", "random")},
        "hlines": [(1.0, "target")],
        "vlines": [1],
    }
    fig = rep.line_figure(plot)
    assert fig.axes[0].get_xlabel() == "step (queries routed)"
    _check(fig)


def test_files_are_written(tmp_path: Path) -> None:
    rep._plot_cost_quality(_report(), tmp_path / "cq.png")
    plot = {
        "title": "t",
        "xlabel": "step",
        "ylabel": "quality",
        "series": {"a": {"x": [0, 1], "y": [0, 1]}},
        "file": "a.png",
    }
    rep._line_plot(plot, tmp_path / "a.png")
    assert (tmp_path / "cq.png").stat().st_size > 1000 and (tmp_path / "a.png").stat().st_size > 1000
