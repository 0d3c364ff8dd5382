"""Online statistics: O(1) memory accumulators for counts, tallies, time averages and quantiles."""

from __future__ import annotations

import math

__all__ = ["Histogram", "Tally", "TimeAverage"]


class Tally:
    """Count, mean and variance of observations (Welford), without keeping them."""

    __slots__ = ("_m2", "count", "max", "mean")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every observation."""
        self.count = 0
        self.mean = 0.0
        self._m2 = 0.0
        self.max = -math.inf

    def add(self, x: float) -> None:
        """Record one observation."""
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self._m2 += delta * (x - self.mean)
        if x > self.max:
            self.max = x

    @property
    def variance(self) -> float:
        """Sample variance (NaN with fewer than two observations)."""
        return self._m2 / (self.count - 1) if self.count > 1 else math.nan


class TimeAverage:
    """Time-weighted average of a level that changes at discrete instants (WIP, buffer level)."""

    __slots__ = ("_area", "_last", "_start", "level", "max")

    def __init__(self, now: float = 0.0, level: float = 0.0) -> None:
        self.level = level
        self._last = now
        self._start = now
        self._area = 0.0
        self.max = level

    def set(self, now: float, level: float) -> None:
        """The level becomes ``level`` at time ``now``."""
        self._area += self.level * (now - self._last)
        self._last = now
        self.level = level
        if level > self.max:
            self.max = level

    def add(self, now: float, delta: float) -> None:
        """The level changes by ``delta`` at time ``now``."""
        self.set(now, self.level + delta)

    def reset(self, now: float) -> None:
        """Start averaging afresh at ``now`` from the current level."""
        self._area = 0.0
        self._last = now
        self._start = now
        self.max = self.level

    def mean(self, now: float) -> float:
        """Average level from the last reset until ``now``."""
        span = now - self._start
        if span <= 0:
            return self.level
        return (self._area + self.level * (now - self._last)) / span


class Histogram:
    """Quantiles of positive values from log-spaced bins (relative resolution about 1 %), O(1) memory."""

    __slots__ = ("_bins", "_low", "_ratio", "count")

    def __init__(self, low: float = 1e-3, high: float = 1e7, bins_per_decade: int = 230) -> None:
        self._low = low
        self._ratio = math.log(10) / bins_per_decade
        self._bins = [0] * (int(math.log10(high / low) * bins_per_decade) + 2)
        self.count = 0

    def reset(self) -> None:
        """Forget every observation."""
        self._bins = [0] * len(self._bins)
        self.count = 0

    def add(self, x: float) -> None:
        """Record one observation (values below ``low`` share the first bin)."""
        index = 0 if x <= self._low else min(int(math.log(x / self._low) / self._ratio) + 1, len(self._bins) - 1)
        self._bins[index] += 1
        self.count += 1

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0 ≤ q ≤ 1) as the geometric middle of its bin; NaN when empty."""
        if self.count == 0:
            return math.nan
        target = q * self.count
        running = 0
        for index, n in enumerate(self._bins):
            running += n
            if n and running >= target:
                if index == 0:
                    return self._low
                return self._low * math.exp((index - 0.5) * self._ratio)
        return math.nan  # pragma: no cover
