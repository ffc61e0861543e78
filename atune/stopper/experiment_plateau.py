"""Stop the whole experiment once the best values across trials stop moving."""

from __future__ import annotations

import bisect
from typing import Any

from atune._metric import check_mode
from atune.stopper._base import (
    Stopper,
    check_int,
    check_metric,
    check_positive,
    metric_value,
    pstdev,
)

__all__ = ["ExperimentPlateauStopper"]


class ExperimentPlateauStopper(Stopper):
    """Stop the experiment when the ``top`` best values of ``metric`` have plateaued.

    The stopper keeps the ``top`` best values of ``metric`` reported by any trial (the
    smallest for ``mode="min"``, the largest for ``mode="max"``). The top values have
    *plateaued* when ``top`` values have been seen and their population standard
    deviation is ``< std``. Every result carrying the metric updates the top values and
    then the count of consecutive plateaued results (reset to 0 by a result after
    which they have not plateaued). :meth:`stop_all` is True once that count is
    greater than ``patience``; the result that makes it so also stops its own trial.

    Results that do not carry ``metric`` as a number (missing, None, NaN) are ignored.

    Args:
        metric: Metric to watch; ``"a/b"`` looks into nested result dicts.
        std: The top values have plateaued when their std is below this (> 0).
        top: How many of the best values to consider (>= 2).
        mode: ``"min"`` or ``"max"``: which values are the best.
        patience: Number of consecutive plateaued results to tolerate before
            stopping (>= 0); with 0 the first plateaued result stops the experiment.

    Example:
        >>> stopper = ExperimentPlateauStopper("loss", top=2, patience=1)
        >>> [stopper(t, {"loss": 1.0}) for t in ("a", "b", "c")]
        [False, False, True]
        >>> stopper.stop_all()
        True
    """

    def __init__(
        self,
        metric: str,
        std: float = 0.001,
        top: int = 10,
        mode: str = "min",
        patience: int = 0,
    ) -> None:
        self._metric = check_metric(metric)
        self._mode = check_mode(mode)
        # One value has a std of 0 whatever it is: a top of 1 would stop at once.
        self._top = check_int(top, name="top", minimum=2)
        self._std = check_positive(std, name="std")
        self._patience = check_int(patience, name="patience", minimum=0)
        self._top_values: list[float] = []  # sorted ascending, at most `top` long
        self._plateaued_results = 0

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        value = metric_value(result, self._metric)
        if value is None:
            return self.stop_all()
        bisect.insort(self._top_values, value)
        if len(self._top_values) > self._top:
            # Drop the worst value: the largest when minimising, the smallest else.
            self._top_values.pop(-1 if self._mode == "min" else 0)
        if self.has_plateaued():
            self._plateaued_results += 1
        else:
            self._plateaued_results = 0
        return self.stop_all()

    def has_plateaued(self) -> bool:
        """True if ``top`` values were seen and their std is below ``std``."""
        return len(self._top_values) == self._top and pstdev(self._top_values) < self._std

    def stop_all(self) -> bool:
        return self.has_plateaued() and self._plateaued_results > self._patience

    def __repr__(self) -> str:
        return (
            f"ExperimentPlateauStopper(metric={self._metric!r}, std={self._std}, "
            f"top={self._top}, mode={self._mode!r}, patience={self._patience})"
        )
