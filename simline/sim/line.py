"""The line: one builder turns a validated scenario into SimPy processes, and the run-time glue between them."""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable, Mapping
from typing import Any

import simpy

from simline.errors import CommandError
from simline.events import (
    Event,
    Observer,
    OrderCompleted,
    OrderCreated,
    ShiftChanged,
    StateChanged,
    UnitFinished,
    UnitReworked,
    UnitScrapped,
)
from simline.rng import Streams
from simline.scenario.model import Scenario
from simline.sim.calendar import WorkCalendar
from simline.sim.machine import Machine
from simline.sim.resources import Pool, Transport
from simline.sim.source import OrderSource
from simline.sim.station import StationRuntime
from simline.sim.units import Order, Unit, Variant
from simline.stats import Histogram, Tally, TimeAverage

__all__ = ["Line", "LineStats"]


class LineStats:
    """Line-wide statistics since the end of the warm-up."""

    def __init__(self, now: float, wip_level: float = 0.0) -> None:
        self.wip = TimeAverage(now, wip_level)  # units in the system (released, not yet finished or scrapped)
        self.unit_time = Tally()  # release to exit of each unit (finished or scrapped)
        self.lead_time = Tally()  # order created to order complete
        self.lead_time_hist = Histogram()
        self.orders_created = 0
        self.orders_completed = 0
        self.orders_on_time = 0
        self.orders_late = 0
        self.tardiness = 0.0  # minutes late, summed over late orders
        self.units_released = 0
        self.units_finished = 0
        self.units_good = 0
        self.units_first_pass = 0  # good and never reworked
        self.units_scrapped = 0
        self.units_reworked = 0
        self.revenue = 0.0
        self.material_cost = 0.0  # of the units that left the line (finished or scrapped), like revenue


