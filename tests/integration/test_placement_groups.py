"""``PlacementGroupFactory``: trials that run their own Ray workers in their bundles."""

from __future__ import annotations

import time

import pytest
import ray

import atune as tune
from atune.errors import ConfigError, ConfigTypeError


@ray.remote(num_cpus=1)
def _child(x: int) -> tuple[str, int]:
    group = ray.get_runtime_context().get_placement_group_id()
    return group or "", x * 2


def spawns_workers(config):
    t0 = time.time()
    group = ray.util.get_current_placement_group()
    outs = ray.get([_child.remote(i) for i in range(config["workers"])])
    time.sleep(config.get("sleep", 0))
    tune.report(
        {
            "t0": t0,
            "t1": time.time(),
            "score": sum(x for _, x in outs),
            "group": group.id.hex() if group else "",
            "child_groups": sorted({g for g, _ in outs}),
            "bundles": len(group.bundle_specs) if group else 0,
        }
    )


def test_a_trial_runs_its_workers_in_its_placement_group(storage):
    pgf = tune.PlacementGroupFactory([{"CPU": 1}, {"CPU": 1}, {"CPU": 1}], strategy="PACK")
    assert pgf.required_resources == {"CPU": 3.0}
    grid = tune.Tuner(
        tune.with_resources(spawns_workers, pgf),
        param_space={"workers": 2, "x": tune.grid_search([1, 2, 3])},
        tune_config=tune.TuneConfig(metric="score", mode="max"),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit_sync()
    assert not grid.errors
    groups = set()
    for result in grid:
        m = result.metrics
        assert m["bundles"] == 3
        assert m["group"] and m["child_groups"] == [m["group"]]  # the children ran inside
        groups.add(m["group"])
    assert len(groups) == 3  # one group per trial
    # Every group was given back to the cluster.
    table = ray.util.placement_group_table()
    for group_id in groups:
        assert table[group_id]["state"] == "REMOVED"


def test_the_pool_counts_every_bundle(storage):
    # Three CPUs per trial on a 4-CPU cluster: one trial at a time.
    pgf = tune.PlacementGroupFactory([{"CPU": 1}, {"CPU": 2}])
    grid = tune.Tuner(
        tune.with_resources(spawns_workers, pgf),
        param_space={"workers": 1, "sleep": 0.5, "x": tune.grid_search([1, 2])},
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit_sync()
    assert not grid.errors
    (_, a1), (b0, _) = sorted((r.metrics["t0"], r.metrics["t1"]) for r in grid)
    assert a1 <= b0, "two 3-CPU trials ran at once on 4 CPUs"


def test_an_empty_head_bundle_reserves_nothing_for_the_trainable(storage):
    pgf = tune.PlacementGroupFactory([{}, {"CPU": 1}, {"CPU": 1}])
    assert pgf.head_bundle_is_empty and pgf.bundles == [{"CPU": 1.0}, {"CPU": 1.0}]
    grid = tune.Tuner(
        tune.with_resources(spawns_workers, pgf),
        param_space={"workers": 2},
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit_sync()
    (result,) = grid
    assert result.error is None
    assert result.metrics["bundles"] == 2


def test_more_bundles_than_the_cluster_has_is_refused_early(storage):
    pgf = tune.PlacementGroupFactory([{"CPU": 2}, {"CPU": 2}, {"CPU": 2}])
    tuner = tune.Tuner(
        tune.with_resources(spawns_workers, pgf),
        param_space={"workers": 1},
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    )
    with pytest.raises(ConfigError, match="can never start"):
        tuner.fit_sync()


@pytest.mark.parametrize(
    ("bundles", "strategy", "error", "match"),
    [
        ({"CPU": 1}, "PACK", ConfigTypeError, "list of resource dicts"),
        ([], "PACK", ConfigTypeError, "non-empty list"),
        ([{"CPU": 1}], "SPRED", ConfigError, "STRICT_SPREAD"),
        ([{"CPU": 1}, {}], "PACK", ConfigError, "only the first"),
        ([{"CPU": -1}], "PACK", ConfigError, ">= 0"),
    ],
)
def test_bad_bundles_are_refused_with_the_fix(bundles, strategy, error, match):
    with pytest.raises(error, match=match):
        tune.PlacementGroupFactory(bundles, strategy=strategy)
