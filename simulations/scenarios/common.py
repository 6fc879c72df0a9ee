"""Pieces the scenarios share."""

from __future__ import annotations

from typing import Any

import numpy as np

from banditroute.bandit import Policy, make_policy
from banditroute.simulations.simulate import Context
from banditroute.simulations.stream import StreamData, moving_average, thin


def test_stream(ctx: Context) -> StreamData:
    p = ctx.prep
    return StreamData(p.x_test, p.test.quality, p.test.cost, p.test.models, p.cost_scale)


def policy(ctx: Context, name: str, models: tuple[str, ...] | None = None, **extra: Any) -> Policy:
    """A fresh policy of the registry with the config's hyperparameters for it (``[hyperparameters.NAME]``)."""
    hyper = {**ctx.cfg.get("hyperparameters", {}).get(name, {}), **extra}
    models = models or ctx.prep.train.models
    return make_policy(name, models, ctx.prep.x_train.shape[1], cost_scale=ctx.prep.cost_scale, seed=ctx.seed, **hyper)


def series(values: np.ndarray, points: int = 200) -> dict[str, list[int] | list[float]]:
    x, y = thin(values, points)
    return {"x": x, "y": y}


def ma_series(values: np.ndarray, window: int) -> dict[str, list[int] | list[float]]:
    return series(moving_average(values, window))
