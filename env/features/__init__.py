"""Query features: featurizers fitted on training prompts, local, deterministic, saved without pickle.

One module per kind (:mod:`.tfidf`, :mod:`.category`, :mod:`.lexical`, :mod:`.minilm`), registered in
:mod:`.registry`; ``kind="concat"`` joins several. :class:`Featurizer` runs a spec; :mod:`.cache` keeps fitted
featurizers and computed features on disk.
"""

from banditroute.env.features.base import Engine, FeaturizerError, FeaturizerSpec
from banditroute.env.features.cache import cache_dir, cross_fit_cached, fit_cached, transform_cached
from banditroute.env.features.featurizer import Featurizer
from banditroute.env.features.registry import FEATURIZERS

__all__ = [
    "FEATURIZERS",
    "Engine",
    "Featurizer",
    "FeaturizerError",
    "FeaturizerSpec",
    "cache_dir",
    "cross_fit_cached",
    "fit_cached",
    "transform_cached",
]
