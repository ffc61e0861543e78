"""Search-space domains: samples stay inside their domain, seeds reproduce, errors explain."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import atune as tune
from atune.errors import AtuneError, ConfigError, ConfigTypeError
from atune.search.sample import Categorical, Float, Function, Integer, _as_generator

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
N = 25  # samples drawn per hypothesis example


def is_multiple(value: float, q: float) -> bool:
    ratio = value / q
    return math.isclose(ratio, round(ratio), rel_tol=1e-9, abs_tol=1e-6)


# ------------------------------------------------------------------ every sample in its domain


@given(
    lower=st.floats(-1e6, 1e6),
    width=st.floats(1e-3, 1e6),
    seed=SEEDS,
)
def test_uniform_samples_are_floats_inside_bounds(lower, width, seed):
    domain = tune.uniform(lower, lower + width)
    for value in domain.sample(size=N, random_state=seed):
        assert type(value) is float
        assert lower <= value <= lower + width
        assert domain.is_valid(value)


@given(
    lower=st.floats(-1e3, 1e3),
    q=st.floats(1e-3, 1e2),
    spans=st.floats(2.0, 50.0),
    seed=SEEDS,
)
def test_quniform_samples_are_multiples_of_q_inside_bounds(lower, q, spans, seed):
    upper = lower + spans * q
    domain = tune.quniform(lower, upper, q)
    for value in domain.sample(size=N, random_state=seed):
        assert type(value) is float
        assert lower <= value <= upper
        assert is_multiple(value, q)
        assert domain.is_valid(value)


@given(
    lower=st.floats(1e-6, 1e3),
    ratio=st.floats(1.001, 1e6),
    base=st.sampled_from([2, math.e, 10, 0.5]),
    seed=SEEDS,
)
def test_loguniform_samples_are_inside_bounds(lower, ratio, base, seed):
    upper = lower * ratio
    domain = tune.loguniform(lower, upper, base=base)
    for value in domain.sample(size=N, random_state=seed):
        assert type(value) is float
        assert lower <= value <= upper


@given(
    lower=st.floats(1e-3, 10.0),
    q=st.floats(1e-4, 1.0),
    spans=st.floats(2.0, 1000.0),
    seed=SEEDS,
)
def test_qloguniform_samples_are_multiples_of_q_inside_bounds(lower, q, spans, seed):
    upper = lower + spans * q
    domain = tune.qloguniform(lower, upper, q)
    for value in domain.sample(size=N, random_state=seed):
        assert lower <= value <= upper
        assert is_multiple(value, q)


@given(mean=st.floats(-1e3, 1e3), sd=st.floats(1e-3, 1e3), seed=SEEDS)
def test_randn_samples_are_finite_floats(mean, sd, seed):
    for value in tune.randn(mean, sd).sample(size=N, random_state=seed):
        assert type(value) is float
        assert math.isfinite(value)


@given(mean=st.floats(-1e3, 1e3), sd=st.floats(1e-3, 1e3), q=st.floats(1e-3, 10.0), seed=SEEDS)
def test_qrandn_samples_are_multiples_of_q(mean, sd, q, seed):
    for value in tune.qrandn(mean, sd, q).sample(size=N, random_state=seed):
        assert type(value) is float
        assert is_multiple(value, q)


@given(lower=st.integers(-(10**6), 10**6), width=st.integers(1, 10**6), seed=SEEDS)
def test_randint_samples_are_ints_with_upper_excluded(lower, width, seed):
    domain = tune.randint(lower, lower + width)
    for value in domain.sample(size=N, random_state=seed):
        assert type(value) is int
        assert lower <= value < lower + width
        assert domain.is_valid(value)


@given(
    lower=st.integers(-1000, 1000),
    q=st.integers(2, 50),
    extra=st.integers(0, 500),
    seed=SEEDS,
)
def test_qrandint_samples_are_multiples_of_q_with_upper_included(lower, q, extra, seed):
    upper = lower + q + extra
    domain = tune.qrandint(lower, upper, q)
    for value in domain.sample(size=N, random_state=seed):
        assert type(value) is int
        assert lower <= value <= upper
        assert value % q == 0
        assert domain.is_valid(value)


@given(lower=st.integers(1, 1000), width=st.integers(1, 10**5), seed=SEEDS)
def test_lograndint_samples_are_ints_with_upper_excluded(lower, width, seed):
    domain = tune.lograndint(lower, lower + width)
    for value in domain.sample(size=N, random_state=seed):
        assert type(value) is int
        assert lower <= value < lower + width


@given(
    lower=st.integers(1, 100),
    q=st.integers(2, 20),
    extra=st.integers(0, 1000),
    seed=SEEDS,
)
def test_qlograndint_samples_are_multiples_of_q_with_upper_included(lower, q, extra, seed):
    upper = lower + q + extra
    domain = tune.qlograndint(lower, upper, q)
    for value in domain.sample(size=N, random_state=seed):
        assert type(value) is int
        assert lower <= value <= upper
        assert value % q == 0


@given(categories=st.lists(st.integers() | st.text(max_size=5), min_size=1), seed=SEEDS)
def test_choice_samples_are_categories(categories, seed):
    for value in tune.choice(categories).sample(size=N, random_state=seed):
        assert value in categories


# ------------------------------------------------------------------ bound inclusivity, exactly


def test_randint_never_reaches_upper():
    assert set(tune.randint(0, 3).sample(size=2000, random_state=0)) == {0, 1, 2}


def test_qrandint_reaches_both_bounds():
    values = set(tune.qrandint(-21, 12, 3).sample(size=2000, random_state=0))
    assert values == set(range(-21, 13, 3))


def test_qrandint_with_q_1_excludes_upper_like_randint():
    domain = tune.qrandint(0, 3)
    assert domain == tune.randint(0, 3)
    assert set(domain.sample(size=2000, random_state=0)) == {0, 1, 2}


def test_lograndint_never_reaches_upper():
    assert set(tune.lograndint(1, 4).sample(size=3000, random_state=0)) == {1, 2, 3}


def test_qlograndint_reaches_upper():
    assert set(tune.qlograndint(1, 10, 2).sample(size=3000, random_state=0)) == {2, 4, 6, 8, 10}


def test_qlograndint_with_q_1_excludes_upper_like_lograndint():
    assert tune.qlograndint(1, 10, 1) == tune.lograndint(1, 10)


def test_quniform_reaches_both_bounds_without_float_noise():
    values = set(tune.quniform(3.2, 5.4, 0.2).sample(size=3000, random_state=0))
    assert values == {round(3.2 + 0.2 * k, 1) for k in range(12)}


def test_qloguniform_values_have_no_float_noise():
    for value in tune.qloguniform(1e-4, 1e-1, 5e-5).sample(size=200, random_state=0):
        assert value == round(value, 5)


def test_samples_serialise_to_json():
    domains = [tune.uniform(0, 1), tune.randint(0, 9), tune.qrandint(0, 9, 3), tune.randn()]
    json.dumps([d.sample(size=5, random_state=0) for d in domains])


def test_choice_of_numpy_values_gives_python_values():
    assert type(tune.choice(np.arange(3)).sample(random_state=0)) is int


def test_choice_gives_each_sample_its_own_copy_of_a_mutable_category():
    domain = tune.choice([[1, 2]])
    first, second = domain.sample(size=2, random_state=0)
    first.append(3)
    assert second == [1, 2] and domain.categories == ([1, 2],)


# ------------------------------------------------------------------ seeds and random_state


FACTORIES = [
    lambda: tune.uniform(-5, -1),
    lambda: tune.quniform(3.2, 5.4, 0.2),
    lambda: tune.loguniform(1e-4, 1e-2),
    lambda: tune.qloguniform(1e-4, 1e-1, 5e-5),
    lambda: tune.randn(10, 2),
    lambda: tune.qrandn(10, 2, 0.2),
    lambda: tune.randint(-9, 15),
    lambda: tune.qrandint(-21, 12, 3),
    lambda: tune.lograndint(1, 10),
    lambda: tune.qlograndint(1, 10, 2),
    lambda: tune.choice(["a", "b", "c"]),
    lambda: tune.sample_from(lambda: np.random.uniform() + random.random()),
]


@pytest.mark.parametrize("factory", FACTORIES)
@given(seed=SEEDS)
def test_a_seed_reproduces_its_sequence(factory, seed):
    domain = factory()
    assert domain.sample(size=10, random_state=seed) == domain.sample(size=10, random_state=seed)


@pytest.mark.parametrize("factory", FACTORIES)
def test_generator_and_random_state_reproduce_sequences(factory):
    domain = factory()
    gen = [domain.sample(size=5, random_state=np.random.default_rng(3)) for _ in range(2)]
    legacy = [domain.sample(size=5, random_state=np.random.RandomState(3)) for _ in range(2)]
    assert gen[0] == gen[1] and legacy[0] == legacy[1]


def test_a_shared_generator_advances_between_calls():
    rng = np.random.default_rng(0)
    domain = tune.uniform(0, 1)
    assert domain.sample(random_state=rng) != domain.sample(random_state=rng)


def test_global_numpy_seed_reproduces_unseeded_sampling():
    np.random.seed(7)
    first = tune.uniform(0, 1).sample(size=5)
    np.random.seed(7)
    assert tune.uniform(0, 1).sample(size=5) == first


def test_seeded_sample_from_leaves_the_global_generators_untouched():
    np.random.seed(1)
    random.seed(1)
    expected = (np.random.uniform(), random.random())
    np.random.seed(1)
    random.seed(1)
    tune.sample_from(lambda: np.random.uniform() + random.random()).sample(random_state=5)
    assert (np.random.uniform(), random.random()) == expected


def test_as_generator_accepts_every_documented_form():
    rng = np.random.default_rng(0)
    assert _as_generator(rng) is rng
    for state in (None, 3, np.int64(3), np.random.RandomState(0)):
        assert isinstance(_as_generator(state), np.random.Generator)


@pytest.mark.parametrize(
    ("state", "error", "message"),
    [
        ("abc", ConfigTypeError, "`random_state` must be None, an int seed"),
        (True, ConfigTypeError, "`random_state` must be None, an int seed"),
        (-1, ConfigError, "`random_state` must be >= 0, got -1"),
    ],
)
def test_as_generator_rejects_bad_random_state(state, error, message):
    with pytest.raises(error, match=message):
        _as_generator(state)


def test_size_1_returns_a_value_and_larger_sizes_a_list():
    domain = tune.randint(0, 5)
    assert isinstance(domain.sample(random_state=0), int)
    assert len(domain.sample(size=3, random_state=0)) == 3
    with pytest.raises(ConfigError, match="`size` must be an int >= 1, got 0"):
        domain.sample(size=0)


# ------------------------------------------------------------------ validation errors


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: tune.choice([]), ConfigError, "`choice` needs at least one category, got []"),
        (lambda: tune.choice("abc"), ConfigTypeError, "`choice` needs a list of categories"),
        (lambda: tune.choice({1, 2}), ConfigTypeError, "a set has no stable order"),
        (
            lambda: tune.uniform(5, 1),
            ConfigError,
            "`uniform` needs lower < upper, got lower=5, upper=1",
        ),
        (lambda: tune.uniform(1, 1), ConfigError, "`uniform` needs lower < upper"),
        (lambda: tune.uniform(0, "a"), ConfigTypeError, "`uniform` needs a number for upper"),
        (
            lambda: tune.uniform(0, math.inf),
            ConfigError,
            "`uniform` needs finite lower and upper bounds, got lower=0, upper=inf",
        ),
        (lambda: tune.uniform(math.nan, 1), ConfigError, "`uniform` needs a finite lower"),
        (lambda: tune.quniform(0, 1, 0), ConfigError, "`quniform` needs q > 0, got q=0"),
        (
            lambda: tune.quniform(3.1, 3.15, 0.2),
            ConfigError,
            "`quniform` needs a multiple of q between lower and upper, "
            "got lower=3.1, upper=3.15, q=0.2",
        ),
        (
            lambda: tune.loguniform(0, 1),
            ConfigError,
            "`loguniform` needs lower > 0 to sample in log space, got lower=0",
        ),
        (
            lambda: tune.loguniform(1, 10, base=1),
            ConfigError,
            "`loguniform` needs base > 0 and base != 1, got base=1",
        ),
        (lambda: tune.loguniform(1, 10, base=-2), ConfigError, "`loguniform` needs base > 0"),
        (lambda: tune.qloguniform(1, 10, -1), ConfigError, "`qloguniform` needs q > 0, got q=-1"),
        (lambda: tune.randn(0, 0), ConfigError, "`randn` needs sd > 0, got sd=0"),
        (lambda: tune.randn(0, -1), ConfigError, "`randn` needs sd > 0, got sd=-1"),
        (lambda: tune.qrandn(0, 1, 0), ConfigError, "`qrandn` needs q > 0, got q=0"),
        (lambda: tune.randint(3, 3), ConfigError, "`randint` needs lower < upper"),
        (lambda: tune.randint(0, 2.5), ConfigError, "`randint` needs an integer upper"),
        (lambda: tune.qrandint(0, 10, 0), ConfigError, "`qrandint` needs q > 0, got q=0"),
        (lambda: tune.qrandint(0, 10, 0.5), ConfigError, "`qrandint` needs an integer q"),
        (lambda: tune.qrandint(1, 2, 5), ConfigError, "`qrandint` needs a multiple of q"),
        (lambda: tune.lograndint(0, 10), ConfigError, "`lograndint` needs lower > 0"),
        (lambda: tune.qlograndint(0, 10, 2), ConfigError, "`qlograndint` needs lower > 0"),
        (lambda: tune.qlograndint(1, 10, 2, base=1), ConfigError, "`qlograndint` needs base"),
        (lambda: tune.grid_search([]), ConfigError, "`grid_search` needs at least one value"),
        (lambda: tune.grid_search(3), ConfigTypeError, "`grid_search` needs a list of values"),
        (lambda: tune.sample_from(3), ConfigTypeError, "`sample_from` needs a callable, got 3"),
        (
            lambda: tune.sample_from(lambda a, b: a),
            ConfigError,
            "`sample_from` needs a function taking one argument (spec) or none",
        ),
    ],
)
def test_invalid_arguments_raise_errors_naming_function_rule_and_value(build, error, message):
    with pytest.raises(error) as info:
        build()
    assert message in str(info.value)
    assert isinstance(info.value, AtuneError)


def test_config_errors_are_value_errors_and_type_errors_are_type_errors():
    with pytest.raises(ValueError):
        tune.uniform(2, 1)
    with pytest.raises(TypeError):
        tune.sample_from(None)


# ------------------------------------------------------------------ domain objects


def test_public_functions_build_the_documented_domains():
    assert tune.uniform(-5, -1) == Float(-5, -1).uniform()
    assert tune.quniform(3.2, 5.4, 0.2) == Float(3.2, 5.4).uniform().quantized(0.2)
    assert tune.loguniform(1e-4, 1e-2) == Float(1e-4, 1e-2).loguniform()
    assert tune.randn(10, 2) == Float(None, None).normal(10, 2)
    assert tune.randint(-9, 15) == Integer(-9, 15).uniform()
    assert tune.qrandint(-21, 12, 3) == Integer(-21, 12).uniform().quantized(3)
    assert tune.lograndint(1, 10) == Integer(1, 10).loguniform()
    assert tune.choice(["a", "b"]) == Categorical(["a", "b"]).uniform()


@pytest.mark.parametrize(
    ("domain", "text"),
    [
        (tune.uniform(-5, -1), "uniform(-5, -1)"),
        (tune.quniform(3.2, 5.4, 0.2), "quniform(3.2, 5.4, 0.2)"),
        (tune.loguniform(1e-4, 1e-2), "loguniform(0.0001, 0.01, base=10)"),
        (tune.qloguniform(1e-4, 1e-1, 5e-5), "qloguniform(0.0001, 0.1, 5e-05, base=10)"),
        (tune.randn(10, 2), "randn(10, 2)"),
        (tune.qrandn(10, 2, 0.2), "qrandn(10, 2, 0.2)"),
        (tune.randint(-9, 15), "randint(-9, 15)"),
        (tune.qrandint(-21, 12, 3), "qrandint(-21, 12, 3)"),
        (tune.lograndint(1, 10), "lograndint(1, 10, base=10)"),
        (tune.qlograndint(1, 10, 2), "qlograndint(1, 10, 2, base=10)"),
        (tune.choice(["a", "b"]), "choice(['a', 'b'])"),
        (Categorical([1, 2]).grid(), "Categorical([1, 2]).grid()"),
        (Float(0, 1), "Float(0, 1)"),
    ],
)
def test_repr_reads_like_the_call_that_builds_the_domain(domain, text):
    assert repr(domain) == text


@pytest.mark.parametrize(
    ("domain", "text"),
    [
        (tune.uniform(-5, -1), "[-5, -1]"),
        (tune.quniform(3.2, 5.4, 0.2), "[3.2, 5.4] q=0.2"),
        (tune.loguniform(1, 8, base=2), "[1, 8] (log base 2)"),
        (tune.randn(10, 2), "N(10, 2)"),
        (tune.randint(1, 10), "[1, 10)"),
        (tune.qrandint(-21, 12, 3), "[-21, 12] q=3"),
        (tune.lograndint(1, 10), "[1, 10) (log)"),
        (tune.choice(["a"]), "['a']"),
    ],
)
def test_domain_str_shows_the_range_and_its_inclusivity(domain, text):
    assert domain.domain_str == text


def test_chaining_returns_a_new_domain():
    base = Float(1e-4, 1e-1)
    log = base.loguniform()
    assert base.sampler is None and log is not base
    assert log.quantized(1e-4) == tune.qloguniform(1e-4, 1e-1, 1e-4)


def test_a_domain_takes_only_one_sampler():
    with pytest.raises(ConfigError, match="already has a sampler"):
        tune.uniform(0, 1).loguniform()
    with pytest.raises(ConfigError, match="already quantized"):
        tune.quniform(0, 1, 0.1).quantized(0.2)


def test_chain_methods_validate_with_their_own_name():
    with pytest.raises(ConfigError, match=r"`Float\.loguniform` needs lower > 0"):
        Float(-1, 1).loguniform()
    with pytest.raises(ConfigError, match=r"`Float\.normal` samples an unbounded normal"):
        Float(0, 1).normal()


def test_is_valid_checks_bounds_multiples_and_membership():
    assert tune.uniform(0, 1).is_valid(1) and not tune.uniform(0, 1).is_valid(1.01)
    assert not tune.randint(0, 3).is_valid(3) and tune.qrandint(0, 9, 3).is_valid(9)
    assert not tune.qrandint(0, 9, 3).is_valid(4) and not tune.randint(0, 3).is_valid(1.5)
    assert not tune.quniform(0, 1, 0.25).is_valid(0.3) and tune.quniform(0, 1, 0.25).is_valid(0.5)
    assert tune.choice(["a"]).is_valid("a") and not tune.choice(["a"]).is_valid("b")
    assert not tune.uniform(0, 1).is_valid("x") and not tune.uniform(0, 1).is_valid(True)


def test_grid_and_function_flags():
    assert Categorical([1]).grid().is_grid() and not tune.choice([1]).is_grid()
    assert tune.sample_from(lambda: 1).is_function() and not tune.uniform(0, 1).is_function()


def test_a_grid_domain_is_not_sampled():
    with pytest.raises(ConfigError, match="grid axis"):
        Categorical([1, 2]).grid().sample()


def test_sample_from_cannot_be_grid_searched():
    with pytest.raises(ConfigError, match="cannot be grid searched"):
        tune.sample_from(lambda: 1).grid()


# ------------------------------------------------------------------ sample_from and its spec


def test_sample_from_reads_the_config_by_attribute():
    domain = tune.sample_from(lambda spec: spec.config.alpha * 2)
    assert domain.sample({"alpha": 3}) == 6


def test_sample_from_reads_nested_values_by_attribute_and_item():
    config = {"model": {"lr": 0.5, "layers": [4, 8]}}
    assert tune.sample_from(lambda spec: spec.config.model.lr).sample(config) == 0.5
    assert tune.sample_from(lambda spec: spec["config"]["model"]["lr"]).sample(config) == 0.5
    assert tune.sample_from(lambda spec: spec.config.model.layers[1]).sample(config) == 8


def test_sample_from_without_parameters_is_called_without_spec():
    assert tune.sample_from(lambda: 42).sample() == 42


def test_sample_from_converts_numpy_scalars_to_python():
    assert type(tune.sample_from(lambda: np.int64(3)).sample()) is int


def test_sample_from_sees_unresolved_values_as_lookup_errors():
    def read(spec):
        return spec.config.alpha

    with pytest.raises(KeyError, match="is not resolved yet"):
        Function(read).sample({"alpha": tune.uniform(0, 1)})
    with pytest.raises(AttributeError, match="does not exist"):
        Function(read).sample({})


def test_spec_config_is_a_read_only_mapping():
    seen = {}

    def peek(spec):
        seen["keys"] = sorted(spec.config)
        seen["has"] = "a" in spec.config
        seen["get"] = spec.config.get("missing", 7)
        with pytest.raises(AttributeError):
            spec.config.a = 1
        return 0

    tune.sample_from(peek).sample({"a": 1, "b": 2})
    assert seen == {"keys": ["a", "b"], "has": True, "get": 7}


def test_sample_from_size_gives_a_list_of_calls():
    counter = iter(range(10))
    assert tune.sample_from(lambda: next(counter)).sample(size=3) == [0, 1, 2]
