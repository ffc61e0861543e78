"""Finding out *what* makes an object unserialisable, to say so in the error; and
making a trainable's exception fit to travel back to the driver."""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable, Iterator
from typing import Any

from atune.errors import SerializationError, TrialError

__all__ = ["check_serializable", "shipped_values", "transportable", "unsendable_config"]


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


def shipped_values(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """The values of a param space or config that travel to workers, with their paths.

    Constants, ``grid_search`` values and ``choice`` categories (walked into when they
    are dicts, lists or tuples). Domains and ``sample_from`` functions are not: they run
    on the driver, and only the values they give are sent.
    """
    from atune.search.sample import Categorical, Domain

    if isinstance(value, Domain):
        if isinstance(value, Categorical):
            for i, option in enumerate(value.categories):
                yield from shipped_values(option, f"{where}.categories[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from shipped_values(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from shipped_values(item, f"{where}[{i}]")
    else:
        yield where, value


def unsendable_value(where: str, value: Any, cause: BaseException) -> SerializationError:
    """The error for a config value a worker cannot receive, naming its path."""
    return SerializationError(
        f"{where} (a {type(value).__name__}) cannot be sent to a Ray worker with the "
        f"trial's config: {cause}. Create such objects inside the trainable, from a "
        "picklable value in param_space (a number, a string, a dict of settings)."
    )


def unsendable_config(
    config: Any, where: str, dumps: Callable[[Any], bytes]
) -> SerializationError | None:
    """The error naming the first value of ``config`` that ``dumps`` cannot pickle."""
    for path, value in shipped_values(config, where):
        try:
            dumps(value)
        except Exception as exc:
            return unsendable_value(path, value, exc)
    return None


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
