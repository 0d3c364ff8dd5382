"""Probability distributions for durations: their scenario schema, their means and fast samplers.

Every duration in a scenario is in **minutes**. A bare number means a fixed duration. Samplers draw from their own
numpy ``Generator`` in blocks, so a run pays numpy's call overhead once per block, not once per sample; the
sequence of values is still fully determined by the stream's seed.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = [
    "DistSpec",
    "Distribution",
    "Empirical",
    "Exponential",
    "Fixed",
    "LogNormal",
    "Normal",
    "Sampler",
    "Triangular",
    "Uniform",
    "make_sampler",
    "mean_of",
]

_BLOCK = 512


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Fixed(_Dist):
    """Always the same value."""

    kind: Literal["fixed"] = "fixed"
    value: float = Field(ge=0)


class Uniform(_Dist):
    """Uniform between ``low`` and ``high``."""

    kind: Literal["uniform"]
    low: float = Field(ge=0)
    high: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be at least low ({self.low})")
        return self


class Triangular(_Dist):
    """Triangular with minimum ``low``, most likely ``mode`` and maximum ``high``."""

    kind: Literal["triangular"]
    low: float = Field(ge=0)
    mode: float = Field(ge=0)
    high: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Triangular:
        if not self.low <= self.mode <= self.high:
            raise ValueError(f"need low <= mode <= high, got {self.low}, {self.mode}, {self.high}")
        return self


class Normal(_Dist):
    """Normal with ``mean`` and standard deviation ``sd``, truncated at 0 (negative draws are redrawn)."""

    kind: Literal["normal"]
    mean: float = Field(gt=0)
    sd: float = Field(ge=0)


class LogNormal(_Dist):
    """Log-normal given by the ``mean`` and standard deviation ``sd`` of the duration itself."""

    kind: Literal["lognormal"]
    mean: float = Field(gt=0)
    sd: float = Field(ge=0)


class Exponential(_Dist):
    """Exponential with the given ``mean``."""

    kind: Literal["exponential"]
    mean: float = Field(gt=0)


class Empirical(_Dist):
    """One of ``values``, with optional ``weights`` (equal when omitted)."""

    kind: Literal["empirical"]
    values: list[Annotated[float, Field(ge=0)]] = Field(min_length=1)
    weights: list[Annotated[float, Field(ge=0)]] | None = None

    @model_validator(mode="after")
    def _weights_match(self) -> Empirical:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(f"weights has {len(self.weights)} entries but values has {len(self.values)}")
            if sum(self.weights) <= 0:
                raise ValueError("weights must not all be zero")
        return self


def _number_is_fixed(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return {"kind": "fixed", "value": value}
    return value


DistSpec = Fixed | Uniform | Triangular | Normal | LogNormal | Exponential | Empirical
"""Any one validated distribution."""

Distribution = Annotated[
    Annotated[DistSpec, Field(discriminator="kind")],
    BeforeValidator(_number_is_fixed),
]
"""A duration distribution: a bare number (fixed) or a mapping with a ``kind``."""


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def mean_of(dist: DistSpec) -> float:
    """The exact mean of a distribution (of the truncated one for ``normal``)."""
    match dist:
        case Fixed(value=v):
            return v
        case Uniform(low=lo, high=hi):
            return (lo + hi) / 2
        case Triangular(low=lo, mode=m, high=hi):
            return (lo + m + hi) / 3
        case Normal(mean=mu, sd=sd):
            if sd == 0:
                return mu
            a = -mu / sd
            return mu + sd * _phi(a) / (1 - _cdf(a))
        case LogNormal(mean=mu):
            return mu
        case Exponential(mean=mu):
            return mu
        case Empirical(values=vals, weights=w):
            if w is None:
                return sum(vals) / len(vals)
            return sum(v * x for v, x in zip(vals, w, strict=True)) / sum(w)
    raise TypeError(f"unknown distribution {dist!r}")  # pragma: no cover


class Sampler:
    """Draws durations from one distribution with its own random stream, a block at a time."""

    __slots__ = ("_buf", "_draw", "mean")

    def __init__(
        self,
        dist: DistSpec,
        rng: np.random.Generator,
    ) -> None:
        self.mean = mean_of(dist)
        self._buf: list[float] = []
        self._draw = _block_drawer(dist, rng)

    def __call__(self) -> float:
        """Return the next value of the stream."""
        buf = self._buf
        if not buf:
            buf.extend(self._draw())
        return buf.pop()


def _block_drawer(dist: DistSpec, rng: np.random.Generator) -> Any:
    match dist:
        case Fixed(value=v):
            block = [v] * _BLOCK
            return lambda: block
        case Uniform(low=lo, high=hi):
            return lambda: rng.uniform(lo, hi, _BLOCK)[::-1].tolist()
        case Triangular(low=lo, mode=m, high=hi):
            if lo == hi:
                return lambda: [lo] * _BLOCK
            return lambda: rng.triangular(lo, m, hi, _BLOCK)[::-1].tolist()
        case Normal(mean=mu, sd=sd):

            def normal() -> list[float]:
                x = rng.normal(mu, sd, _BLOCK)
                kept: list[float] = x[x >= 0][::-1].tolist()
                return kept

            return normal
        case LogNormal(mean=mu, sd=sd):
            s2 = math.log1p((sd / mu) ** 2)
            m = math.log(mu) - s2 / 2
            return lambda: rng.lognormal(m, math.sqrt(s2), _BLOCK)[::-1].tolist()
        case Exponential(mean=mu):
            return lambda: rng.exponential(mu, _BLOCK)[::-1].tolist()
        case Empirical(values=vals, weights=w):
            values = np.asarray(vals, dtype=float)
            p = None if w is None else np.asarray(w, dtype=float) / sum(w)
            return lambda: rng.choice(values, _BLOCK, p=p)[::-1].tolist()
    raise TypeError(f"unknown distribution {dist!r}")  # pragma: no cover


def make_sampler(dist: DistSpec, rng: np.random.Generator) -> Sampler:
    """Build a sampler for ``dist`` drawing from ``rng``."""
    return Sampler(dist, rng)
