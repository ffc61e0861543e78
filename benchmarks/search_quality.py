"""Search quality: best value found vs trial count, atune searchers vs Ray Tune's.

Both frameworks wrap the same libraries (Optuna, HyperOpt, BayesOpt, Nevergrad); this
checks that atune's wrappers (space conversion, seeding, telling results back) lose
nothing. Each searcher is driven sequentially, suggest -> evaluate -> complete, on
Branin (2-D, minimum 0.397887) and Hartmann-6 (6-D, minimum -3.32237), with the same
seeds for both frameworks. atune's random search is shown as the baseline.

    python benchmarks/search_quality.py                 # 3 seeds, 50 trials
    python benchmarks/search_quality.py --smoke-test    # 1 seed, 10 trials

Figures and the command are recorded in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
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

LIBS = {"optuna": "optuna", "hyperopt": "hyperopt", "bayesopt": "bayes_opt",
        "nevergrad": "nevergrad"}  # fmt: skip


def atune_searcher(name: str, seed: int) -> Any:
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
    import nevergrad as ng

    from atune.search.nevergrad import NevergradSearch

    return NevergradSearch(optimizer=ng.optimizers.OnePlusOne, seed=seed)


def ray_searcher(name: str, seed: int) -> Any:
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
    import nevergrad as ng
    from ray.tune.search.nevergrad import NevergradSearch

    np.random.seed(seed)
    return NevergradSearch(optimizer=ng.optimizers.OnePlusOne)


def run_atune(name: str, problem: str, seed: int, n: int) -> list[float]:
    import atune
    from atune.search import AskTell

    space, fn = spaces(atune)[problem]
    study = AskTell(atune_searcher(name, seed), space, metric="value", mode="min", num_samples=n)

    async def loop() -> list[float]:
        values = []
        while (trial := await study.ask()) is not None:
            value = fn(trial.config)
            values.append(value)
            await study.tell(trial, {"value": value})
        return values

    return anyio.run(loop)


def run_ray(name: str, problem: str, seed: int, n: int) -> list[float]:
    from ray import tune

    space, fn = spaces(tune)[problem]
    searcher = ray_searcher(name, seed)
    searcher.set_search_properties("value", "min", space)
    values = []
    for i in range(n):
        config = searcher.suggest(f"t{i}")
        value = fn(config)
        values.append(value)
        searcher.on_trial_complete(f"t{i}", {"value": value})
    return values


def best_after(values: list[float], k: int) -> float:
    return min(values[:k])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--searchers", nargs="*", help="only these (default: all installed)")
    parser.add_argument("--smoke-test", action="store_true")
    args = parser.parse_args()
    if args.smoke_test:
        args.trials, args.seeds = 10, 1
    checkpoints = [k for k in (10, 20, 50, 100) if k <= args.trials]
    names = ["random"] + [n for n, mod in LIBS.items() if importlib.util.find_spec(mod)]
    if args.searchers:
        names = [n for n in names if n in args.searchers]
    print(f"best value found (mean over {args.seeds} seeds); lower is better")
    header = "problem    searcher   framework " + "".join(f"{f'@{k}':>10}" for k in checkpoints)
    print(header)
    print("-" * len(header))
    for problem in ("branin", "hartmann6"):
        for name in names:
            runners = [("atune", run_atune)] + ([] if name == "random" else [("ray", run_ray)])
            for framework, runner in runners:
                try:
                    runs = [runner(name, problem, seed, args.trials) for seed in range(args.seeds)]
                except Exception as exc:  # a missing Ray wrapper or library version clash
                    print(f"{problem:<10} {name:<10} {framework:<9}  failed: {exc!r:.60}")
                    continue
                cells = [np.mean([best_after(r, k) for r in runs]) for k in checkpoints]
                print(
                    f"{problem:<10} {name:<10} {framework:<9} "
                    + "".join(f"{c:10.4f}" for c in cells)
                )
    print("optima: branin 0.3979, hartmann6 -3.3224")


if __name__ == "__main__":
    main()
