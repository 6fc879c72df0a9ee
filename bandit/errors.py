"""Errors of the bandit package. Every one but ``MissingExtraError`` is a ``ValueError``, so callers that validate
input catch them together; the service maps each to one HTTP status in ``service/errors.py``.

    BanditError (ValueError)
    ├── InvalidInputError       a context, score, cost, weight or lambda that is malformed (NaN, wrong shape, range)
    ├── InvalidHyperparameterError   a constructor argument outside its allowed range
    ├── UnknownModelError       a model name the policy does not have (or an empty candidate list)
    ├── StateError              a state dict that does not fit the policy (shapes, keys, models)
    └── ArtifactError           an exported artifact that is tampered, unreadable or incompatible

    MissingExtraError (ImportError)   a policy needs an optional dependency that is not installed; the message
                                      names the extra (``pip install 'banditroute[onnx]'``)
"""


class BanditError(ValueError):
    """Base of the bandit package's errors."""


class InvalidInputError(BanditError):
    """A context, score, cost, weight or lambda that is malformed."""


class InvalidHyperparameterError(BanditError):
    """A hyperparameter outside its allowed range; the message names the parameter and the range."""


class UnknownModelError(BanditError):
    """A model name the policy does not have."""


class StateError(BanditError):
    """A state dict that does not fit the policy."""


class ArtifactError(BanditError):
    """An artifact that is tampered with, unreadable or incompatible."""


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message names the extra that installs it."""
