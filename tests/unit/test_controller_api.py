"""The controller and the schedulers' test fake both offer the whole TuneController."""

from __future__ import annotations

import inspect

from atune._engine.controller import Controller, ExperimentSpec
from atune.schedulers import FIFOScheduler, TuneController
from atune.search import BasicVariantGenerator
from atune.trainable.util import inspect_trainable
from tests.unit.fake_controller import FakeController


def _members(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


async def test_the_controller_is_a_tune_controller(tmp_path):
    spec = ExperimentSpec(
        trainable=inspect_trainable(lambda config: None),
        param_space={},
        experiment_name="x",
        experiment_path=str(tmp_path),
        searcher=BasicVariantGenerator(),
        scheduler=FIFOScheduler(),
    )
    controller = Controller(spec, executor=None)  # type: ignore[arg-type]
    assert isinstance(controller, TuneController)
    for name in _members(TuneController):
        ours = getattr(Controller, name)
        theirs = getattr(TuneController, name)
        if inspect.isfunction(theirs):
            assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(theirs), name
            assert list(inspect.signature(ours).parameters) == list(
                inspect.signature(theirs).parameters
            ), name


def test_the_schedulers_fake_offers_the_same_api():
    assert isinstance(FakeController(), TuneController)
