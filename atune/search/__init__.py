"""Search spaces and search algorithms.

The search-space functions (``uniform``, ``randint``, ``choice``, ``grid_search``,
``sample_from``...) describe a param space; :class:`BasicVariantGenerator`, the default
searcher, turns it into trial configs; :class:`Searcher` is the protocol every search
algorithm implements.
"""

from __future__ import annotations

from typing import Any

from atune.errors import ConfigError, ConfigTypeError
from atune.search._base import FINISHED, Searcher, SyncSearcher
from atune.search._wrappers import ConcurrencyLimiter, Repeater, SearchGenerator
from atune.search.ask_tell import AskedTrial, AskTell
from atune.search.basic_variant import BasicVariantGenerator
from atune.search.sample import (
    Categorical,
    Domain,
    Float,
    Function,
    Grid,
    Integer,
    LogUniform,
    Normal,
    Quantized,
    Sampler,
    Uniform,
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)
from atune.search.suggestion import SuggestionAlgorithm
from atune.search.variant_generator import count_variants, generate_variants

#: Ray Tune's name for the base of search algorithms.
SearchAlgorithm = Searcher

#: Searchers that can be named in ``TuneConfig(search_alg="...")``: "module:Class",
#: imported only when named (the integrations' libraries are optional).
_SEARCHERS: dict[str, str] = {
    "variant_generator": "atune.search.basic_variant:BasicVariantGenerator",
    "random": "atune.search.basic_variant:BasicVariantGenerator",
    "basic_variant": "atune.search.basic_variant:BasicVariantGenerator",
    "optuna": "atune.search.optuna:OptunaSearch",
    "hyperopt": "atune.search.hyperopt:HyperOptSearch",
    "bayesopt": "atune.search.bayesopt:BayesOptSearch",
    "nevergrad": "atune.search.nevergrad:NevergradSearch",
    "zoopt": "atune.search.zoopt:ZOOptSearch",
    "bohb": "atune.search.bohb:TuneBOHB",
    "ax": "atune.search.ax:AxSearch",
}


def create_searcher(search_alg: str, **kwargs: Any) -> Searcher:
    """Build a searcher from its name, e.g. ``create_searcher("optuna", seed=0)``."""
    import importlib
    import inspect

    key = search_alg.lower()
    if key not in _SEARCHERS:
        raise ConfigError(
            f"`search_alg` must be one of {sorted(_SEARCHERS)} or a Searcher, got {search_alg!r}"
        )
    module, _, name = _SEARCHERS[key].partition(":")
    cls = getattr(importlib.import_module(module), name)
    signature = inspect.signature(cls)
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        accepted = ", ".join(p for p in signature.parameters if p not in ("args", "kwargs"))
        raise ConfigTypeError(
            f"search_alg {search_alg!r} ({name}): {exc}; it takes: {accepted}"
        ) from None
    return cls(**kwargs)


__all__ = [
    "FINISHED",
    "AskTell",
    "AskedTrial",
    "BasicVariantGenerator",
    "Categorical",
    "ConcurrencyLimiter",
    "Domain",
    "Float",
    "Function",
    "Grid",
    "Integer",
    "LogUniform",
    "Normal",
    "Quantized",
    "Repeater",
    "Sampler",
    "SearchAlgorithm",
    "SearchGenerator",
    "Searcher",
    "SuggestionAlgorithm",
    "SyncSearcher",
    "Uniform",
    "choice",
    "count_variants",
    "create_searcher",
    "generate_variants",
    "grid_search",
    "lograndint",
    "loguniform",
    "qlograndint",
    "qloguniform",
    "qrandint",
    "qrandn",
    "quniform",
    "randint",
    "randn",
    "sample_from",
    "uniform",
]
