"""Duration distributions: samplers agree with their stated means, are reproducible and never negative."""

from __future__ import annotations

import math
import re
from typing import Any, get_args

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from scipy import stats

from simline.distributions import (
    Distribution,
    DistSpec,
    Empirical,
    Exponential,
    Fixed,
    LogNormal,
    Normal,
    Triangular,
    Uniform,
    make_sampler,
    mean_of,
)

N = 200_000
SEED = 20240611
Z = 5.0  # tolerance in standard errors of the sample mean

DIST: TypeAdapter[DistSpec] = TypeAdapter(Distribution)


def _truncnorm_moments(mu: float, sd: float) -> tuple[float, float]:
    """Mean and variance of N(mu, sd²) truncated to [0, ∞), from the closed-form formulas."""
    alpha = -mu / sd
    phi = math.exp(-0.5 * alpha * alpha) / math.sqrt(2 * math.pi)
    tail = 0.5 * math.erfc(alpha / math.sqrt(2))  # 1 - Φ(alpha)
    lam = phi / tail
    return mu + sd * lam, sd * sd * (1 + alpha * lam - lam * lam)


def theoretical_variance(dist: DistSpec) -> float:
    """The variance of each distribution, from textbook formulas (independent of simline)."""
    match dist:
        case Fixed():
            return 0.0
        case Uniform(low=a, high=b):
            return (b - a) ** 2 / 12
        case Triangular(low=a, mode=c, high=b):
            return (a * a + b * b + c * c - a * b - a * c - b * c) / 18
        case Normal(mean=mu, sd=sd):
            return 0.0 if sd == 0 else _truncnorm_moments(mu, sd)[1]
        case LogNormal(sd=sd):
            return sd * sd
        case Exponential(mean=mu):
            return mu * mu
        case Empirical(values=values, weights=weights):
            x = np.asarray(values, dtype=float)
            p = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
            p = p / p.sum()
            m = float(p @ x)
            return float(p @ (x - m) ** 2)
    raise AssertionError(f"no variance formula for {dist!r}")


def theoretical_mean(dist: DistSpec) -> float:
    """The mean of each distribution, from textbook formulas (independent of simline)."""
    match dist:
        case Fixed(value=v):
            return v
        case Uniform(low=a, high=b):
            return (a + b) / 2
        case Triangular(low=a, mode=c, high=b):
            return (a + b + c) / 3
        case Normal(mean=mu, sd=sd):
            return mu if sd == 0 else _truncnorm_moments(mu, sd)[0]
        case LogNormal(mean=mu) | Exponential(mean=mu):
            return mu
        case Empirical(values=values, weights=weights):
            w = [1.0] * len(values) if weights is None else weights
            return sum(v * p for v, p in zip(values, w, strict=True)) / sum(w)
    raise AssertionError(f"no mean formula for {dist!r}")


CASES: dict[str, dict[str, Any] | float] = {
    "fixed": {"kind": "fixed", "value": 4.5},
    "fixed-bare-number": 7,
    "fixed-zero": 0,
    "uniform": {"kind": "uniform", "low": 3, "high": 6},
    "uniform-degenerate": {"kind": "uniform", "low": 2, "high": 2},
    "triangular": {"kind": "triangular", "low": 4, "mode": 5, "high": 7},
    "triangular-mode-at-low": {"kind": "triangular", "low": 0, "mode": 0, "high": 10},
    "triangular-degenerate": {"kind": "triangular", "low": 3, "mode": 3, "high": 3},
    "normal": {"kind": "normal", "mean": 10, "sd": 2},
    "normal-heavily-truncated": {"kind": "normal", "mean": 1, "sd": 3},
    "normal-sd-zero": {"kind": "normal", "mean": 5, "sd": 0},
    "lognormal": {"kind": "lognormal", "mean": 30, "sd": 15},
    "lognormal-skewed": {"kind": "lognormal", "mean": 2, "sd": 6},
    "lognormal-sd-zero": {"kind": "lognormal", "mean": 8, "sd": 0},
    "exponential": {"kind": "exponential", "mean": 1200},
    "exponential-small": {"kind": "exponential", "mean": 0.25},
    "empirical": {"kind": "empirical", "values": [2, 5, 10]},
    "empirical-weighted": {"kind": "empirical", "values": [2, 5, 10, 0], "weights": [1, 2, 1, 0.5]},
    "empirical-single": {"kind": "empirical", "values": [3.5]},
}


def _spec(case: str) -> DistSpec:
    return DIST.validate_python(CASES[case])


def _draw(dist: DistSpec, seed: int, n: int = N) -> np.ndarray:
    sampler = make_sampler(dist, np.random.default_rng(seed))
    return np.fromiter((sampler() for _ in range(n)), dtype=float, count=n)


