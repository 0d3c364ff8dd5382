"""A station at run time: its machines, buffer, random streams and online statistics."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import simpy

from simline.distributions import Sampler, Uniform, make_sampler
from simline.events import MachineState
from simline.rng import Streams
from simline.scenario.stations import Station
from simline.sim.buffer import Buffer
from simline.stats import Tally, TimeAverage

if TYPE_CHECKING:
    from simline.sim.machine import Machine
    from simline.sim.units import Unit, Variant

__all__ = ["StationRuntime", "StationStats"]

N_STATES = len(MachineState)


class StationStats:
    """Counters and tallies of one station since the last reset (the end of the warm-up)."""

    __slots__ = (
        "down_time",
        "failures",
        "good",
        "maintenances",
        "planned_runtime",
        "processed",
        "rejected",
        "setups",
        "sojourn",
        "wip",
    )

    def __init__(self, now: float) -> None:
        self.processed = 0  # PQ: operations completed
        self.good = 0  # GQ: operations that did not make the unit defective
        self.planned_runtime = 0.0  # sum of planned (mean) processing times of the units processed (PRI x PQ)
        self.setups = 0
        self.failures = 0
        self.maintenances = 0
        self.rejected = 0
        self.down_time = Tally()  # breakdown to end of repair
        self.sojourn = Tally()  # arrival in the buffer to leaving the machine
        self.wip = TimeAverage(now)  # units in the buffer and on the machines


class StationRuntime:
    """Everything the machines of one station share."""

    def __init__(self, spec: Station, index: int, env: simpy.Environment, streams: Streams) -> None:
        self.spec = spec
        self.id = spec.id
        self.index = index
        self.env = env
        self.streams = streams
        self.buffer = Buffer(env, spec.buffer, spec.dispatch)
        self.stats = StationStats(env.now)
        self.machines: list[Machine] = []
        self._proc: dict[str, tuple[Callable[[], float], float]] = {}
        self._base: dict[str, Sampler] = {}
        self._extra: dict[tuple[str, str], Sampler] = {}
        self._setup: dict[tuple[str, str], Sampler] = {}
        self.defect_p = spec.quality.defect_probability
        self.uniform = make_sampler(Uniform(kind="uniform", low=0.0, high=1.0), streams.generator(spec.id, "quality"))
        self.inspect_uniform = make_sampler(
            Uniform(kind="uniform", low=0.0, high=1.0), streams.generator(spec.id, "inspection")
        )
        self.speed = 1.0  # processing-time divisor (a live speed override); 1 in batch runs

    def processing(self, variant: Variant) -> tuple[Callable[[], float], float]:
        """Sampler of the processing time of ``variant`` here, and its planned (mean) time."""
        cached = self._proc.get(variant.key)
        if cached is not None:
            return cached
        spec = self.spec.processing
        family = variant.family
        base = self._base.get(family)
        if base is None:
            dist = spec.by_family.get(family, spec.base)
            base = self._base[family] = make_sampler(dist, self.streams.generator(self.id, "processing", family))
        extras: list[Sampler] = []
        for name, choice in variant.options:
            extra = spec.by_option.get(name, {}).get(choice)
            if extra is None:
                continue
            sampler = self._extra.get((name, choice))
            if sampler is None:
                gen = self.streams.generator(self.id, "processing", name, choice)
                sampler = self._extra[(name, choice)] = make_sampler(extra, gen)
            extras.append(sampler)
        planned = base.mean + sum(s.mean for s in extras)
        if extras:
            parts = (base, *extras)

            def draw() -> float:
                return sum(s() for s in parts)

            result: tuple[Callable[[], float], float] = (draw, planned)
        else:
            result = (base, planned)
        self._proc[variant.key] = result
        return result

    def setup_time(self, old: str, new: str) -> float:
        """Duration of a changeover from family ``old`` to ``new`` (0 without a setup spec)."""
        setup = self.spec.setup
        if setup is None:
            return 0.0
        sampler = self._setup.get((old, new))
        if sampler is None:
            dist = setup.matrix.get(old, {}).get(new, setup.default)
            sampler = make_sampler(dist, self.streams.generator(self.id, "setup", old, new))
            self._setup[(old, new)] = sampler
        return sampler()

    def enter(self, unit: Unit) -> None:
        """A unit arrived in this station's buffer."""
        now = self.env.now
        unit.arrived = now
        self.stats.wip.add(now, 1)

    def leave(self, unit: Unit) -> None:
        """A unit left a machine of this station."""
        now = self.env.now
        stats = self.stats
        stats.wip.add(now, -1)
        stats.sojourn.add(now - unit.arrived)

    def reset_stats(self) -> None:
        """Start statistics afresh (end of warm-up), keeping the current levels."""
        now = self.env.now
        old = self.stats
        self.stats = StationStats(now)
        self.stats.wip.set(now, old.wip.level)
        self.stats.wip.reset(now)
        self.buffer.level.reset(now)
        for machine in self.machines:
            machine.reset_times()
