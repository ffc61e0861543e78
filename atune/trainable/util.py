"""Wrapping trainables: ``with_parameters``, ``with_resources``, and inspecting them."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from atune.errors import ConfigError, ConfigTypeError
from atune.trainable.trainable import Trainable

__all__ = [
    "TrainableInfo",
    "inspect_trainable",
    "normalize_resources",
    "with_parameters",
    "with_resources",
]

Resources = Mapping[str, float] | Callable[[Any], Mapping[str, float]]


@dataclass(frozen=True)
class TrainableInfo:
    """What the controller needs to know about a user's trainable.

    Attributes:
        trainable: The user's function or :class:`Trainable` subclass, unwrapped.
        name: Its display name (function or class name).
        kind: ``"class"``, ``"function"`` (``def f(config)``), ``"async"``
            (``async def f(config)``), ``"generator"`` (``def f(config): yield {...}``)
            or ``"reporter"`` (0.7 ``def f(config, reporter)``).
        parameters: ``with_parameters`` keyword arguments (shipped once to workers).
        resources: ``with_resources`` request, a dict or a callable of the config.
    """

    trainable: Any
    name: str
    kind: str
    parameters: dict[str, Any] = field(default_factory=dict)
    resources: Resources | None = None


#: Attribute holding the :class:`TrainableInfo` of a ``with_parameters`` /
#: ``with_resources`` wrapper.
_INFO_ATTR = "_atune_info"


def _attached_info(trainable: Any) -> TrainableInfo | None:
    """The info of a wrapper built by :func:`_wrap`, or None for anything else.

    A class wrapper holds it in its own ``__dict__`` (a user's subclass of the wrapper
    is a trainable of its own). A function wrapper is recognised by its ``__wrapped__``
    being the trainable its info names: a user's decorator around the wrapper, whose
    ``functools.wraps`` copied the attribute, is not mistaken for the wrapper itself.
    """
    try:
        info = vars(trainable).get(_INFO_ATTR)
    except TypeError:  # no __dict__
        return None
    if not isinstance(info, TrainableInfo):
        return None
    if inspect.isclass(trainable) or getattr(trainable, "__wrapped__", None) is info.trainable:
        return info
    return None


def _wrap(info: TrainableInfo) -> Any:
    """What ``with_parameters``/``with_resources`` return, as Ray Tune does.

    A function trainable gives a plain function (so ``ray.remote`` and ``inspect``
    accept it) with the trainable's name and signature; calling it calls the
    trainable with the parameters. A class gives a subclass whose ``setup`` receives
    the parameters and whose ``default_resource_request`` returns the resources. In a
    Tuner, atune unwraps either and ships the parameters through the object store.
    """
    if info.kind == "class":
        return _wrap_class(info)
    fn, params = info.trainable, info.parameters
    wrapper: Any
    if info.kind == "async":

        async def wrapper(config: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            return await fn(config, *args, **{**params, **kwargs})

    elif info.kind == "generator":

        def wrapper(config: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            return (yield from fn(config, *args, **{**params, **kwargs}))

    else:

        def wrapper(config: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            return fn(config, *args, **{**params, **kwargs})

    functools.update_wrapper(wrapper, fn)  # name, doc, module; signature via __wrapped__
    wrapper.__name__ = info.name
    setattr(wrapper, _INFO_ATTR, info)
    return wrapper


def _wrap_class(info: TrainableInfo) -> type[Trainable]:
    base: type[Trainable] = info.trainable
    params, resources = info.parameters, info.resources

    class _Inner(base):  # type: ignore[valid-type,misc]
        def setup(self, config: dict[str, Any], **kwargs: Any) -> None:
            super().setup(config, **{**params, **kwargs})

        @classmethod
        def default_resource_request(cls, config: dict[str, Any]) -> Any:
            if resources is None:
                return super().default_resource_request(config)
            return resources(_AttrDict(config)) if callable(resources) else resources

    for attr in ("__name__", "__qualname__", "__module__", "__doc__"):
        setattr(_Inner, attr, getattr(base, attr))
    setattr(_Inner, _INFO_ATTR, info)
    return _Inner


def _kind_of(trainable: Any) -> str:
    if inspect.isclass(trainable):
        if issubclass(trainable, Trainable):
            return "class"
        raise ConfigTypeError(
            f"trainable class {trainable.__name__} must subclass atune.Trainable "
            "(or be a function taking `config`)"
        )
    if not callable(trainable):
        raise ConfigTypeError(
            "trainable must be a function `def f(config)` or a subclass of atune.Trainable, "
            f"got {type(trainable).__name__}: {trainable!r}"
        )
    # functools.partial objects and callable instances: look at what they call.
    fn = getattr(trainable, "func", trainable)
    call = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else type(fn).__call__
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call):
        return "async"
    if inspect.isgeneratorfunction(fn):
        return "generator"
    try:
        params = [
            p
            for p in inspect.signature(trainable).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return "function"
    if len(params) >= 2 and params[1].name in ("reporter", "status_reporter"):
        return "reporter"
    if len(params) > 2 or len(params) == 0:
        raise ConfigTypeError(
            f"trainable function {getattr(trainable, '__name__', trainable)!r} must take one "
            f"argument `config` (or `config, reporter` in the 0.7 API); it takes "
            f"{[p.name for p in params]}"
        )
    if len(params) == 2:
        return "reporter"
    return "function"


def inspect_trainable(trainable: Any) -> TrainableInfo:
    """Unwrap ``with_parameters``/``with_resources`` layers and classify the trainable."""
    info = _attached_info(trainable)
    if info is not None:
        return info
    if trainable is None:
        raise ConfigTypeError(
            "trainable must be a function or an atune.Trainable subclass, got None"
        )
    kind = _kind_of(trainable)
    name = getattr(trainable, "__name__", None) or type(trainable).__name__
    if name == "<lambda>":
        name = "lambda"
    # A decorator (functools.wraps) around a wrapper copied its info: the decorator is
    # the trainable now, and keeps the resources (as Ray Tune's copied attribute does).
    copied = getattr(trainable, _INFO_ATTR, None)
    resources = copied.resources if isinstance(copied, TrainableInfo) and kind != "class" else None
    return TrainableInfo(trainable=trainable, name=name, kind=kind, resources=resources)


def with_parameters(trainable: Any, **kwargs: Any) -> Any:
    """Pass large objects to a trainable through Ray's object store, once.

    ``kwargs`` are put in the object store when the experiment starts and handed to
    each trial: as keyword arguments to a function trainable
    (``def train(config, data=None)``) or to ``Trainable.setup(config, **kwargs)``.
    Unlike ``functools.partial``, a large dataset is serialised once, not per trial.

    Returns:
        As in Ray Tune: for a function, a new function with the same name and
        signature that calls it with ``kwargs``; for a class, a subclass whose
        ``setup`` receives them. Either can be wrapped again (``with_resources``).

    Example:
        >>> def train(config, data=None):
        ...     return {"n": len(data)}
        >>> wrapped = with_parameters(train, data=list(range(1000)))
        >>> wrapped({})["n"]
        1000
    """
    info = inspect_trainable(trainable)
    return _wrap(replace(info, parameters={**info.parameters, **kwargs}))


def with_resources(trainable: Any, resources: Resources) -> Any:
    """Attach a per-trial resource request to a trainable.

    Args:
        trainable: A function or :class:`Trainable` subclass.
        resources: A dict such as ``{"cpu": 2, "gpu": 1, "memory": 2e9, "my_res": 1}``
            (fractions allowed), a :class:`~atune.PlacementGroupFactory` (bundles for a
            trial that starts its own Ray workers), or a callable that takes the trial's
            config and returns either (``spec.config.x`` attribute access works too).

    Returns:
        For a function, a new function with the same name and signature (a plain
        function, so ``ray.remote`` accepts it; the function passed in is left
        unchanged, whereas Ray Tune sets an attribute on it); for a class, a subclass
        whose ``default_resource_request`` returns ``resources``, as in Ray Tune.
    """
    from atune.placement_groups import PlacementGroupFactory

    if not (isinstance(resources, (Mapping, PlacementGroupFactory)) or callable(resources)):
        raise ConfigTypeError(
            "`resources` must be a dict like {'cpu': 1}, an atune.PlacementGroupFactory, "
            f"or a callable of the config returning one, got {type(resources).__name__}"
        )
    if isinstance(resources, Mapping):
        normalize_resources(resources)  # validate now, at construction
    info = inspect_trainable(trainable)
    return _wrap(replace(info, resources=resources))


_ALIASES = {"cpu": "CPU", "gpu": "GPU", "CPU": "CPU", "GPU": "GPU", "memory": "memory"}


def normalize_resources(resources: Any) -> dict[str, float]:
    """Turn ``{"cpu": 1, "gpu": 0, "extra_cpu": 2, "custom": 1}`` into Ray's resource names.

    ``extra_cpu``/``extra_gpu`` (0.7) are added to the CPU/GPU request; a
    PlacementGroupFactory gives the sum of its bundles.
    """
    from atune.placement_groups import PlacementGroupFactory

    if isinstance(resources, PlacementGroupFactory):
        return resources.required_resources
    if not isinstance(resources, Mapping):
        raise ConfigTypeError(
            f"resources must be a dict like {{'cpu': 1, 'gpu': 0}}, got {resources!r}"
        )
    out: dict[str, float] = {}
    for key, value in resources.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(
                f"resource {key!r} must be a number >= 0, got {value!r} (in {dict(resources)})"
            )
        if key in ("extra_cpu", "extra_gpu"):
            name = key[len("extra_") :].upper()
        else:
            name = _ALIASES.get(key, key)
        out[name] = out.get(name, 0.0) + float(value)
    # As in Ray Tune: a dict without "cpu" asks for no CPU (e.g. {"gpu": 1}).
    out.setdefault("CPU", 0.0)
    return {k: v for k, v in out.items() if v > 0 or k == "CPU"}


class _AttrDict(dict[str, Any]):
    """A config dict that also allows ``spec.config.x`` / ``spec.x`` attribute access."""

    def __getattr__(self, name: str) -> Any:
        if name == "config":
            return self
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(name) from None
        return _AttrDict(value) if isinstance(value, dict) else value


def resource_request(
    info: TrainableInfo, config: dict[str, Any], default: Mapping[str, float] | None
) -> Any:
    """What one trial with ``config`` asks for: a resource dict or a PlacementGroupFactory."""
    from atune.placement_groups import PlacementGroupFactory

    request: Any = None
    if info.resources is not None:
        request = (
            info.resources
            if isinstance(info.resources, (Mapping, PlacementGroupFactory))
            else info.resources(_AttrDict(config))
        )
    elif info.kind == "class":
        request = info.trainable.default_resource_request(config)
    if request is None:
        request = default if default is not None else {"CPU": 1.0}
    return request


def resolve_resources(
    info: TrainableInfo, config: dict[str, Any], default: Mapping[str, float] | None
) -> dict[str, float]:
    """The resources one trial with ``config`` takes from the cluster (all bundles)."""
    return normalize_resources(resource_request(info, config, default))
