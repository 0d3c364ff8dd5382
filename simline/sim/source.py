"""Where orders come from: Poisson arrivals with the demand mix, or an order book."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from simline.distributions import Exponential, Uniform, make_sampler
from simline.rng import Streams
from simline.scenario.model import Scenario
from simline.scenario.orders import OrderBook, PoissonOrders

if TYPE_CHECKING:
    from simline.sim.line import Line

__all__ = ["OrderSource"]

_U01 = Uniform(kind="uniform", low=0.0, high=1.0)


class _Choice:
    """Draws one of ``names`` with the given shares from a uniform stream."""

    def __init__(self, names: list[str], shares: list[float], uniform: Any) -> None:
        self.names = names
        self.cumulative = list(itertools.accumulate(shares))
        self.uniform = uniform

    def __call__(self) -> str:
        if len(self.names) == 1:
            return self.names[0]
        u = self.uniform() * self.cumulative[-1]
        return self.names[min(bisect.bisect_right(self.cumulative, u), len(self.names) - 1)]


class OrderSource:
    """Creates the orders of a run and hands them to the line."""

    def __init__(self, scenario: Scenario, line: Line, streams: Streams) -> None:
        self.spec = scenario.orders
        self.line = line
        self.env: simpy.Environment = line.env
        mix = make_sampler(_U01, streams.generator("orders", "mix"))
        self._family = _Choice([p.family for p in scenario.products], [p.share for p in scenario.products], mix)
        self._options = {
            p.family: [
                (name, _Choice(list(opt.choices), list(opt.choices.values()), mix)) for name, opt in p.options.items()
            ]
            for p in scenario.products
        }
        self.count = 0
        if isinstance(self.spec, PoissonOrders):
            self._gap = make_sampler(
                Exponential(kind="exponential", mean=60.0 / self.spec.rate_per_hour),
                streams.generator("orders", "arrivals"),
            )
            self.process = self.env.process(self._poisson(self.spec))
        else:
            self.process = self.env.process(self._book(self.spec))

    def random_configuration(self) -> tuple[str, dict[str, str]]:
        """A family and option choices drawn from the demand mix."""
        family = self._family()
        return family, {name: choose() for name, choose in self._options[family]}

    def _poisson(self, spec: PoissonOrders) -> Generator[simpy.Event, Any, None]:
        due = spec.due_in_hours * 60.0
        while True:
            yield self.env.timeout(self._gap())
            family, options = self.random_configuration()
            self.line.place_order(family, options, spec.quantity, self.env.now + due)

    def _book(self, spec: OrderBook) -> Generator[simpy.Event, Any, None]:
        rows = sorted(spec.rows, key=lambda r: r.release_hour)
        for row in rows:
            release = row.release_hour * 60.0
            if release > self.env.now:
                yield self.env.timeout(release - self.env.now)
            due = (row.due_hour * 60.0) if row.due_hour is not None else release + spec.due_in_hours * 60.0
            self.line.place_order(row.family, row.options, row.quantity, due, order_id=row.order_id)
