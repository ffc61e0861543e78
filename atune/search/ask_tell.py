"""Ask/tell: drive any atune searcher yourself, without a Tuner or Ray.

For users who evaluate configurations on their own (a lab instrument, a remote
service, an existing job system) but want atune's search algorithms::

    from atune.search import AskTell, BasicVariantGenerator
    import atune as tune

    study = AskTell(
        BasicVariantGenerator(random_state=0),
        param_space={"x": tune.uniform(-5, 5)},
        metric="loss", mode="min", num_samples=20,
    )
    while (trial := study.ask_sync()) is not None:
        study.tell_sync(trial, {"loss": (trial.config["x"] - 1) ** 2})
    print(study.best.config)

The same object works from async code with ``await study.ask()`` / ``await study.tell()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio

from atune._metric import is_rankable, metric_number, validate_mode
from atune.errors import AtuneError, ConfigError
from atune.search._base import FINISHED, Searcher
from atune.search._wrappers import SearchGenerator, call_handler
from atune.search.basic_variant import BasicVariantGenerator

__all__ = ["AskTell", "AskedTrial"]


@dataclass
class AskedTrial:
    """A configuration handed out by :meth:`AskTell.ask`; tell its result back."""

    trial_id: str
    config: dict[str, Any]
    result: dict[str, Any] | None = field(default=None)
    error: bool = False


class AskTell:
    """Ask a searcher for configs and tell it their results.

    Args:
        searcher: Any atune :class:`~atune.search.Searcher`.
        param_space: The search space (as for ``Tuner``); may be empty when the
            searcher was given its own space.
        metric: Result field to optimise.
        mode: ``"min"`` or ``"max"``.
        num_samples: How many configs to hand out (-1: until the searcher finishes).
    """

    def __init__(
        self,
        searcher: Searcher,
        param_space: dict[str, Any] | None = None,
        *,
        metric: str | None = None,
        mode: str | None = None,
        num_samples: int = -1,
    ) -> None:
        validate_mode(mode)
        if not isinstance(searcher, BasicVariantGenerator):
            searcher = SearchGenerator(searcher)
        if not searcher.set_search_properties(
            metric, mode, param_space or {}, num_samples=num_samples
        ):
            raise ConfigError(
                f"{type(searcher).__name__} did not accept metric={metric!r}, mode={mode!r}"
            )
        self.searcher = searcher
        self.metric = metric or searcher.metric
        self.mode = mode or searcher.mode
        self.trials: list[AskedTrial] = []
        self._pending: dict[str, AskedTrial] = {}
        self._finished = False

    @property
    def finished(self) -> bool:
        """True once the searcher has no more configs to give."""
        return self._finished

    async def ask(self) -> AskedTrial | None:
        """The next config to evaluate, or None when the search is over.

        Raises:
            AtuneError: the searcher has nothing to suggest until results of the
                configs already asked for are told (e.g. a ConcurrencyLimiter).
        """
        if self._finished:
            return None
        trial_id = f"ask_{len(self.trials):05d}"
        config = await call_handler(self.searcher, "suggest", trial_id)
        if config == FINISHED:
            self._finished = True
            return None
        if config is None:
            raise AtuneError(
                f"{type(self.searcher).__name__} has no config to suggest until the "
                f"{len(self._pending)} pending one(s) are told: call tell() first"
            )
        trial = AskedTrial(trial_id, config)
        self.trials.append(trial)
        self._pending[trial_id] = trial
        return trial

    async def report(self, trial: AskedTrial, result: dict[str, Any]) -> None:
        """Tell an intermediate result of a trial that is still being evaluated."""
        self._require_pending(trial)
        await call_handler(self.searcher, "on_trial_result", trial.trial_id, result)

    async def tell(
        self, trial: AskedTrial, result: dict[str, Any] | None = None, *, error: bool = False
    ) -> None:
        """Tell the final result of a trial (or ``error=True`` if it failed)."""
        self._require_pending(trial)
        if not error:
            if not isinstance(result, dict):
                raise ConfigError(f"tell() needs a result dict (or error=True), got {result!r}")
            if self.metric is not None and self.metric not in result:
                raise ConfigError(
                    f"the result of {trial.trial_id} lacks the metric {self.metric!r} "
                    f"(it has {sorted(result)})"
                )
        del self._pending[trial.trial_id]
        trial.result, trial.error = result, error
        await call_handler(self.searcher, "on_trial_complete", trial.trial_id, result, error=error)

    @property
    def best(self) -> AskedTrial | None:
        """The told trial with the best metric (None before any)."""
        if self.metric is None or self.mode is None:
            raise ConfigError("`best` needs `metric` and `mode`")
        sign = 1.0 if self.mode == "max" else -1.0
        scored = []
        for trial in self.trials:
            score = metric_number((trial.result or {}).get(self.metric))
            if score is not None and is_rankable(score):
                scored.append((sign * score, trial))
        return max(scored, key=lambda pair: pair[0], default=(None, None))[1]

    def _require_pending(self, trial: AskedTrial) -> None:
        if trial.trial_id not in self._pending:
            raise AtuneError(f"{trial.trial_id} is not waiting for a result (told already?)")

    # ------------------------------------------------------------- sync facade
    def ask_sync(self) -> AskedTrial | None:
        """:meth:`ask` for synchronous code."""
        return anyio.run(self.ask)

    def tell_sync(
        self, trial: AskedTrial, result: dict[str, Any] | None = None, *, error: bool = False
    ) -> None:
        """:meth:`tell` for synchronous code."""
        anyio.run(lambda: self.tell(trial, result, error=error))

    def report_sync(self, trial: AskedTrial, result: dict[str, Any]) -> None:
        """:meth:`report` for synchronous code."""
        anyio.run(self.report, trial, result)
