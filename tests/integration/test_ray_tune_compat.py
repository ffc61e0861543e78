"""Ray Tune behaviours ported scripts rely on: wrapped trainables, callback checkpoints."""

from __future__ import annotations

import logging
import os

import ray

import atune as tune

WARNING = "and no checkpoint was taken"


def run(trainable, storage, **run_kwargs):
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(num_samples=run_kwargs.pop("num_samples", 1)),
        run_config=tune.RunConfig(storage_path=storage, verbose=0, **run_kwargs),
    )


def probe(config):
    tune.report({"res": tune.get_trial_resources()})


async def test_with_resources_function_gets_its_resources_and_runs_as_a_ray_task(storage):
    wrapped = tune.with_resources(probe, {"cpu": 2})
    grid = await run(wrapped, storage).fit()
    assert grid[0].metrics["res"] == {"CPU": 2.0}

    def square(x):
        return x * x

    task = ray.remote(tune.with_resources(square, {"cpu": 1}))
    assert await task.remote(3) == 9


class Counter(tune.Trainable):
    def setup(self, config):
        self.value = 0

    def step(self):
        self.value += 1
        return {"value": self.value, "done": self.value >= 3}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "value.txt"), "w") as f:
            f.write(str(self.value))

    def load_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "value.txt")) as f:
            self.value = int(f.read())


class CheckpointAt(tune.Callback):
    """Asks for a checkpoint at the given iterations, as a Ray Tune callback may."""

    def __init__(self, *iterations: int) -> None:
        self.iterations = set(iterations)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result["training_iteration"] in self.iterations:
            result["should_checkpoint"] = True


def _saved(result) -> dict[str, str]:
    out = {}
    for ckpt, _ in result.best_checkpoints:
        with open(os.path.join(ckpt.path, "value.txt")) as f:
            out[os.path.basename(ckpt.path)] = f.read()
    return out


async def test_callback_should_checkpoint_saves_a_class_trainable_held_at_the_result(
    storage, caplog
):
    with caplog.at_level(logging.WARNING, logger="atune"):
        grid = await run(
            Counter,
            storage,
            callbacks=[CheckpointAt(2)],
            # Lockstep: the trainable waits at each result until the driver decided.
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
        ).fit()
    assert _saved(grid[0]) == {"checkpoint_000002": "2", "checkpoint_000003": "3"}
    assert WARNING not in caplog.text


async def test_callback_should_checkpoint_on_a_class_running_ahead_warns_once(storage, caplog):
    with caplog.at_level(logging.WARNING, logger="atune"):
        grid = await run(Counter, storage, num_samples=2, callbacks=[CheckpointAt(1, 2)]).fit()
    assert all(r.checkpoint is None for r in grid)
    assert caplog.text.count(WARNING) == 1
    assert "checkpoint_frequency" in caplog.text


def reports(config):
    for i in range(1, 4):
        checkpoint = None
        if i in config["ckpt_at"]:
            os.makedirs(f"ck{i}", exist_ok=True)
            checkpoint = tune.Checkpoint.from_directory(f"ck{i}")
        tune.report({"i": i}, checkpoint=checkpoint)


async def test_callback_should_checkpoint_on_a_function_warns_once(storage, caplog):
    with caplog.at_level(logging.WARNING, logger="atune"):
        grid = await tune.Tuner(
            reports,
            param_space={"ckpt_at": tune.grid_search([[], [2]])},
            run_config=tune.RunConfig(
                storage_path=storage, verbose=0, callbacks=[CheckpointAt(1, 2, 3)]
            ),
        ).fit()
    without, with_ckpt = sorted(grid, key=lambda r: len(r.config["ckpt_at"]))
    assert without.checkpoint is None
    assert [c.path for c, _ in with_ckpt.best_checkpoints] == [with_ckpt.checkpoint.path]
    assert caplog.text.count(WARNING) == 1
    assert "report(metrics, checkpoint=...)" in caplog.text
