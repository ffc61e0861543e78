"""Which Callback hook each event means, for inline callbacks and for the loggers' sink."""

from __future__ import annotations

import pytest

from atune._engine import events as E
from atune._engine.hooks import CallbackHooks
from atune._engine.state import TrialTable
from atune._trial import Trial
from atune.callbacks import Callback
from atune.errors import ConfigError, PluginError


class Recorder(Callback):
    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            calls = object.__getattribute__(self, "calls")

            def hook(*args, **kwargs):
                # Ray Tune's argument names, whether passed by position or by name.
                names = ["iteration", "trials", "trial", "result"][: len(args)]
                calls.append((name, {**dict(zip(names, args, strict=True)), **kwargs}))

            return hook
        return object.__getattribute__(self, name)


class AsyncRecorder(Callback):
    def __init__(self):
        self.seen: list[str] = []

    async def on_trial_result(self, iteration, trials, trial, result, **info):
        self.seen.append(f"result {result['i']}")

    async def on_trial_complete(self, iteration, trials, trial, **info):
        self.seen.append("complete")


def setup():
    table = TrialTable("abcde")
    trial = Trial(trial_id="abcde_00000", trainable_name="t", config={})
    table.add(trial)
    return table, trial


@pytest.mark.parametrize(
    ("event", "hooks"),
    [
        (E.TrialWorkerStarted(trial_id="abcde_00000"), ["on_trial_start"]),
        (E.TrialWorkerStarted(trial_id="abcde_00000", restored=True), ["on_trial_restore"]),
        (E.ResultRecorded(trial_id="abcde_00000", result={"i": 1}), ["on_trial_result"]),
        (
            E.CheckpointRecorded(
                trial_id="abcde_00000", path="/c", iteration=1, time_total_s=0.0, result={}
            ),
            ["on_trial_save", "on_checkpoint"],
        ),
        (
            E.CheckpointRecorded(
                trial_id="abcde_00000",
                path="/c",
                iteration=1,
                time_total_s=0.0,
                result={},
                copied_from="/other",
            ),
            [],
        ),
        (E.TrialRetrying(trial_id="abcde_00000"), ["on_trial_recover"]),
        (E.TrialCompleted(trial_id="abcde_00000"), ["on_trial_complete"]),
        (E.TrialErrored(trial_id="abcde_00000"), ["on_trial_error"]),
        (E.TrialPaused(trial_id="abcde_00000"), []),
        (E.ResourcesReleased(trial_id="abcde_00000"), []),
        (E.ExperimentEnded(), ["on_experiment_end"]),
        # A trial dropped from the table meanwhile (never started): nothing to say.
        (E.TrialCompleted(trial_id="abcde_00099"), []),
    ],
)
async def test_each_event_calls_its_hooks(event, hooks):
    table, trial = setup()
    cb = Recorder()
    await CallbackHooks([cb], table, lambda: 7).deliver(event)
    assert [name for name, _ in cb.calls] == hooks
    for name, kwargs in cb.calls:
        if name != "on_experiment_end":
            assert kwargs["trial"] is trial
        if name == "on_checkpoint":
            assert kwargs["checkpoint"].path == "/c"
        if name == "on_trial_result":
            assert kwargs["result"] == {"i": 1}


async def test_async_hooks_are_awaited_in_order():
    table, _ = setup()
    cb = AsyncRecorder()
    hooks = CallbackHooks([cb], table, lambda: 1)
    for i in range(3):
        await hooks.deliver(E.ResultRecorded(trial_id="abcde_00000", result={"i": i}))
    await hooks.deliver(E.TrialCompleted(trial_id="abcde_00000"))
    assert cb.seen == ["result 0", "result 1", "result 2", "complete"]


async def test_a_raising_hook_is_a_plugin_error_naming_it():
    class Broken(Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            raise KeyError("x")

    table, _ = setup()
    with pytest.raises(PluginError, match=r"The callback Broken\.on_trial_complete\(\)") as info:
        await CallbackHooks([Broken()], table, lambda: 1).deliver(
            E.TrialCompleted(trial_id="abcde_00000")
        )
    assert isinstance(info.value.__cause__, KeyError) and info.value.hook == "on_trial_complete"


async def test_atunes_own_errors_pass_through():
    class Strict(Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            raise ConfigError("bad")

    table, _ = setup()
    with pytest.raises(ConfigError, match="bad"):
        await CallbackHooks([Strict()], table, lambda: 1).deliver(
            E.TrialCompleted(trial_id="abcde_00000")
        )
