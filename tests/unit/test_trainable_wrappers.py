"""with_parameters / with_resources return what Ray Tune returns: functions for functions."""

from __future__ import annotations

import asyncio
import functools
import inspect

import ray

import atune
from atune.trainable.util import inspect_trainable, resolve_resources


def train(config, data=None):
    return {"x": config.get("x", 0), "n": len(data or [])}


class Counter(atune.Trainable):
    def setup(self, config, data=None):
        self.data = data

    def step(self):
        return {"n": len(self.data or [])}


def test_with_resources_on_a_function_is_a_function_with_its_signature():
    wrapped = atune.with_resources(train, {"cpu": 1})
    assert inspect.isfunction(wrapped)
    assert inspect.signature(wrapped) == inspect.signature(train)
    assert wrapped.__name__ == "train" and wrapped.__doc__ == train.__doc__
    assert wrapped({"x": 3}) == {"x": 3, "n": 0}
    assert not hasattr(train, "_atune_info")  # the function passed in is left alone
    info = inspect_trainable(wrapped)
    assert info.trainable is train and info.kind == "function"
    assert resolve_resources(info, {}, None) == {"CPU": 1.0}


def test_ray_remote_accepts_the_wrapped_function():
    remote = ray.remote(atune.with_resources(train, {"cpu": 1}))
    assert isinstance(remote, ray.remote_function.RemoteFunction)
    remote = ray.remote(atune.with_parameters(train, data=[1, 2]))
    assert isinstance(remote, ray.remote_function.RemoteFunction)


def test_with_parameters_on_a_function_is_a_function_and_composes():
    wrapped = atune.with_parameters(train, data=[1, 2])
    assert inspect.isfunction(wrapped)
    assert wrapped({}) == {"x": 0, "n": 2}
    both = atune.with_resources(wrapped, lambda spec: {"cpu": spec.config.cpus})
    assert inspect.isfunction(both)
    info = inspect_trainable(both)
    assert info.trainable is train and info.parameters == {"data": [1, 2]}
    assert resolve_resources(info, {"cpus": 2}, None) == {"CPU": 2.0}
    assert both({}) == {"x": 0, "n": 2}


def test_async_and_generator_functions_keep_their_kind():
    async def atrain(config):
        return {"a": 1}

    def gtrain(config):
        yield {"g": 1}

    wrapped_async = atune.with_resources(atrain, {"cpu": 1})
    assert inspect.iscoroutinefunction(wrapped_async)
    assert inspect_trainable(wrapped_async).kind == "async"
    assert asyncio.run(wrapped_async({})) == {"a": 1}
    wrapped_gen = atune.with_parameters(gtrain)
    assert inspect.isgeneratorfunction(wrapped_gen)
    assert inspect_trainable(wrapped_gen).kind == "generator"
    assert list(wrapped_gen({})) == [{"g": 1}]


def test_a_decorator_around_a_wrapper_keeps_the_resources():
    wrapped = atune.with_resources(train, {"cpu": 2})

    @functools.wraps(wrapped)
    def decorated(config):
        return wrapped(config)

    info = inspect_trainable(decorated)
    assert info.trainable is decorated  # the decorator runs, not what it wraps
    assert resolve_resources(info, {}, None) == {"CPU": 2.0}


def test_class_trainables_give_a_subclass():
    wrapped = atune.with_resources(atune.with_parameters(Counter, data=[1]), {"cpu": 2})
    assert inspect.isclass(wrapped) and issubclass(wrapped, Counter)
    assert wrapped.__name__ == "Counter"
    assert wrapped.default_resource_request({}) == {"cpu": 2}
    assert wrapped({}).step() == {"n": 1}  # setup gets the parameters outside a Tuner too
    info = inspect_trainable(wrapped)
    assert info.trainable is Counter and info.kind == "class"
    assert info.parameters == {"data": [1]}
    assert resolve_resources(info, {}, None) == {"CPU": 2.0}

    class Mine(wrapped):  # a subclass of the wrapper is a trainable of its own
        pass

    mine = inspect_trainable(Mine)
    assert mine.trainable is Mine and mine.parameters == {}
    assert resolve_resources(mine, {}, None) == {"CPU": 2.0}