def test_every_kind_is_covered() -> None:
    """Every member of DistSpec has at least one case, so a new kind cannot slip in untested."""
    declared = {get_args(t.model_fields["kind"].annotation)[0] for t in get_args(DistSpec)}
    assert declared == {"fixed", "uniform", "triangular", "normal", "lognormal", "exponential", "empirical"}
    assert {_spec(case).kind for case in CASES} == declared


@pytest.mark.parametrize("case", list(CASES))
def test_mean_of_matches_the_formula(case: str) -> None:
    dist = _spec(case)
    assert mean_of(dist) == pytest.approx(theoretical_mean(dist), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("case", list(CASES))
def test_sample_mean_matches_mean_of(case: str) -> None:
    dist = _spec(case)
    samples = _draw(dist, SEED)
    mean = mean_of(dist)
    var = theoretical_variance(dist)
    if var == 0:
        # exp(log(8)) is 7.999999999999998, so compare to rounding error, not exactly.
        np.testing.assert_allclose(samples, mean, rtol=1e-12)
        return
    se = math.sqrt(var / N)
    assert abs(samples.mean() - mean) <= Z * se, f"sample mean {samples.mean()} vs {mean} (se {se})"
    # The spread is right too. The sample sd of a heavy-tailed lognormal (cv 3) converges slowly: over
    # 20 seeds it stayed within 8% of the truth, against 0.7% for the others.
    assert samples.std() == pytest.approx(math.sqrt(var), rel=0.25 if case == "lognormal-skewed" else 0.03)


@pytest.mark.parametrize("case", list(CASES))
def test_samples_are_never_negative(case: str) -> None:
    samples = _draw(_spec(case), SEED + 1)
    assert samples.min() >= 0
    assert np.all(np.isfinite(samples))


@pytest.mark.parametrize("case", ["uniform", "triangular", "triangular-mode-at-low", "lognormal", "empirical-weighted"])
def test_samples_stay_in_the_support(case: str) -> None:
    dist = _spec(case)
    samples = _draw(dist, SEED + 2, 50_000)
    match dist:
        case Uniform(low=lo, high=hi) | Triangular(low=lo, high=hi):
            assert lo <= samples.min() and samples.max() <= hi
        case LogNormal():
            assert samples.min() > 0
        case Empirical(values=values):
            assert set(np.unique(samples)) <= set(map(float, values))


@pytest.mark.parametrize("case", list(CASES))
def test_same_seed_same_sequence(case: str) -> None:
    dist = _spec(case)
    n = 3 * 512 + 17  # crosses block boundaries
    first, second = _draw(dist, 99, n), _draw(dist, 99, n)
    assert np.array_equal(first, second)


@pytest.mark.parametrize("case", ["uniform", "triangular", "normal", "lognormal", "exponential", "empirical"])
def test_different_seeds_differ(case: str) -> None:
    dist = _spec(case)
    assert not np.array_equal(_draw(dist, 1, 1000), _draw(dist, 2, 1000))


def test_samplers_on_separate_generators_are_independent_of_each_other() -> None:
    """A sampler's sequence depends only on its own generator, not on other samplers being drawn from."""
    dist = _spec("exponential")
    alone = _draw(dist, 5, 2000)
    a = make_sampler(dist, np.random.default_rng(5))
    b = make_sampler(_spec("uniform"), np.random.default_rng(6))
    interleaved = []
    for _ in range(2000):
        interleaved.append(a())
        b()
    assert np.array_equal(alone, np.asarray(interleaved))


def test_sampler_exposes_the_mean() -> None:
    for case in CASES:
        dist = _spec(case)
        assert make_sampler(dist, np.random.default_rng(0)).mean == mean_of(dist)


def test_sampler_returns_python_floats() -> None:
    sampler = make_sampler(_spec("triangular"), np.random.default_rng(0))
    assert type(sampler()) is float


# --------------------------------------------------------------------------------------------------
# The truncated normal against scipy
# --------------------------------------------------------------------------------------------------


def _scipy_truncnorm(mu: float, sd: float) -> Any:
    return stats.truncnorm(a=(0 - mu) / sd, b=np.inf, loc=mu, scale=sd)


@pytest.mark.parametrize(("mu", "sd"), [(10, 2), (1, 3), (5, 5), (0.1, 10), (3, 0.5), (100, 1), (0.01, 0.02), (2, 40)])
def test_truncated_normal_mean_matches_scipy(mu: float, sd: float) -> None:
    reference = _scipy_truncnorm(mu, sd)
    dist = Normal(kind="normal", mean=mu, sd=sd)
    assert mean_of(dist) == pytest.approx(reference.mean(), rel=1e-9)
    # The test's own variance formula agrees with scipy as well, so the tolerance below is sound.
    assert theoretical_variance(dist) == pytest.approx(reference.var(), rel=1e-9)


@pytest.mark.parametrize(("mu", "sd"), [(1, 3), (0.1, 10), (4, 2)])
def test_truncated_normal_samples_match_scipy(mu: float, sd: float) -> None:
    reference = _scipy_truncnorm(mu, sd)
    samples = _draw(Normal(kind="normal", mean=mu, sd=sd), SEED + 3)
    assert abs(samples.mean() - reference.mean()) <= Z * math.sqrt(reference.var() / N)
    # The whole shape, not just the mean: Kolmogorov-Smirnov against the truncated normal.
    assert stats.kstest(samples[:20_000], reference.cdf).pvalue > 1e-4


@settings(max_examples=200, deadline=None)
@given(
    mu=st.floats(min_value=1e-3, max_value=1e4, allow_nan=False),
    sd=st.floats(min_value=1e-3, max_value=1e4, allow_nan=False),
)
def test_truncated_normal_mean_matches_scipy_everywhere(mu: float, sd: float) -> None:
    expected = _scipy_truncnorm(mu, sd).mean()
    got = mean_of(Normal(kind="normal", mean=mu, sd=sd))
    assert got == pytest.approx(expected, rel=1e-7)
    assert got >= mu


@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(min_value=0, max_value=1e4, allow_nan=False),
    b=st.floats(min_value=0, max_value=1e4, allow_nan=False),
    c=st.floats(min_value=0, max_value=1e4, allow_nan=False),
)
def test_uniform_and_triangular_means_lie_in_the_range(a: float, b: float, c: float) -> None:
    lo, mode, hi = sorted((a, b, c))
    for dist in (
        Uniform(kind="uniform", low=lo, high=hi),
        Triangular(kind="triangular", low=lo, mode=mode, high=hi),
    ):
        assert lo - 1e-9 <= mean_of(dist) <= hi + 1e-9


