"""The Ray that atune starts stays up for the whole process, whatever runs the loop."""

from __future__ import annotations

PRELUDE = """
import asyncio, time
import atune as tune

def f(config):
    tune.report({"v": config["x"]})

def tuner(*values, **kw):
    return tune.Tuner(
        f,
        param_space={"x": tune.grid_search(list(values))},
        run_config=tune.RunConfig(verbose=0, **kw),
    )

def check(grid, *values):
    got = sorted(r.metrics["v"] for r in grid)
    assert got == sorted(values), (got, values, [r.error for r in grid])
"""


def test_three_experiments_in_a_row(run_script):
    run = run_script(
        PRELUDE
        + """
for i in range(3):
    check(tuner(i, i + 10).fit_sync(), i, i + 10)
    print("experiment", i, "ok", flush=True)
""",
        timeout=180,
    )
    assert run.returncode == 0, run.explain()
    assert run.stdout.count("ok") == 3, run.explain()


def test_three_asyncio_run_calls_in_a_row(run_script):
    run = run_script(
        PRELUDE
        + """
for i in range(3):
    check(asyncio.run(tuner(i).fit()), i)
print("done", flush=True)
""",
        timeout=180,
    )
    assert run.returncode == 0 and "done" in run.stdout, run.explain()


def test_two_concurrent_experiments_on_one_loop_then_a_third(run_script):
    run = run_script(
        PRELUDE
        + """
async def main():
    a, b = await asyncio.gather(tuner(1, 2).fit(), tuner(3, 4).fit())
    check(a, 1, 2)
    check(b, 3, 4)
    check(await tuner(5).fit(), 5)
    print("done", flush=True)

asyncio.run(main())
""",
        timeout=180,
    )
    assert run.returncode == 0 and "done" in run.stdout, run.explain()


def test_fit_sync_twice_inside_a_running_loop(run_script):
    # A notebook: the cell's thread already runs an event loop.
    run = run_script(
        PRELUDE
        + """
async def cell():
    check(tuner(1).fit_sync(), 1)
    check(tuner(2).fit_sync(), 2)
    print("done", flush=True)

asyncio.run(cell())
""",
        timeout=180,
    )
    assert run.returncode == 0 and "done" in run.stdout, run.explain()


def test_a_new_experiment_after_a_cancelled_one(run_script):
    run = run_script(
        PRELUDE
        + """
import anyio

def slow(config):
    for i in range(1000):
        time.sleep(0.05)
        tune.report({"v": i})

async def main():
    with anyio.move_on_after(8):
        await tune.Tuner(
            slow, param_space={"x": tune.grid_search([1, 2, 3, 4])},
            run_config=tune.RunConfig(verbose=0),
        ).fit()
    print("cancelled", flush=True)
    check(await tuner(7, 8).fit(), 7, 8)
    print("done", flush=True)

asyncio.run(main())
""",
        timeout=180,
    )
    assert run.returncode == 0 and "done" in run.stdout, run.explain()


def test_a_long_experiment_after_a_burst_of_trial_starts(run_script):
    # Many trials start at once (each start borrows worker threads), then the
    # experiment runs for over 30 s: idle worker threads retire meanwhile, and Ray must
    # not go with them.
    run = run_script(
        """
import time
import atune as tune

def f(config):
    for i in range(4 if config["x"] < 8 else 34):
        time.sleep(1.0)
        tune.report({"v": i})

start = time.time()
grid = tune.Tuner(
    tune.with_resources(f, {"cpu": 0.2}),
    param_space={"x": tune.grid_search(list(range(10)))},
    run_config=tune.RunConfig(verbose=0),
).fit_sync()
assert all(r.error is None for r in grid), [r.error for r in grid]
assert sorted(r.metrics["training_iteration"] for r in grid) == [4] * 8 + [34] * 2
print(f"done after {time.time() - start:.0f} s", flush=True)
""",
        timeout=240,
    )
    assert run.returncode == 0 and "done" in run.stdout, run.explain()


def test_starting_ray_leaves_the_event_loop_free(run_script):
    # ray.init takes seconds; it runs on atune's own thread while the loop keeps ticking.
    run = run_script(
        PRELUDE
        + """
async def main():
    gaps, last = [], time.monotonic()

    async def tick():
        nonlocal last
        while True:
            await asyncio.sleep(0.02)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.ensure_future(tick())
    started = time.monotonic()
    check(await tuner(1).fit(), 1)
    ticker.cancel()
    print(f"fit {time.monotonic() - started:.1f} s, longest gap {max(gaps):.2f} s", flush=True)
    import ray
    assert ray.is_initialized()
    print("done", flush=True)

asyncio.run(main())
""",
        timeout=120,
    )
    assert run.returncode == 0 and "done" in run.stdout, run.explain()
    fit_s, gap_s = (
        float(w.split()[0]) for w in run.stdout.split("fit ")[1].split(", longest gap ")
    )
    # Starting Ray alone takes seconds; the loop never stood still for a good part of it.
    assert gap_s < fit_s / 3, run.stdout
