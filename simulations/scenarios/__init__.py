"""One module per scenario; each has ``run(ctx) -> results`` (see simulations.simulate)."""