# --------------------------------------------------------------------------------------------------
# Validation of parameters
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (-1, "greater than or equal to 0"),
        ({"kind": "fixed", "value": -0.5}, "greater than or equal to 0"),
        ({"kind": "uniform", "low": 5, "high": 3}, "high (3.0) must be at least low (5.0)"),
        ({"kind": "uniform", "low": -1, "high": 3}, "greater than or equal to 0"),
        ({"kind": "triangular", "low": 6, "mode": 5, "high": 7}, "need low <= mode <= high"),
        ({"kind": "triangular", "low": 4, "mode": 8, "high": 7}, "need low <= mode <= high"),
        ({"kind": "triangular", "low": 4, "mode": 5}, "Field required"),
        ({"kind": "normal", "mean": 0, "sd": 1}, "greater than 0"),
        ({"kind": "normal", "mean": 5, "sd": -1}, "greater than or equal to 0"),
        ({"kind": "lognormal", "mean": -2, "sd": 1}, "greater than 0"),
        ({"kind": "lognormal", "mean": 2, "sd": -1}, "greater than or equal to 0"),
        ({"kind": "exponential", "mean": 0}, "greater than 0"),
        ({"kind": "exponential", "mean": -3}, "greater than 0"),
        ({"kind": "exponential", "rate": 3}, "Extra inputs are not permitted"),
        ({"kind": "empirical", "values": []}, "at least 1 item"),
        ({"kind": "empirical", "values": [1, -2]}, "greater than or equal to 0"),
        ({"kind": "empirical", "values": [1, 2], "weights": [1]}, "weights has 1 entries but values has 2"),
        ({"kind": "empirical", "values": [1, 2], "weights": [0, 0]}, "weights must not all be zero"),
        ({"kind": "empirical", "values": [1, 2], "weights": [1, -1]}, "greater than or equal to 0"),
        ({"kind": "gamma", "mean": 3}, "does not match any of the expected tags"),
        ({"mean": 3}, "Unable to extract tag"),
        (True, "valid dictionary"),
        ("five", "valid dictionary"),
    ],
)
def test_bad_parameters_are_refused(spec: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        DIST.validate_python(spec)


def test_distributions_are_immutable() -> None:
    dist = _spec("triangular")
    with pytest.raises(ValidationError, match="frozen"):
        dist.low = 0  # type: ignore[misc]


def test_bare_number_is_fixed() -> None:
    assert DIST.validate_python(3) == Fixed(value=3.0)
    assert DIST.validate_python(2.5) == Fixed(kind="fixed", value=2.5)