class Line:
    """A runnable model of a scenario for one replication.

    Args:
        scenario: The validated scenario.
        replication: Replication number; selects the random streams together with the seed.
        seed: Overrides the scenario's seed.
        observers: Called with every event the model emits.
        live: Prepare the machines for live commands (fault injection, reset); a little slower.
    """

    def __init__(
        self,
        scenario: Scenario,
        replication: int = 0,
        seed: int | None = None,
        observers: Iterable[Observer] = (),
        live: bool = False,
    ) -> None:
        self.scenario = scenario
        self.live = live
        self.env = env = simpy.Environment()
        self.streams = streams = Streams(scenario.experiment.seed if seed is None else seed, replication)
        self.observers: list[Observer] = list(observers)
        self.emit = self._emit if self.observers else None
        self.calendar = WorkCalendar(scenario.calendar)
        self.off_shift = not self.calendar.state_at(0.0)[0]
        self.stations = [StationRuntime(spec, i, env, streams) for i, spec in enumerate(scenario.stations)]
        self.by_id = {st.id: st for st in self.stations}
        technicians = scenario.maintenance.technicians
        self.crew = Pool(env, technicians) if technicians else None
        self.transport = Transport(env, scenario.transport, streams, self._deliver)
        self._products = {p.family: p for p in scenario.products}
        self._variants: dict[str, Variant] = {}
        self._backlog: dict[str, deque[Unit]] = {}
        self._unit_ids = 0
        self._order_ids = 0
        self.orders: dict[str, Order] = {}  # open orders
        self.stats = LineStats(env.now)
        self.released_total = 0
        self.finished_total = 0
        self.scrapped_total = 0
        # A live line is watched from its first minute: its KPIs count from the start, without a warm-up.
        self.warmup = 0.0 if live else scenario.experiment.warmup_hours * 60.0
        self.horizon = scenario.experiment.horizon_hours * 60.0
        for st in self.stations:
            st.machines = [Machine(st, i, self) for i in range(st.spec.machines)]
        self.machines = [m for st in self.stations for m in st.machines]
        self.source = OrderSource(scenario, self, streams)
        if not self.calendar.always_on:
            env.process(self._calendar())
        if self.warmup > 0:
            env.timeout(self.warmup).callbacks.append(lambda _: self.reset_stats())

    # --- running -------------------------------------------------------------------------------------
    def run(self, until_minutes: float | None = None) -> None:
        """Advance the model to ``until_minutes`` (default: the experiment's horizon)."""
        self.env.run(until=self.horizon if until_minutes is None else until_minutes)
        for machine in self.machines:
            machine.flush()

    def add_observer(self, observer: Observer) -> None:
        """Attach an observer (events are built from now on)."""
        self.observers.append(observer)
        self.emit = self._emit

    def _emit(self, event: Event) -> None:
        for observer in self.observers:
            observer(event)

    def reset_stats(self) -> None:
        """Start every statistic afresh, keeping the current state of the line (the end of the warm-up)."""
        now = self.env.now
        self.stats = LineStats(now, self.stats.wip.level)
        for st in self.stations:
            st.reset_stats()
        if self.crew is not None:
            self.crew.busy.reset(now)
        if self.transport.pool is not None:
            self.transport.pool.busy.reset(now)

    def _calendar(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        while True:
            working, change = self.calendar.state_at(env.now)
            if working == self.off_shift:  # the line's flag is stale: switch it
                for machine in self.machines:
                    machine.flush()
                self.off_shift = not working
                if self.emit is not None:
                    self.emit(ShiftChanged(env.now, working))
                    for m in self.machines:
                        self.emit(StateChanged(env.now, m.station.id, m.index, m.effective_state))
            yield env.timeout(change - env.now)

    # --- orders and units ----------------------------------------------------------------------------
    def variant(self, family: str, options: Mapping[str, str]) -> Variant:
        """The variant for a configuration (assumed valid: see :meth:`check_order`)."""
        product = self._products[family]
        chosen = tuple((name, options[name]) for name in product.options)
        key = family + "|" + ";".join(f"{k}={v}" for k, v in chosen)
        variant = self._variants.get(key)
        if variant is None:
            facts = {"family": family, **dict(chosen)}
            route = tuple(
                self.by_id[step.station]
                for step in self.scenario.routing
                if all(facts.get(k) in allowed for k, allowed in step.when.items())
            )
            price = product.price + sum(product.options[k].price_extra.get(v, 0.0) for k, v in chosen)
            cost = product.material_cost + sum(product.options[k].cost_extra.get(v, 0.0) for k, v in chosen)
            variant = Variant(key, family, chosen, price, cost, route)
            self._variants[key] = variant
        return variant

    def check_order(self, family: str, options: Mapping[str, str], quantity: int = 1) -> None:
        """Check an order from outside the scenario (a visitor, an MES, a protocol client).

        Raises:
            CommandError: The family, an option or the quantity is not valid, with the allowed values.
        """
        product = self._products.get(family)
        if product is None:
            raise CommandError("family", f"'{family}' is not a product family (known: {', '.join(self._products)})")
        for name, value in options.items():
            option = product.options.get(name)
            if option is None:
                known = ", ".join(product.options) or "none"
                raise CommandError(f"options.{name}", f"'{name}' is not an option of {family} (options: {known})")
            if value not in option.choices:
                raise CommandError(
                    f"options.{name}",
                    f"'{value}' is not a choice of {name} (choices: {', '.join(option.choices)})",
                )
        missing = [n for n in product.options if n not in options]
        if missing:
            raise CommandError("options", f"no choice given for {', '.join(missing)}")
        if not 1 <= quantity <= 10_000:
            raise CommandError("quantity", f"must be between 1 and 10000, got {quantity}")

    def place_order(
        self, family: str, options: Mapping[str, str], quantity: int, due: float, order_id: str | None = None
    ) -> Order:
        """Create an order now and release its units into the line. Returns the order."""
        self._order_ids += 1
        oid = order_id or f"O{self._order_ids:06d}"
        if oid in self.orders:
            raise CommandError("order_id", f"order '{oid}' is already open; order ids must be unique")
        order = Order(oid, self.variant(family, options), quantity, self.env.now, due)
        self.orders[oid] = order
        self.stats.orders_created += 1
        if self.emit is not None:
            self.emit(OrderCreated(self.env.now, oid, family, order.variant.options_text(), quantity, due))
        for _ in range(quantity):
            self._release(order)
        return order

    def _release(self, order: Order) -> None:
        now = self.env.now
        self._unit_ids += 1
        unit = Unit(self._unit_ids, order, now)
        stats = self.stats
        stats.units_released += 1
        stats.wip.add(now, 1)
        self.released_total += 1
        route = order.variant.route
        if not route:
            self.finish(unit)
            return
        first = route[0]
        backlog = self._backlog.get(first.id)
        if backlog:
            backlog.append(unit)
        elif first.buffer.reserve():
            self._deliver(unit, first)
        else:
            self._backlog[first.id] = deque([unit])
            first.buffer.on_space(lambda _: self._feed(first))

    def _feed(self, station: StationRuntime) -> None:
        backlog = self._backlog[station.id]
        self._deliver(backlog.popleft(), station)
        if backlog:
            station.buffer.on_space(lambda _: self._feed(station))

    def backlog(self, station_id: str) -> int:
        """Units released but waiting to enter the first buffer of their route at ``station_id``."""
        return len(self._backlog.get(station_id, ()))

    def _deliver(self, unit: Unit, station: StationRuntime, rework: bool = False) -> None:
        station.enter(unit)
        if rework:
            station.buffer.arrive_rework(unit)
        else:
            station.buffer.arrive(unit)

    def inspect(self, station: StationRuntime, unit: Unit) -> int:
        """Decide a unit's next route step at an inspection: -1 to scrap it."""
        spec = station.spec.inspection
        assert spec is not None
        u = station.inspect_uniform()
        rejected = u < spec.detection_rate if unit.defective else u < spec.false_reject_rate
        if not rejected:
            return unit.step + 1
        station.stats.rejected += 1
        if spec.on_reject == "rework" and unit.reworks < spec.max_rework:
            target = self.by_id[spec.rework_to or ""]
            route = unit.order.variant.route
            if target in route:
                unit.reworks += 1
                unit.defective = False
                self.stats.units_reworked += 1
                if self.emit is not None:
                    self.emit(UnitReworked(self.env.now, station.id, target.id, unit.id, unit.order.id))
                return route.index(target)
        return -1

    def scrap(self, unit: Unit, station: StationRuntime) -> None:
        """A unit is scrapped; a replacement is released for its order."""
        now = self.env.now
        stats = self.stats
        stats.units_scrapped += 1
        stats.material_cost += unit.order.variant.material_cost
        self.scrapped_total += 1
        stats.wip.add(now, -1)
        stats.unit_time.add(now - unit.released)
        if self.emit is not None:
            self.emit(UnitScrapped(now, station.id, unit.id, unit.order.id))
        self._release(unit.order)

    def finish(self, unit: Unit) -> None:
        """A unit left the line at the end of its route."""
        now = self.env.now
        stats = self.stats
        order = unit.order
        stats.units_finished += 1
        stats.material_cost += order.variant.material_cost
        self.finished_total += 1
        good = not unit.defective
        if good:
            stats.units_good += 1
            if not unit.reworks:
                stats.units_first_pass += 1
        stats.revenue += order.variant.price
        stats.wip.add(now, -1)
        stats.unit_time.add(now - unit.released)
        if self.emit is not None:
            self.emit(UnitFinished(now, unit.id, order.id, good))
        order.done += 1
        if order.done == order.quantity:
            lead = now - order.created
            on_time = now <= order.due
            stats.orders_completed += 1
            stats.orders_on_time += on_time
            if not on_time:
                stats.orders_late += 1
                stats.tardiness += now - order.due
            stats.lead_time.add(lead)
            stats.lead_time_hist.add(lead)
            del self.orders[order.id]
            if self.emit is not None:
                self.emit(OrderCompleted(now, order.id, lead, on_time))

    @property
    def staff(self) -> int:
        """People the line needs while it works: station operators, technicians and staffed carriers."""
        pool = self.transport.pool
        carriers = pool.size if pool is not None and getattr(self.scenario.transport, "staffed", False) else 0
        technicians = self.scenario.maintenance.technicians or 0
        return sum(st.spec.operators for st in self.stations) + technicians + carriers

    @property
    def wip(self) -> int:
        """Units in the system now."""
        return self.released_total - self.finished_total - self.scrapped_total
