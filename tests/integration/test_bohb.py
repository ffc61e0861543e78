"""TuneBOHB with HyperBandForBOHB on a real Ray: budgets, pauses, a sensible best."""

from __future__ import annotations

import pytest

pytest.importorskip("hpbandster")

import atune as tune
from atune.schedulers import HyperBandForBOHB
from atune.search.bohb import TuneBOHB


class Curve(tune.Trainable):
    """score = height * (1 - 1 / (1 + i)): better trials are better at every budget."""

    def setup(self, config, **kwargs):
        self.i = 0

    def step(self):
        self.i += 1
        return {"score": self.config["height"] * (1 - 1 / (1 + self.i))}

    def save_checkpoint(self, checkpoint_dir):
        return {"i": self.i}

    def load_checkpoint(self, checkpoint):
        self.i = checkpoint["i"]


class Recording(TuneBOHB):
    """Counts the pause/resume notices that reach the searcher through the wrappers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pauses: list[str] = []
        self.unpauses: list[str] = []

    async def on_pause(self, trial_id: str) -> None:
        self.pauses.append(trial_id)
        await super().on_pause(trial_id)

    async def on_unpause(self, trial_id: str) -> None:
        self.unpauses.append(trial_id)
        await super().on_unpause(trial_id)


async def test_bohb_with_hyperband_for_bohb(storage):
    searcher = Recording(
        space={"height": tune.uniform(0, 10), "tag": tune.choice(["a", "b"])},
        seed=0,
        points_to_evaluate=[{"height": 9.5, "tag": "a"}],
    )
    scheduler = HyperBandForBOHB(max_t=9, reduction_factor=3)
    grid = await tune.Tuner(
        Curve,
        tune_config=tune.TuneConfig(
            metric="score", mode="max", search_alg=searcher, scheduler=scheduler, num_samples=10
        ),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()

    assert len(grid) == 10 and not grid.errors
    assert grid[0].config == {"height": 9.5, "tag": "a"}
    for result in grid:
        assert 0 <= result.config["height"] <= 10 and result.config["tag"] in ("a", "b")
    # The searcher recorded results at HyperBand's milestones, and heard the pauses.
    budgets = {b for b, losses in searcher._bohber.losses.items() if losses}
    # Milestones are cumulative, as in Ray: 1 -> 1 + 3 = 4 -> 9, and 3 -> 9, and 9.
    assert {1.0, 9.0} <= budgets <= {1.0, 3.0, 4.0, 9.0}, budgets
    assert searcher.pauses, "HyperBandForBOHB's on_pause never reached the searcher"
    assert set(searcher.unpauses) <= set(searcher.pauses)
    assert not searcher._running and not searcher._paused and not searcher._trial_configs
    best = grid.get_best_result()
    assert best.metrics["training_iteration"] == 9
    assert best.config["height"] >= 9.5
