"""Variant generation: grid products, nesting, sample_from dependencies, tags."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import atune as tune
from atune.errors import ConfigError, ConfigTypeError
from atune.search.variant_generator import (
    count_variants,
    flatten_resolved,
    format_vars,
    generate_variants,
    validate_space,
)


def configs(space, **kwargs):
    return [config for _, config in generate_variants(space, **kwargs)]


def run_samples(space, num_samples, seed=0):
    """What the default searcher does: the whole grid, num_samples times."""
    rng = np.random.default_rng(seed)
    return [c for _ in range(num_samples) for c in configs(space, random_state=rng)]


# ------------------------------------------------------------------ counts (SEED-FEATURES 2.4)

A, B, C = "a", "b", "c"
TWO_GRIDS = {"x": tune.grid_search([1, 2, 3]), "y": tune.grid_search([A, B, C])}
ALPHA_BETA_LAYERS = {
    "alpha": tune.sample_from(lambda spec: np.random.uniform(100)),
    "beta": tune.sample_from(lambda spec: spec.config.alpha * np.random.normal()),
    "nn_layers": [tune.grid_search([16, 64, 256]), tune.grid_search([16, 64, 256])],
}


@pytest.mark.parametrize(
    ("space", "num_samples", "trials"),
    [
        ({"x": tune.choice([0, 1, 2])}, 13, 13),
        ({"x": tune.choice([0, 1, 2]), "y": tune.randn(0, 1)}, 13, 13),
        ({"x": tune.grid_search([1, 2, 3, 4])}, 1, 4),
        ({"x": tune.grid_search([1, 2, 3])}, 1, 3),
        ({"x": tune.grid_search([1, 2, 3])}, 2, 6),
        (TWO_GRIDS, 1, 9),
        (TWO_GRIDS, 2, 18),
        (TWO_GRIDS, 5, 45),
        ({"x": tune.sample_from(lambda _: 1), "y": tune.grid_search([A, B, C])}, 2, 6),
        (ALPHA_BETA_LAYERS, 10, 90),
        (ALPHA_BETA_LAYERS, 1, 9),
        (
            {
                "activation": tune.grid_search(["relu", "tanh"]),
                "width": tune.uniform(0, 20),
                "height": tune.uniform(-100, 100),
            },
            50,
            100,
        ),
    ],
)
def test_grid_times_num_samples_gives_the_documented_trial_counts(space, num_samples, trials):
    assert count_variants(space) * num_samples == trials
    assert len(run_samples(space, num_samples)) == trials


def test_count_variants_is_1_without_grids():
    assert count_variants({"a": tune.uniform(0, 1), "b": 3}) == 1
    assert count_variants({}) == 1


def test_every_grid_value_is_used_and_random_values_resampled_per_trial():
    trials = run_samples(ALPHA_BETA_LAYERS, 10)
    layers = [tuple(t["nn_layers"]) for t in trials]
    assert all(layers.count(pair) == 10 for pair in itertools.product([16, 64, 256], repeat=2))
    assert len({t["alpha"] for t in trials}) == 90


@given(sizes=st.lists(st.integers(1, 4), min_size=0, max_size=4))
def test_grid_points_are_the_full_cartesian_product(sizes):
    space = {f"g{i}": tune.grid_search(list(range(n))) for i, n in enumerate(sizes)}
    points = [tuple(c.values()) for c in configs(space)]
    assert count_variants(space) == math.prod(sizes) == len(points)
    assert points == list(itertools.product(*(range(n) for n in sizes)))


# ------------------------------------------------------------------ order and nesting


def test_last_grid_axis_varies_fastest():
    space = {"x": tune.grid_search([10, 20]), "y": tune.grid_search(["a", "b", "c"])}
    assert [(c["x"], c["y"]) for c in configs(space)] == [
        (10, "a"),
        (10, "b"),
        (10, "c"),
        (20, "a"),
        (20, "b"),
        (20, "c"),
    ]


def test_config_is_nested_exactly_like_the_space():
    space = {
        "const": "hello",
        "model": {"lr": tune.loguniform(1e-4, 1e-1), "opt": {"name": tune.choice(["sgd"])}},
        "layers": [tune.grid_search([16, 64]), 32, tune.randint(1, 3)],
        "plain": [1, {"a": 2}],
    }
    for config in configs(space, random_state=0):
        assert config["const"] == "hello" and config["plain"] == [1, {"a": 2}]
        assert set(config) == set(space)
        assert 1e-4 <= config["model"]["lr"] <= 1e-1
        assert config["model"]["opt"] == {"name": "sgd"}
        assert config["layers"][0] in (16, 64) and config["layers"][1] == 32
        assert config["layers"][2] in (1, 2)


def test_hand_written_grid_dicts_and_grid_categoricals_work_like_grid_search():
    space = {"a": {"grid_search": [1, 2]}, "b": tune.search.Categorical([3, 4]).grid()}
    assert [(c["a"], c["b"]) for c in configs(space)] == [(1, 3), (1, 4), (2, 3), (2, 4)]


def test_grid_values_may_hold_domains_and_sub_grids():
    space = {
        "model": tune.grid_search(
            [{"type": "a", "depth": tune.grid_search([1, 2])}, {"type": "b", "lr": 0.1}]
        ),
        "seed": tune.randint(0, 10),
    }
    models = [c["model"] for c in configs(space, random_state=0)]
    assert count_variants(space) == 3
    assert models == [
        {"type": "a", "depth": 1},
        {"type": "a", "depth": 2},
        {"type": "b", "lr": 0.1},
    ]


@given(sizes=st.lists(st.integers(1, 4), min_size=1, max_size=4))
def test_sub_grids_of_uneven_size_are_enumerated_in_order(sizes):
    options = [{"i": i, "j": tune.grid_search(list(range(n)))} for i, n in enumerate(sizes)]
    space = {"m": tune.grid_search(options), "z": tune.grid_search([0, 1])}
    got = [(c["m"]["i"], c["m"]["j"], c["z"]) for c in configs(space)]
    inner = [(i, j) for i, n in enumerate(sizes) for j in range(n)]
    assert got == [(i, j, z) for i, j in inner for z in (0, 1)]
    assert count_variants(space) == 2 * sum(sizes)


def test_constants_in_a_space_are_not_shared_between_configs():
    space = {"x": tune.grid_search([1, 2]), "items": [1, 2], "opts": {"k": [0]}}
    first, second = configs(space)
    first["items"].append(3)
    first["opts"]["k"].append(1)
    assert second["items"] == [1, 2] and second["opts"] == {"k": [0]}
    assert space["items"] == [1, 2]


def test_resolved_vars_map_each_searched_path_to_its_value():
    space = {"a": tune.grid_search([1]), "m": {"lr": tune.uniform(0, 1)}, "c": 5}
    ((resolved, config),) = list(generate_variants(space, random_state=0))
    assert resolved == {("a",): 1, ("m", "lr"): config["m"]["lr"]}


def test_a_seed_reproduces_the_configs_including_sample_from():
    space = {
        "x": tune.grid_search([1, 2]),
        "u": tune.uniform(0, 1),
        "f": tune.sample_from(lambda: np.random.uniform()),
    }
    assert configs(space, random_state=3) == configs(space, random_state=3)
    assert configs(space, random_state=3) != configs(space, random_state=4)


def test_validation_happens_when_generate_variants_is_called():
    with pytest.raises(ConfigError):
        generate_variants({"x": {"grid_search": []}})


# ------------------------------------------------------------------ constant_grid_search


def test_random_values_are_resampled_at_every_grid_point_by_default():
    space = {"g": tune.grid_search([1, 2, 3]), "u": tune.uniform(0, 1)}
    assert len({c["u"] for c in configs(space, random_state=0)}) == 3


def test_constant_grid_search_keeps_random_values_across_the_grid():
    space = {"g": tune.grid_search([1, 2, 3]), "u": tune.uniform(0, 1)}
    values = [c["u"] for c in configs(space, constant_grid_search=True, random_state=0)]
    assert len(set(values)) == 1


def test_constant_grid_search_still_recomputes_functions_that_read_the_grid():
    space = {
        "g": tune.grid_search([1, 2, 3]),
        "u": tune.uniform(0, 1),
        "scaled": tune.sample_from(lambda spec: spec.config.g * 10),
        "fixed": tune.sample_from(lambda spec: spec.config.u * 2),
    }
    result = configs(space, constant_grid_search=True, random_state=0)
    assert [c["scaled"] for c in result] == [10, 20, 30]
    assert len({c["fixed"] for c in result}) == 1


# ------------------------------------------------------------------ sample_from dependencies


@pytest.mark.parametrize("alpha_first", [True, False])
def test_sample_from_may_read_a_value_declared_before_or_after_it(alpha_first):
    alpha = ("alpha", tune.uniform(1, 2))
    beta = ("beta", tune.sample_from(lambda spec: spec.config.alpha * 10))
    space = dict([alpha, beta] if alpha_first else [beta, alpha])
    (config,) = configs(space, random_state=0)
    assert config["beta"] == config["alpha"] * 10


def test_sample_from_chains_resolve_in_dependency_order():
    space = {
        "c": tune.sample_from(lambda spec: spec.config.b + 1),
        "b": tune.sample_from(lambda spec: spec["config"]["a"] * 2),
        "a": tune.sample_from(lambda: 5),
    }
    assert configs(space) == [{"c": 11, "b": 10, "a": 5}]


def test_sample_from_reads_nested_values_and_grid_values_in_lists():
    space = {
        "model": {"lr": tune.uniform(0, 1)},
        "layers": [tune.grid_search([16, 64]), 8],
        "lr2": tune.sample_from(lambda spec: spec.config.model.lr * 2),
        "first": tune.sample_from(lambda spec: spec.config.layers[0]),
    }
    for config in configs(space, random_state=0):
        assert config["lr2"] == config["model"]["lr"] * 2
        assert config["first"] == config["layers"][0]


def test_a_sample_from_cycle_is_a_config_error_naming_both_paths():
    space = {
        "a": tune.sample_from(lambda spec: spec.config.b),
        "b": tune.sample_from(lambda spec: spec.config.a),
    }
    with pytest.raises(ConfigError) as info:
        configs(space)
    message = str(info.value)
    assert "param_space['a'] reads spec.config['b']" in message
    assert "param_space['b'] reads spec.config['a']" in message
    assert "cycle" in message


def test_a_sample_from_reading_a_missing_key_is_a_config_error_naming_it():
    space = {"m": {"x": tune.sample_from(lambda spec: spec.config.nope)}}
    with pytest.raises(ConfigError, match=r"param_space\['m'\]\['x'\] reads spec.config\['nope'\]"):
        configs(space)


def test_errors_raised_by_a_sample_from_function_propagate_unchanged():
    def broken(spec):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        configs({"x": tune.sample_from(broken)})


# ------------------------------------------------------------------ validate_space


def named_constant(x):
    return x


@pytest.mark.parametrize(
    ("space", "error", "message"),
    [
        (
            {"model": {"lr": lambda spec: 0.1}},
            ConfigTypeError,
            "param_space['model']['lr']: a bare lambda is not sampled; wrap it as tune.sample_from",
        ),
        (
            {"x": {"grid_search": 5}},
            ConfigTypeError,
            "param_space['x']: `grid_search` needs a non-empty list of values, got 5",
        ),
        (
            {"x": {"grid_search": []}},
            ConfigError,
            "param_space['x']: `grid_search` needs a non-empty list of values",
        ),
        (
            {"x": {"grid_search": [1], "extra": 2}},
            ConfigError,
            "param_space['x']: a grid_search dict must have 'grid_search' as its only key",
        ),
        (
            {"t": (1, tune.uniform(0, 1))},
            ConfigError,
            "param_space['t'][1]: search-space values inside a tuple are not resolved",
        ),
        (
            {"g": tune.grid_search([{"lr": lambda s: 1}])},
            ConfigTypeError,
            "param_space['g']['grid_search'][0]['lr']: a bare lambda",
        ),
        ([1, 2], ConfigTypeError, "`param_space` must be a dict, got list"),
    ],
)
def test_validate_space_names_the_path_of_a_bad_entry(space, error, message):
    with pytest.raises(error) as info:
        validate_space(space)
    assert message in str(info.value)


def test_validate_space_accepts_functions_and_classes_as_constants():
    validate_space({"fn": named_constant, "cls": dict, "none": None, "t": (1, 2)})
    assert configs({"fn": named_constant}) == [{"fn": named_constant}]


# ------------------------------------------------------------------ flatten_resolved / format_vars


def test_flatten_resolved_keys_every_searched_leaf_by_its_path():
    space = {
        "lr": tune.loguniform(1e-4, 1e-1),
        "const": 1,
        "model": {"width": tune.grid_search([4, 8]), "act": "relu"},
        "layers": [tune.grid_search([16]), 3],
        "f": tune.sample_from(lambda: 2),
    }
    config = configs(space, random_state=0)[0]
    assert flatten_resolved(space, config) == {
        "lr": config["lr"],
        "model/width": 4,
        "layers/0": 16,
        "f": 2,
    }
    assert list(flatten_resolved(space, config)) == ["lr", "model/width", "layers/0", "f"]


def test_flatten_resolved_skips_paths_missing_from_the_config():
    assert flatten_resolved({"a": tune.uniform(0, 1)}, {}) == {}


@pytest.mark.parametrize(
    ("flat", "tag"),
    [
        ({"momentum": 0.9, "lr": 0.00462861}, "lr=0.0046286,momentum=0.9"),
        ({"width": 14.56712, "height": -42.89512}, "height=-42.895,width=14.567"),
        ({"model/lr": 0.1, "batch": 32}, "batch=32,lr=0.1"),
        ({"actor/lr": 0.1, "critic/lr": 0.2}, "actor.lr=0.1,critic.lr=0.2"),
        ({"layers/0": 16, "layers/1": 64}, "layers.0=16,layers.1=64"),
        ({"ab": (5, 3)}, "ab=5_3"),
        ({"act": "leaky relu/2"}, "act=leaky_relu_2"),
        ({"flag": True, "none": None}, "flag=True,none=None"),
        ({"fn": named_constant}, "fn=named_constant"),
        ({"lr": 1e-5}, "lr=1e-05"),
        ({}, ""),
    ],
)
def test_format_vars_makes_a_sorted_compact_file_name_safe_tag(flat, tag):
    assert format_vars(flat) == tag


def test_format_vars_output_is_safe_in_file_names():
    tag = format_vars({"a b/c": "x/y z", "p": [1.23456789, "q r"]})
    assert "/" not in tag and " " not in tag


def test_flatten_suggested_adds_what_a_searcher_with_its_own_space_chose():
    from atune.search.variant_generator import flatten_suggested

    space = {"lr": tune.uniform(0, 1), "const": 3, "model": {"depth": 2}}
    config = {"lr": 0.5, "const": 3, "model": {"depth": 2, "width": 64}, "act": "relu"}
    assert flatten_suggested(space, config) == {"lr": 0.5, "model/width": 64, "act": "relu"}
    # Only constants in the param space (the searcher has its own): all searched values.
    assert flatten_suggested({"const": 3}, {"const": 3, "x": {"y": 1.5}}) == {"x/y": 1.5}
    # A sample_from returning a dict is one searched leaf, not flattened further.
    fn_space = {"a": tune.sample_from(lambda spec: {"x": 1})}
    assert flatten_suggested(fn_space, {"a": {"x": 1}}) == {"a": {"x": 1}}
