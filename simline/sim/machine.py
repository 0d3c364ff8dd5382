"""A machine: the process that takes units, sets up, processes, breaks down and passes units on."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from simline.distributions import Uniform, make_sampler
from simline.errors import CommandError
from simline.events import (
    Breakdown,
    MachineState,
    OperationFinished,
    OperationStarted,
    Repaired,
    StateChanged,
)

if TYPE_CHECKING:
    from simline.sim.line import Line
    from simline.sim.station import StationRuntime

__all__ = ["Machine"]

PROCESSING, SETUP, IDLE, BLOCKED, DOWN, MAINTENANCE, OFF_SHIFT, STANDBY = MachineState
_EPS = 1e-9
_U01 = Uniform(kind="uniform", low=0.0, high=1.0)

Proc = Generator[simpy.Event, Any, None]


class Machine:
    """One of the parallel machines of a station."""

    def __init__(self, station: StationRuntime, index: int, line: Line) -> None:
        self.station = station
        self.index = index
        self.line = line
        self.env = line.env
        self.state = IDLE
        self.since = self.env.now
        self.times = [0.0] * len(MachineState)
        self.family: str | None = None
        self.unit_id: int | None = None
        self.order_id: str | None = None
        self.failures = 0
        self.processed = 0  # since the start of the run (live counters)
        self.good = 0
        failures = station.spec.failures
        self.ttf: float | None = None
        self._life = 1.0
        self._predictive = None
        power = station.spec.power_kw
        self._standby_after = power.standby_after_minutes
        self._idle_token = 0
        self._armed_fault: float | None = None
        self._working = False
        self._repairing = False
        self._needs_tech = False
        if failures is not None:
            gen = station.streams.generator
            name = f"{station.id}#{index}"
            self._tbf = make_sampler(failures.time_between, gen(name, "time_between_failures"))
            self._repair = make_sampler(failures.repair_time, gen(name, "repair"))
            self._response = make_sampler(failures.response_time, gen(name, "response"))
            self._needs_tech = failures.needs_technician
            self.ttf = self._life = self._tbf()
            if failures.predictive is not None:
                self._predictive = failures.predictive
                self._detect = make_sampler(_U01, gen(name, "predictive"))
                self._maintenance = make_sampler(failures.predictive.maintenance_time, gen(name, "maintenance"))
        self.plain = failures is None and line.calendar.always_on and not line.live
        self.process = self.env.process(self.run())

    @property
    def degradation(self) -> float:
        """Condition signal: 0 when as new, 1 at the limit where it breaks down (operating-time based)."""
        if self.ttf is None:
            return 0.0
        return min(1.0, max(0.0, 1.0 - self.ttf / self._life)) if self._life > 0 else 1.0

    # --- state accounting ----------------------------------------------------------------------------
    @property
    def effective_state(self) -> MachineState:
        """The state for statistics and protocols: off-shift overrides what the machine is doing."""
        return OFF_SHIFT if self.line.off_shift else self.state

    def flush(self) -> None:
        """Book the time since the last change to the current effective state."""
        now = self.env.now
        self.times[OFF_SHIFT if self.line.off_shift else self.state] += now - self.since
        self.since = now

    def set_state(self, new: MachineState) -> None:
        """Change the activity state, booking the time spent in the old one."""
        now = self.env.now
        self.times[OFF_SHIFT if self.line.off_shift else self.state] += now - self.since
        self.since = now
        self.state = new
        emit = self.line.emit
        if emit is not None and not self.line.off_shift:
            emit(StateChanged(now, self.station.id, self.index, new))

    def reset_times(self) -> None:
        """Forget the booked times (end of warm-up)."""
        self.flush()
        self.times = [0.0] * len(MachineState)

    # --- the process ---------------------------------------------------------------------------------
    def run(self) -> Proc:
        """Take, set up, process, inspect and pass on units, forever."""
        st = self.station
        buf = st.buffer
        line = self.line
        timeout = self.env.timeout
        has_setup = st.spec.setup is not None
        inspects = st.spec.inspection is not None
        calendar = line.calendar
        plain_calendar = calendar.always_on
        while True:
            unit = buf.take(self)
            if unit is None:
                self.set_state(IDLE)
                if self._standby_after is not None:
                    self._arm_standby()
                unit = yield buf.wait(self)
            if not plain_calendar:
                working, change = calendar.state_at(self.env.now)
                while not working:  # a unit taken off shift waits for the next shift
                    yield timeout(change - self.env.now)
                    working, change = calendar.state_at(self.env.now)
            variant = unit.order.variant
            family = variant.family
            if family != self.family:
                if has_setup and self.family is not None:
                    duration = st.setup_time(self.family, family)
                    if duration > 0:
                        self.set_state(SETUP)
                        st.stats.setups += 1
                        yield from self._work(duration, operating=False)
                self.family = family
            draw, planned = st.processing(variant)
            duration = draw() / st.speed
            self.set_state(PROCESSING)
            self.unit_id = unit.id
            self.order_id = unit.order.id
            emit = line.emit
            if emit is not None:
                emit(OperationStarted(self.env.now, st.id, self.index, unit.id, unit.order.id))
            if self.plain:
                yield timeout(duration)
            else:
                yield from self._work(duration, operating=True)
            stats = st.stats
            stats.processed += 1
            self.processed += 1
            stats.planned_runtime += planned
            if st.defect_p and st.uniform() < st.defect_p:
                unit.defective = True
            else:
                stats.good += 1
                self.good += 1
            if emit is not None:
                emit(OperationFinished(self.env.now, st.id, self.index, unit.id, unit.order.id, unit.defective))
            target = line.inspect(st, unit) if inspects else unit.step + 1
            self.unit_id = self.order_id = None
            if target < 0:  # scrapped
                st.leave(unit)
                line.scrap(unit, st)
                continue
            route = variant.route
            if target >= len(route):
                st.leave(unit)
                line.finish(unit)
                continue
            rework = target <= unit.step
            unit.step = target
            nxt = route[target]
            if rework:
                st.leave(unit)
                line.transport.send(unit, nxt, rework=True)
                continue
            if not nxt.buffer.reserve():
                self.set_state(BLOCKED)
                yield nxt.buffer.wait_space()
            transport = line.transport
            pool = transport.pool
            if pool is not None and not pool.try_acquire():
                self.set_state(BLOCKED)
                yield pool.wait()
            st.leave(unit)
            transport.send(unit, nxt)

    def _work(self, duration: float, operating: bool) -> Proc:
        """Spend ``duration`` minutes of working time: paused off-shift; breakdowns interrupt operating time.

        An injected fault (a live command) interrupts the work at once; the work resumes after the repair.
        """
        env = self.env
        calendar = self.line.calendar
        remaining = duration
        while remaining > _EPS:
            if self._armed_fault is not None:
                repair, self._armed_fault = self._armed_fault, None
                yield from self._breakdown(forced_repair=repair)
                continue
            chunk = remaining
            if not calendar.always_on:
                working, change = calendar.state_at(env.now)
                if not working:
                    try:
                        self._working = True
                        yield env.timeout(change - env.now)
                    except simpy.Interrupt:
                        pass  # the injected fault is armed and taken at the top of the loop
                    finally:
                        self._working = False
                    continue
                chunk = min(chunk, change - env.now)
            fails = operating and self.ttf is not None and self.ttf < chunk
            if fails:
                chunk = self.ttf  # type: ignore[assignment]
            if chunk > 0:
                start = env.now
                try:
                    self._working = True
                    yield env.timeout(chunk)
                except simpy.Interrupt:
                    chunk = env.now - start
                    fails = False
                finally:
                    self._working = False
            remaining -= chunk
            if operating and self.ttf is not None:
                self.ttf -= chunk
            if fails:
                if self._predictive is not None and self._detect() < self._predictive.detection_share:
                    yield from self._planned_stop()
                else:
                    yield from self._breakdown()

    # --- live commands -------------------------------------------------------------------------------
    def inject_fault(self, repair_minutes: float | None = None) -> str:
        """Break the machine down now if it is working, else when it next starts work.

        Args:
            repair_minutes: Repair duration; default the mean repair time of the station (15 without failures).

        Returns:
            ``"down"`` when the machine broke down at once, ``"armed"`` when the fault waits for the next work.

        Raises:
            CommandError: The machine is already down or in maintenance, or the repair time is not positive.
        """
        if self.state in (DOWN, MAINTENANCE) or self._armed_fault is not None:
            raise CommandError("station", f"machine {self.station.id}#{self.index} is already down")
        if repair_minutes is not None and not 0 < repair_minutes <= 10_000:
            raise CommandError("repair_minutes", f"must be between 0 and 10000 minutes, got {repair_minutes:g}")
        failures = self.station.spec.failures
        default = self._repair.mean if failures is not None else 15.0
        self._armed_fault = repair_minutes if repair_minutes is not None else default
        if self._working:
            self.process.interrupt("fault")
            return "down"
        return "armed"

    def reset(self) -> str:
        """End a breakdown's repair now (or cancel an armed fault).

        Returns:
            ``"repaired"``, ``"disarmed"`` or ``"running"`` when there was nothing to reset.
        """
        if self._armed_fault is not None:
            self._armed_fault = None
            return "disarmed"
        if self.state is DOWN and self._repairing:
            self.process.interrupt("reset")
            return "repaired"
        return "running"

    def _arm_standby(self) -> None:
        self._idle_token += 1
        token = self._idle_token
        delay = self._standby_after or 0.0
        if delay <= 0:
            self.set_state(STANDBY)
            return

        def to_standby(_: Any) -> None:
            if self.state is IDLE and token == self._idle_token:
                self.set_state(STANDBY)

        self.env.timeout(delay).callbacks.append(to_standby)

    def _planned_stop(self) -> Proc:
        """A breakdown detected early by condition monitoring becomes a planned maintenance stop."""
        resume = self.state
        self.set_state(MAINTENANCE)
        self.station.stats.maintenances += 1
        yield self.env.timeout(self._maintenance())
        self.ttf = self._life = self._tbf()
        self.set_state(resume)

    def _breakdown(self, forced_repair: float | None = None) -> Proc:
        env = self.env
        st = self.station
        line = self.line
        resume = self.state
        self.set_state(DOWN)
        start = env.now
        st.stats.failures += 1
        self.failures += 1
        if line.emit is not None:
            line.emit(Breakdown(start, st.id, self.index))
        crew = line.crew if self._needs_tech else None
        held = False
        waiting: simpy.Event | None = None
        self._repairing = True
        try:
            response = self._response() if forced_repair is None else 0.0
            if response > 0:
                yield env.timeout(response)
            if crew is not None:
                if crew.try_acquire():
                    held = True
                else:
                    waiting = crew.wait()
                    yield waiting
                    waiting, held = None, True
            yield env.timeout(self._repair() if forced_repair is None else forced_repair)
        except simpy.Interrupt:
            pass  # reset: the repair is over now
        finally:
            self._repairing = False
            if waiting is not None and crew is not None:
                crew.cancel(waiting)
            if held and crew is not None:
                crew.release()
        st.stats.down_time.add(env.now - start)
        if forced_repair is None:
            self.ttf = self._life = self._tbf()
        if line.emit is not None:
            line.emit(Repaired(env.now, st.id, self.index, env.now - start))
        self.set_state(resume)
