"""The sync facade where an event loop already runs, as in a Jupyter notebook: twice in a row.

A notebook cell is synchronous code on the thread that runs the kernel's event loop, so
``asyncio.run`` is not allowed there; ``tuner.fit_sync()`` notices the running loop and
runs ``fit()`` on a private loop in a thread of its own, and a second cell (here, the
second loop iteration) does it again with a new Tuner, in the same process and on the same
local Ray. Ctrl-C (the notebook's interrupt button) stops the experiment and leaves it
restorable.

    python examples/notebook.py
    python examples/notebook.py --smoke-test
"""

from __future__ import annotations

import argparse
import asyncio
import threading

import atune as tune


def objective(config):
    for step in range(1, config["steps"] + 1):
        tune.report({"loss": (config["x"] - 0.3) ** 2 / step})


def cell(samples: int, steps: int) -> tune.ResultGrid:
    """What one notebook cell runs."""
    tuner = tune.Tuner(
        objective,
        param_space={"x": tune.uniform(0, 1), "steps": steps},
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=samples),
        run_config=tune.RunConfig(verbose=0),
    )
    return tuner.fit_sync()


async def kernel(samples: int, steps: int) -> None:
    asyncio.get_running_loop()  # a loop runs on this thread, as in Jupyter
    for n in (1, 2):
        grid = cell(samples, steps)
        best = grid.get_best_result()
        loss = best.metrics["loss"]
        print(f"cell {n}: {len(grid)} trials; Best config: {best.config} (loss {loss:.4f})")
    leftover = [t.name for t in threading.enumerate() if t.name == "atune-fit"]
    print("fit threads left:", leftover or "none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke-test", action="store_true", help="a few small trials")
    args = parser.parse_args()
    samples, steps = (3, 3) if args.smoke_test else (20, 20)
    asyncio.run(kernel(samples, steps))


if __name__ == "__main__":
    main()
