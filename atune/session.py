"""Functions a trainable calls while it runs: ``report``, ``get_checkpoint``, ``get_context``.

They talk to the trial's worker, which buffers results until the driver collects
them. ``report`` returns at once unless the buffer is full (backpressure).
In an ``async def`` trainable, ``await atune.report(...)``: the await is where the
trainable yields to the worker while the buffer is full.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from atune.errors import AtuneError, ConfigTypeError

if TYPE_CHECKING:
    from atune.checkpoint import Checkpoint

__all__ = ["TuneContext", "get_checkpoint", "get_context", "get_trial_resources", "report"]


@dataclass(frozen=True)
class TuneContext:
    """Facts about the trial a trainable runs in (``atune.get_context()``)."""

    trial_id: str
    trial_name: str
    trial_dir: str
    experiment_name: str
    trial_resources: dict[str, float] = field(default_factory=dict)

    def get_trial_id(self) -> str:
        return self.trial_id

    def get_trial_name(self) -> str:
        return self.trial_name

    def get_trial_dir(self) -> str:
        return self.trial_dir

    def get_experiment_name(self) -> str:
        return self.experiment_name

    def get_trial_resources(self) -> dict[str, float]:
        return dict(self.trial_resources)


class _SessionBackend:
    """What a worker provides to the functions of this module (see ``_executor/_worker``)."""

    context: TuneContext
    checkpoint: Checkpoint | None

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint | None) -> _Awaitable:
        raise NotImplementedError


# Each running trial binds its worker into the context its trainable runs in: the
# trainable's thread (sync functions and classes) or task (async functions). So
# several trials can share a process (the local executor), each with its own session.
_backend: contextvars.ContextVar[_SessionBackend | None] = contextvars.ContextVar(
    "atune_session", default=None
)
# A worker process that runs one trial at a time (a Ray actor) also registers its
# worker here, so that threads the trainable starts itself (which begin with an
# empty context) can still report. Never set in a process shared by trials.
_process_backend: _SessionBackend | None = None


def _context_for(backend: _SessionBackend) -> contextvars.Context:
    """A copy of the current context in which this module talks to ``backend``."""
    context = contextvars.copy_context()
    context.run(_backend.set, backend)
    return context


def _set_process_backend(backend: _SessionBackend | None) -> None:
    """Register (or, with None, remove) the sole trial of a dedicated worker process."""
    global _process_backend
    _process_backend = backend


def _current_or_none() -> _SessionBackend | None:
    """The running trial's worker, or None outside of a trial."""
    backend = _backend.get()
    return backend if backend is not None else _process_backend


def _current() -> _SessionBackend:
    backend = _current_or_none()
    if backend is None:
        raise AtuneError(
            "atune.report(), get_checkpoint() and get_context() only work inside a "
            "trainable run by atune (Tuner.fit() or tune.run()). Call your function "
            "through a Tuner instead of directly. (A thread your trainable starts "
            "begins with an empty context: start it with "
            "contextvars.copy_context().run(...) to report from it.)"
        )
    return backend


class _Awaitable:
    """The value of :func:`report`: ignore it in sync code, ``await`` it in async code."""

    __slots__ = ("_wait",)

    def __init__(self, wait: Any = None) -> None:
        self._wait = wait

    def __await__(self) -> Generator[Any, None, None]:
        if self._wait is not None:
            yield from self._wait().__await__()


_DONE = _Awaitable()


def report(metrics: dict[str, Any], *, checkpoint: Checkpoint | None = None) -> _Awaitable:
    """Report one result (and optionally a checkpoint) from a trainable.

    Each call is one training iteration: ``training_iteration`` counts the calls.
    The checkpoint's directory is copied into the trial directory, so it may be a
    temporary directory.

    Args:
        metrics: A dict of metrics, e.g. ``{"loss": 0.3}``. Keys are strings.
        checkpoint: A :class:`atune.Checkpoint` of the trainable's state.

    Example:
        >>> def train(config):                                  # doctest: +SKIP
        ...     for step in range(10):
        ...         atune.report({"loss": (config["x"] - step) ** 2})
        >>> async def train_async(config):                      # doctest: +SKIP
        ...     for step in range(10):
        ...         await atune.report({"loss": (config["x"] - step) ** 2})
    """
    if not isinstance(metrics, dict):
        raise TypeError(f"atune.report() takes a dict of metrics, got {type(metrics).__name__}")
    if checkpoint is not None:
        _check_checkpoint(checkpoint)
    return _current().report(metrics, checkpoint)


def _check_checkpoint(checkpoint: Any) -> None:
    from atune.checkpoint import Checkpoint

    if isinstance(checkpoint, Checkpoint):
        return
    if isinstance(checkpoint, dict):
        fix = (
            "write the dict to files in a directory (e.g. with pickle or json) and pass "
            "checkpoint=atune.Checkpoint.from_directory(that_dir)"
        )
    elif isinstance(checkpoint, (str, os.PathLike)):
        fix = f"pass checkpoint=atune.Checkpoint.from_directory({os.fspath(checkpoint)!r})"
    else:
        fix = "pass checkpoint=atune.Checkpoint.from_directory(path) for a directory of files"
    raise ConfigTypeError(
        "atune.report(checkpoint=...) must be an atune.Checkpoint, got "
        f"{type(checkpoint).__name__} {_short_repr(checkpoint)}: {fix}"
    )


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def get_checkpoint() -> Checkpoint | None:
    """The checkpoint to resume from, or None when the trial starts fresh."""
    return _current().checkpoint


def get_context() -> TuneContext:
    """The running trial's id, name, directory and resources."""
    return _current().context


def get_trial_resources() -> dict[str, float]:
    """Resources the running trial was given, e.g. ``{"CPU": 1.0}``."""
    return _current().context.get_trial_resources()
