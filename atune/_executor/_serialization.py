"""Finding out *what* makes an object unserialisable, to say so in the error; and
making a trainable's exception fit to travel back to the driver."""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable, Iterator
from typing import Any

from atune.errors import SerializationError, TrialError

__all__ = ["check_serializable", "transportable"]


def _references(obj: Any) -> Iterator[tuple[str, Any]]:
    """Named objects a function or class drags along when pickled by value."""
    if inspect.isfunction(obj):
        try:
            cv = inspect.getclosurevars(obj)
        except (TypeError, ValueError):
            return
        yield from cv.nonlocals.items()
        yield from cv.globals.items()
    elif inspect.isclass(obj):
        for name, value in vars(obj).items():
            if not name.startswith("__"):
                yield name, value
    elif hasattr(obj, "__dict__"):
        yield from vars(obj).items()


def _culprit(obj: Any, dumps: Callable[[Any], bytes], depth: int = 0) -> str | None:
    for name, value in _references(obj):
        try:
            dumps(value)
        except Exception as exc:
            if depth < 3 and (inspect.isfunction(value) or inspect.isclass(value)):
                inner = _culprit(value, dumps, depth + 1)
                if inner:
                    return f"`{name}` -> {inner}"
            return f"`{name}` (a {type(value).__name__}: {exc})"
    return None


def check_serializable(obj: Any, what: str, dumps: Callable[[Any], bytes]) -> None:
    """Raise :class:`SerializationError` if ``dumps(obj)`` fails, naming the culprit."""
    try:
        dumps(obj)
    except Exception as exc:
        name = getattr(obj, "__name__", type(obj).__name__)
        culprit = _culprit(obj, dumps)
        detail = f"it refers to {culprit}, which cannot be pickled" if culprit else str(exc)
        raise SerializationError(
            f"{what} {name!r} cannot be sent to a Ray worker: {detail}. Create such objects "
            "inside the trainable, or pass data with atune.with_parameters()."
        ) from exc


def transportable(exc: BaseException, tb: str) -> BaseException:
    """The exception itself when it survives pickling; a TrialError stand-in otherwise."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        try:
            import cloudpickle  # ray's dependency; pickles classes defined in __main__

            cloudpickle.loads(cloudpickle.dumps(exc))
            return exc
        except Exception:
            return TrialError(
                f"{type(exc).__name__}: {exc}", exc_type=type(exc).__name__, traceback=tb
            )
