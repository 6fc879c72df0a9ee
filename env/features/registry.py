"""The registry of featurizers: adding one is a module in env/features/ and one line here."""

from __future__ import annotations

from banditroute.env.features.base import Engine
from banditroute.env.features.category import CategoryHead
from banditroute.env.features.lexical import Lexical
from banditroute.env.features.minilm import MiniLM
from banditroute.env.features.tfidf import TfidfSvd

FEATURIZERS: dict[str, type[Engine]] = {
    TfidfSvd.name: TfidfSvd,
    CategoryHead.name: CategoryHead,
    Lexical.name: Lexical,
    MiniLM.name: MiniLM,
}
