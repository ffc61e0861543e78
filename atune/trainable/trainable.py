"""The class API: subclass :class:`Trainable` and implement ``setup`` and ``step``."""

from __future__ import annotations

import copy
import os
import tempfile
import time
from typing import Any

from atune._executor._class_checkpoint import (
    checkpoint_dir_name,
    load_class_checkpoint,
    save_class_checkpoint,
)

__all__ = ["Trainable"]


class Trainable:
    """Base class of class-based trainables.

    atune creates one instance per trial inside the trial's worker and calls
    :meth:`step` repeatedly; each call is one training iteration whose returned
    dict is the result. Return ``{"done": True, ...}`` to end the trial.

    Override:
        setup(config, **kwargs): called once; ``kwargs`` are ``with_parameters`` values.
        step(): one iteration, returns a dict of metrics.
        save_checkpoint(checkpoint_dir): write state into the directory; may return a
            dict instead, which atune stores and hands back to ``load_checkpoint``.
        load_checkpoint(checkpoint): restore from the directory path (or the dict).
        cleanup(): release resources when the trial ends.
        reset_config(new_config): switch to a new config in place and return True, so
            the worker can be reused for another trial (``reuse_actors``).

    The 0.7 names ``_setup``, ``_train``, ``_save``, ``_restore``, ``_stop`` work too.

    Example:
        >>> class Quadratic(Trainable):
        ...     def setup(self, config):
        ...         self.x = config["x"]
        ...     def step(self):
        ...         self.x *= 0.5
        ...         return {"loss": self.x ** 2}
        >>> t = Quadratic({"x": 2.0})
        >>> t.train()["loss"]
        1.0
    """

    def __init__(self, config: dict[str, Any] | None = None, **setup_kwargs: Any) -> None:
        from atune import session

        self.config: dict[str, Any] = dict(config or {})
        self._iteration = 0
        self._time_total = 0.0
        backend = session._current_or_none()
        if backend is not None:
            ctx = backend.context
            self.trial_id, self.trial_name = ctx.trial_id, ctx.trial_name
            self.logdir = ctx.trial_dir
            self.trial_resources = ctx.get_trial_resources()
        else:
            self.trial_id, self.trial_name = "default", "default"
            self.logdir = tempfile.mkdtemp(prefix="atune_trainable_")
            self.trial_resources = {}
        self.setup(copy.deepcopy(self.config), **setup_kwargs)

    # ------------------------------------------------------------------ user hooks
    def setup(self, config: dict[str, Any], **kwargs: Any) -> None:
        """Set up the trainable; the default forwards to the 0.7 ``_setup``."""
        legacy = getattr(self, "_setup", None)
        if legacy is not None:
            legacy(config)

    def step(self) -> dict[str, Any]:
        """Run one training iteration and return its metrics."""
        legacy = getattr(self, "_train", None)
        if legacy is None:
            raise NotImplementedError(f"{type(self).__name__} must implement step()")
        return legacy()

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any] | None:
        """Save state into ``checkpoint_dir`` (or return it as a dict)."""
        legacy = getattr(self, "_save", None)
        if legacy is None:
            raise NotImplementedError(
                f"{type(self).__name__} must implement save_checkpoint() to be checkpointed"
            )
        out = legacy(checkpoint_dir)
        return out if isinstance(out, dict) else None

    def load_checkpoint(self, checkpoint: dict[str, Any] | str) -> None:
        """Restore state saved by :meth:`save_checkpoint`."""
        legacy = getattr(self, "_restore", None)
        if legacy is None:
            raise NotImplementedError(
                f"{type(self).__name__} must implement load_checkpoint() to be restored"
            )
        legacy(checkpoint)

    def cleanup(self) -> None:
        """Release resources; the default forwards to the 0.7 ``_stop``."""
        legacy = getattr(self, "_stop", None)
        if legacy is not None:
            legacy()

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Switch to ``new_config`` without restarting; return True if supported."""
        return False

    def update_resources(self, new_resources: dict[str, float]) -> None:
        """Called when the trial continues in this instance with other resources.

        ``self.trial_resources`` already holds the new resources; override to adapt
        (e.g. the number of data-loader workers).
        """

    def log_result(self, result: dict[str, Any]) -> None:
        """Called with every result after atune filled it in (inside the worker)."""

    @classmethod
    def default_resource_request(cls, config: dict[str, Any]) -> dict[str, float] | None:
        """Resources a trial of this class needs (None: the Tuner's default, 1 CPU)."""
        return None

    # ------------------------------------------------------------- direct use API
    @property
    def iteration(self) -> int:
        """Number of iterations run so far."""
        return self._iteration

    @property
    def training_iteration(self) -> int:
        return self._iteration

    def train(self) -> dict[str, Any]:
        """Run one step outside of a Tuner and fill in the basic result fields."""
        start = time.monotonic()
        result = dict(self.step() or {})
        self._iteration += 1
        elapsed = time.monotonic() - start
        self._time_total += elapsed
        result.setdefault("time_this_iter_s", elapsed)
        result.setdefault("done", False)
        result.update(training_iteration=self._iteration, time_total_s=self._time_total)
        return result

    def save(self, checkpoint_dir: str | None = None) -> str:
        """Save a checkpoint outside of a Tuner; returns its directory."""
        target = checkpoint_dir or os.path.join(self.logdir, checkpoint_dir_name(self._iteration))
        save_class_checkpoint(self, target, iteration=self._iteration)
        return target

    def restore(self, checkpoint_dir: str) -> None:
        """Restore from a directory written by :meth:`save`."""
        self._iteration = load_class_checkpoint(self, checkpoint_dir)

    def stop(self) -> None:
        """Release resources (calls :meth:`cleanup`)."""
        self.cleanup()
