"""The live driver: advances the model to a wall-clock-derived target in small slices inside an asyncio loop.

The OPC UA server, the MQTT client and the dashboard share the loop; the driver never blocks it for more than
a slice. Commands are plain method calls made from the loop, so they always land between simulation steps, at
the simulated "now".
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Sequence

import simpy

from simline.errors import CommandError
from simline.sim.line import Line
from simline.sim.machine import Machine
from simline.sim.units import Order

__all__ = ["LagStats", "LiveDriver"]


class LagStats:
    """How far the simulation trails its wall-clock target (wall seconds), over a rolling window."""

    def __init__(self, window: int = 2000) -> None:
        self.samples: deque[float] = deque(maxlen=window)
        self.current = 0.0

    def add(self, lag: float) -> None:
        """Record one measurement."""
        self.current = lag
        self.samples.append(lag)

    def quantile(self, q: float) -> float:
        """The ``q``-quantile of the recorded lags (0 when none)."""
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1 if q > 0 else 0)]


class LiveDriver:
    """Runs a :class:`Line` paced to the wall clock.

    Args:
        line: The model.
        twins: Further lines advanced in lockstep with ``line`` (``simline live --twin``: the same scenario with
            an investment, built with the same seed so both draw the same random numbers). Orders and machine
            commands given through the driver reach every line.
        speed: Simulated seconds per wall second (60: one simulated minute per second).
        slice_seconds: Longest time one advance may hold the event loop.
        tick_seconds: Pause between advances.
        clock: Wall clock (seconds); injectable for tests.
    """

    MIN_SPEED = 0.1
    MAX_SPEED = 100_000.0

    def __init__(
        self,
        line: Line,
        speed: float = 60.0,
        *,
        twins: Sequence[Line] = (),
        slice_seconds: float = 0.02,
        tick_seconds: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.line = line
        self.env = line.env
        self.lines = [line, *twins]
        self._check_speed(speed)
        self.speed = speed
        self.slice_seconds = slice_seconds
        self.tick_seconds = tick_seconds
        self.clock = clock
        self.lag = LagStats()
        self.paused = False
        self.steps = 0
        self._anchor_wall = clock()
        self._anchor_sim = self.env.now
        self._stop = asyncio.Event()
        self.finished = False

    # --- control -------------------------------------------------------------------------------------
    def _check_speed(self, speed: float) -> None:
        if not (self.MIN_SPEED <= speed <= self.MAX_SPEED) or math.isnan(speed):
            raise CommandError("speed", f"must be between {self.MIN_SPEED:g} and {self.MAX_SPEED:g}, got {speed:g}")

    def target(self) -> float:
        """Simulated minutes the model should have reached now."""
        if self.paused:
            return self._anchor_sim
        return self._anchor_sim + (self.clock() - self._anchor_wall) * self.speed / 60.0

    def _reanchor(self) -> None:
        self._anchor_sim = max(self.env.now, min(self.target(), self.env.now))
        self._anchor_wall = self.clock()

    def set_speed(self, speed: float) -> None:
        """Change the pace from now on.

        Raises:
            CommandError: The speed is out of range.
        """
        self._check_speed(speed)
        self._reanchor()
        self.speed = speed

    def pause(self) -> None:
        """Hold the simulated clock."""
        if not self.paused:
            self._reanchor()
            self.paused = True

    def resume(self) -> None:
        """Let the simulated clock run again from where it stands."""
        if self.paused:
            self.paused = False
            self._anchor_wall = self.clock()
            self._anchor_sim = self.env.now

    def place_order(
        self, family: str, options: dict[str, str], quantity: int = 1, due_in_hours: float | None = None
    ) -> Order:
        """Check and place an order at the simulated now; it is due ``due_in_hours`` later (default: the
        scenario's promised lead time).

        Raises:
            CommandError: The order is not valid; nothing is placed.
        """
        for line in self.lines:
            line.check_order(family, options, quantity)
        if due_in_hours is None:
            due_in_hours = self.line.scenario.orders.due_in_hours
        elif not 0 < due_in_hours <= 24 * 365:
            raise CommandError("due_in_hours", f"must be between 0 and 8760, got {due_in_hours:g}")
        self._sync_twins()
        due = self.env.now + due_in_hours * 60.0
        order = self.line.place_order(family, options, quantity, due)
        for twin in self.lines[1:]:
            twin.place_order(family, options, quantity, due, order_id=order.id)
        return order

    def _sync_twins(self) -> None:
        """Bring every twin to the main line's simulated now, so a command lands at the same moment in each."""
        now = self.env.now
        for twin in self.lines[1:]:
            self._advance(twin.env, now, math.inf)  # events at exactly "now" too, as the main line did

    def machines_like(self, machine: Machine) -> list[Machine]:
        """``machine`` and the machine at the same place in every twin line."""
        return [line.by_id[machine.station.id].machines[machine.index] for line in self.lines]

    def inject_fault(self, machine: Machine, repair_minutes: float | None = None) -> str:
        """Break ``machine`` down (and its twins, so the comparison stays fair); see :meth:`Machine.inject_fault`.

        Raises:
            CommandError: The machine is already down or the repair time is out of range; nothing changes.
        """
        self._sync_twins()
        result = machine.inject_fault(repair_minutes)
        for twin in self.machines_like(machine)[1:]:
            with contextlib.suppress(CommandError):  # a twin that is already down stays down
                twin.inject_fault(repair_minutes)
        return result

    def reset_machine(self, machine: Machine) -> str:
        """End ``machine``'s repair now (and its twins'); see :meth:`Machine.reset`."""
        self._sync_twins()
        result = machine.reset()
        for twin in self.machines_like(machine)[1:]:
            twin.reset()
        return result

    def machine(self, station: str, index: int = 0) -> Machine:
        """The machine ``index`` of ``station`` on the main line.

        Raises:
            CommandError: There is no such station or machine.
        """
        runtime = self.line.by_id.get(station)
        if runtime is None:
            known = ", ".join(self.line.by_id)
            raise CommandError("station", f"'{station}' is not a station of this line (stations: {known})")
        if not 0 <= index < len(runtime.machines):
            raise CommandError(
                "machine", f"station '{station}' has machines 0..{len(runtime.machines) - 1}, got {index}"
            )
        return runtime.machines[index]

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current slice."""
        self._stop.set()

    # --- running -------------------------------------------------------------------------------------
    def advance(self) -> float:
        """Process events up to the target, for at most one slice (shared by the lines). Returns the lag in wall
        seconds (of the line furthest behind)."""
        target = self.target()
        share = self.slice_seconds / len(self.lines)
        behind = self._advance(self.env, target, time.perf_counter() + share)
        for twin in self.lines[1:]:  # never ahead of the main line: both sit at the same "now" for commands
            twin_behind = self._advance(twin.env, self.env.now, time.perf_counter() + share)
            behind = max(behind, target - self.env.now + twin_behind)
        lag = behind * 60.0 / self.speed
        self.lag.add(lag)
        return lag

    def _advance(self, env: simpy.Environment, target: float, deadline: float) -> float:
        step = env.step
        peek = env.peek
        n = 0
        while peek() <= target:
            step()
            n += 1
            if not n & 63 and time.perf_counter() > deadline:
                break
        self.steps += n
        if peek() > target and env.now < target:
            env.run(until=target)
        return max(0.0, target - env.now)

    async def run(self, until_minutes: float | None = None, duration_seconds: float | None = None) -> None:
        """Advance the model until stopped, until ``until_minutes`` simulated or ``duration_seconds`` of wall time."""
        self._reanchor()
        started = self.clock()
        while not self._stop.is_set():
            self.advance()
            if until_minutes is not None and self.env.now >= until_minutes:
                break
            if duration_seconds is not None and self.clock() - started >= duration_seconds:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.tick_seconds)
        self.finished = True
        for line in self.lines:
            for machine in line.machines:
                machine.flush()
