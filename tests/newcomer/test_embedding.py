"""Embedding hygiene, in a fresh process as a service runs it: several experiments at once
in one process and one Ray, nothing printed at verbose=0, no logging or signal changes,
and no actor left once they end."""

from __future__ import annotations


def test_several_experiments_at_once_leave_nothing_behind(run_script):
    run = run_script(
        """
        import logging, signal, sys, time
        import anyio
        import atune as tune

        def train(config):
            for i in range(1, 21):
                time.sleep(0.01)
                tune.report({"score": config["x"] * i})

        def process_settings():
            return (
                signal.getsignal(signal.SIGINT),
                signal.getsignal(signal.SIGTERM),
                list(logging.getLogger().handlers),
                list(logging.getLogger("atune").handlers),
                logging.getLogger().level,
            )

        before = process_settings()

        async def experiment(n, grids):
            tuner = tune.Tuner(
                train,
                param_space={"x": tune.grid_search([1, 2])},
                tune_config=tune.TuneConfig(metric="score", mode="max"),
                run_config=tune.RunConfig(name=f"exp{n}", verbose=0),
            )
            async with tuner.start() as run:
                grids[n] = await run.wait()

        async def main():
            grids = {}
            async with anyio.create_task_group() as tg:
                for n in range(3):
                    tg.start_soon(experiment, n, grids)
            return grids

        grids = anyio.run(main)
        after = process_settings()
        assert before == after, (before, after)
        assert sorted(grids) == [0, 1, 2]
        for grid in grids.values():
            assert len(grid) == 2 and not grid.errors
            assert {r.metrics["training_iteration"] for r in grid} == {20}
        assert len({grid.experiment_path for grid in grids.values()}) == 3
        import ray
        from ray._private import state

        alive = [a for a in state.actors().values() if a["State"] != "DEAD"]
        assert not [a for a in alive if "TrialActor" in a.get("ActorClassName", "")], alive
        sys.stderr.write("DONE\\n")
        """,
        timeout=240,
    )
    assert run.returncode == 0, run.explain()
    assert run.stdout == "", f"printed at verbose=0:\\n{run.stdout}"
    assert "DONE" in run.stderr, run.explain()


def test_the_default_loggers_import_neither_tensorboardx_nor_torch(run_script):
    # Importing tensorboardX imports torch where it is installed: seconds of start-up
    # and some 180,000 objects that every full garbage collection of the driver (a pause
    # of a host's event loop) then walks. The TensorBoard files are still complete.
    run = run_script(
        """
        import glob, os, sys
        import atune as tune

        def train(config):
            for i in range(1, 6):
                tune.report({"score": config["x"] * i})

        grid = tune.Tuner(
            train,
            param_space={"x": tune.grid_search([1, 2])},
            tune_config=tune.TuneConfig(metric="score", mode="max"),
            run_config=tune.RunConfig(verbose=0),
        ).fit_sync()
        assert not grid.errors
        assert "tensorboardX" not in sys.modules and "torch" not in sys.modules
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        for result in grid:
            (events,) = glob.glob(os.path.join(result.path, "events.out.tfevents.*"))
            acc = EventAccumulator(events)
            acc.Reload()
            scores = [e.value for e in acc.Scalars("ray/tune/score")]
            assert scores == [result.config["x"] * i for i in range(1, 6)], scores
        print("DONE")
        """,
        timeout=240,
    )
    assert run.returncode == 0, run.explain()
    assert "DONE" in run.stdout, run.explain()
