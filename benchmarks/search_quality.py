"""Search quality: best value found vs trial count, atune searchers vs Ray Tune's.

Both frameworks wrap the same libraries (Optuna, HyperOpt, BayesOpt, Nevergrad, ZOOpt,
HpBandSter's BOHB, Ax); this checks that atune's wrappers (space conversion, seeding,
telling results back) lose nothing. Each searcher is driven sequentially, suggest ->
evaluate -> complete, on Branin (2-D, minimum 0.397887) and Hartmann-6 (6-D, minimum
-3.32237), with the same seeds for both frameworks. atune's random search is shown as the
baseline. The last column is the mean wall time of one run (all its trials).

    python benchmarks/search_quality.py                 # 3 seeds, 50 trials
    python benchmarks/search_quality.py --smoke-test    # 1 seed, 10 trials
    python benchmarks/search_quality.py --searchers random ax   # Ax is opt-in (slow)

Figures and the command are recorded in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import anyio
import numpy as np

warnings.filterwarnings("ignore")

# ------------------------------------------------------------------ objectives


def branin(c: dict[str, float]) -> float:
    x1, x2 = c["x1"], c["x2"]
    b, k = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (x2 - b * x1**2 + k * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


_HA = np.array(
    [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
     [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
)  # fmt: skip
_HP = 1e-4 * np.array(
    [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
)  # fmt: skip
_HALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(c: dict[str, float]) -> float:
    x = np.array([c[f"x{i}"] for i in range(1, 7)])
    return float(-np.sum(_HALPHA * np.exp(-np.sum(_HA * (x - _HP) ** 2, axis=1))))


def spaces(tune: Any) -> dict[str, tuple[dict[str, Any], Callable[[dict[str, float]], float]]]:
    return {
        "branin": ({"x1": tune.uniform(-5, 10), "x2": tune.uniform(0, 15)}, branin),
        "hartmann6": ({f"x{i}": tune.uniform(0, 1) for i in range(1, 7)}, hartmann6),
    }


# ------------------------------------------------------------------ searchers

# searcher -> the module it needs (besides atune / Ray Tune's wrapper of it)
LIBS = {"optuna": "optuna", "hyperopt": "hyperopt", "bayesopt": "bayes_opt",
        "nevergrad": "nevergrad", "zoopt": "zoopt", "bohb": "hpbandster", "ax": "ax"}  # fmt: skip
#: Run only when named in --searchers: Ax fits a GP for every suggestion, so one 50-trial run
#: takes minutes (see benchmarks/README.md) and would dominate the default run.
OPT_IN = {"ax"}


def atune_searcher(name: str, seed: int, n: int) -> Any:
    from atune.search import BasicVariantGenerator

    if name == "random":
        return BasicVariantGenerator(random_state=seed)
    if name == "optuna":
        from atune.search.optuna import OptunaSearch

        return OptunaSearch(seed=seed)
    if name == "hyperopt":
        from atune.search.hyperopt import HyperOptSearch

        return HyperOptSearch(random_state_seed=seed)
    if name == "bayesopt":
        from atune.search.bayesopt import BayesOptSearch

        return BayesOptSearch(random_state=seed)
    if name == "zoopt":
        from atune.search.zoopt import ZOOptSearch

        return ZOOptSearch(algo="asracos", budget=n, parallel_num=1, seed=seed)
    if name == "bohb":
        from atune.search.bohb import TuneBOHB

        return TuneBOHB(seed=seed)
    if name == "ax":
        from atune.search.ax import AxSearch

        return AxSearch(seed=seed)
    import nevergrad as ng

    from atune.search.nevergrad import NevergradSearch

    return NevergradSearch(optimizer=ng.optimizers.OnePlusOne, seed=seed)


def ray_searcher(name: str, seed: int, n: int) -> Any:
    if name == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed))
    if name == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch

        return HyperOptSearch(random_state_seed=seed)
    if name == "bayesopt":
        from ray.tune.search.bayesopt import BayesOptSearch

        return BayesOptSearch(random_state=seed)
    if name == "zoopt":
        from ray.tune.search.zoopt import ZOOptSearch

        # Ray's ZOOptSearch takes no seed: ZOOpt draws from numpy's global RNG, so seeding
        # it here makes Ray's run reproducible (atune's `seed` seeds a private numpy state).
        np.random.seed(seed)
        return ZOOptSearch(algo="asracos", budget=n, parallel_num=1)
    if name == "bohb":
        from ray.tune.search.bohb import TuneBOHB

        # Ray's `seed` only seeds the ConfigurationSpace; BOHB's own sampling (random
        # fraction, KDE draws) uses numpy's global RNG, seeded here as atune seeds its
        # private one.
        np.random.seed(seed)
        return TuneBOHB(seed=seed)
    if name == "ax":
        from ray.tune.search.ax import AxSearch

        return AxSearch(random_seed=seed)  # passed on to Ax's (legacy) AxClient
    import nevergrad as ng
    from ray.tune.search.nevergrad import NevergradSearch

    np.random.seed(seed)
    return NevergradSearch(optimizer=ng.optimizers.OnePlusOne)


def result_of(name: str, value: float) -> tuple[dict[str, Any], bool]:
    """The result told for ``value``, and whether to report it before completing the trial.

    BOHB: Ray's TuneBOHB records a result only in ``on_trial_result`` and only when it
    carries ``hyperband_info["budget"]`` (set by HyperBandForBOHB); ``on_trial_complete``
    records nothing, so driven with complete-only results it never builds a model and is
    random search. atune's TuneBOHB records at completion too (at ``training_iteration``,
    else budget 1). For a fair comparison without HyperBand, both frameworks get the same
    result, at budget 1, as an intermediate result and then as the final one (atune records
    it once: a budget is recorded once per trial).
    """
    if name == "bohb":
        return {"value": value, "training_iteration": 1, "hyperband_info": {"budget": 1}}, True
    return {"value": value}, False


def run_atune(name: str, problem: str, seed: int, n: int) -> list[float]:
    import atune
    from atune.search import AskTell

    space, fn = spaces(atune)[problem]
    searcher = atune_searcher(name, seed, n)
    study = AskTell(searcher, space, metric="value", mode="min", num_samples=n)

    async def loop() -> list[float]:
        values = []
        while (trial := await study.ask()) is not None:
            value = fn(trial.config)
            values.append(value)
            result, report_first = result_of(name, value)
            if report_first:
                await study.report(trial, result)
            await study.tell(trial, result)
        return values

    return anyio.run(loop)


def run_ray(name: str, problem: str, seed: int, n: int) -> list[float]:
    from ray import tune

    space, fn = spaces(tune)[problem]
    searcher = ray_searcher(name, seed, n)
    searcher.set_search_properties("value", "min", space)
    values = []
    for i in range(n):
        config = searcher.suggest(f"t{i}")
        if config is None and name == "zoopt":
            config = reopen_zoopt(searcher, f"t{i}")
        if not isinstance(config, dict):  # None ("not now") or FINISHED
            raise RuntimeError(f"suggest() gave {config!r} at trial {i} of a sequential run")
        value = fn(config)
        values.append(value)
        result, report_first = result_of(name, value)
        if report_first:
            searcher.on_trial_result(f"t{i}", result)
        searcher.on_trial_complete(f"t{i}", result)
    return values


def reopen_zoopt(searcher: Any, trial_id: str) -> Any:
    """Work around Ray's ZOOptSearch stalling when driven strictly sequentially.

    ZOOpt's SRacosTune closes its initial phase one ``suggest()`` late: the call after the
    last initial config answers None and closes a gate that only the completion of an
    initial trial reopens. Driven one trial at a time, every initial trial has completed by
    then, so Ray's wrapper answers None for ever. atune's ZOOptSearch reopens the gate
    itself; here it is reopened the same way for Ray (no random draw is involved), so both
    run the same algorithm.
    """
    optimizer = searcher.optimizer
    if optimizer.semaphore == 0 and optimizer.complete_num >= optimizer._parameter.get_train_size():
        optimizer.semaphore = 1
        return searcher.suggest(trial_id)
    return None


def best_after(values: list[float], k: int) -> float:
    return min(values[:k])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--searchers",
        nargs="*",
        choices=["random", *LIBS],
        help=f"only these (default: all installed but {', '.join(sorted(OPT_IN))})",
    )
    parser.add_argument("--smoke-test", action="store_true")
    args = parser.parse_args()
    if args.smoke_test:
        args.trials, args.seeds = 10, 1
    checkpoints = [k for k in (10, 20, 50, 100) if k <= args.trials]
    names = ["random", *LIBS]
    if args.searchers:
        names = [n for n in names if n in args.searchers]
    else:
        names = [n for n in names if n not in OPT_IN and (n == "random" or find_spec(LIBS[n]))]
    print(f"best value found (mean over {args.seeds} seeds); lower is better")
    header = (
        "problem    searcher   framework "
        + "".join(f"{f'@{k}':>10}" for k in checkpoints)
        + f"{'s/run':>8}"
    )
    print(header)
    print("-" * len(header))
    for problem in ("branin", "hartmann6"):
        for name in names:
            runners = [("atune", run_atune)] + ([] if name == "random" else [("ray", run_ray)])
            for framework, runner in runners:
                label = f"{problem:<10} {name:<10} {framework:<9}"
                if name != "random" and not find_spec(LIBS[name]):
                    print(f"{label}  n/a: {LIBS[name]} is not installed")
                    continue
                start = time.perf_counter()
                try:
                    runs = [runner(name, problem, seed, args.trials) for seed in range(args.seeds)]
                except Exception as exc:  # e.g. a missing module or a library version clash
                    reason = " ".join(f"{type(exc).__name__}: {exc}".split())
                    print(f"{label}  n/a: {reason:.100}", flush=True)
                    continue
                seconds = (time.perf_counter() - start) / args.seeds
                cells = [np.mean([best_after(r, k) for r in runs]) for k in checkpoints]
                print(
                    f"{label} " + "".join(f"{c:10.4f}" for c in cells) + f"{seconds:8.1f}",
                    flush=True,
                )
    print("optima: branin 0.3979, hartmann6 -3.3224")


def find_spec(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


if __name__ == "__main__":
    main()
