"""Ray Tune 0.7's ``ray.tune.suggest`` names, for porting 0.7 scripts.

``from atune.suggest import HyperOptSearch`` works like ``from ray.tune.suggest import
HyperOptSearch`` did; new code imports from :mod:`atune.search`. The integrations are
imported only when named, as their libraries are optional.
"""

from __future__ import annotations

import importlib
from typing import Any

from atune.search import (
    BasicVariantGenerator,
    ConcurrencyLimiter,
    Repeater,
    SearchAlgorithm,
    Searcher,
    SearchGenerator,
)
from atune.search.suggestion import SuggestionAlgorithm

#: Integration classes, imported on first use: name -> module.
_LAZY = {
    "AxSearch": "atune.search.ax",
    "BayesOptSearch": "atune.search.bayesopt",
    "HyperOptSearch": "atune.search.hyperopt",
    "NevergradSearch": "atune.search.nevergrad",
    "OptunaSearch": "atune.search.optuna",
    "TuneBOHB": "atune.search.bohb",
    "ZOOptSearch": "atune.search.zoopt",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'atune.suggest' has no attribute {name!r}")


__all__ = [
    "BasicVariantGenerator",
    "ConcurrencyLimiter",
    "Repeater",
    "SearchAlgorithm",
    "SearchGenerator",
    "Searcher",
    "SuggestionAlgorithm",
    *sorted(_LAZY),
]
