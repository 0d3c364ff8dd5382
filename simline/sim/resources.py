"""Shared resources: a pool of identical servers (carriers, technicians) and the transport between stations."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

from simline.distributions import make_sampler
from simline.rng import Streams
from simline.scenario.line import FixedTransport, PoolTransport
from simline.stats import TimeAverage

if TYPE_CHECKING:
    from simline.sim.station import StationRuntime
    from simline.sim.units import Unit

__all__ = ["Pool", "Transport"]


class Pool:
    """``size`` identical servers; requests are served first come, first served."""

    def __init__(self, env: simpy.Environment, size: int) -> None:
        self.env = env
        self.size = size
        self.free = size
        self.busy = TimeAverage(env.now)
        self._waiters: deque[simpy.Event] = deque()

    def try_acquire(self) -> bool:
        """Take a server now if one is free."""
        if self.free:
            self.free -= 1
            self.busy.set(self.env.now, self.size - self.free)
            return True
        return False

    def wait(self) -> simpy.Event:
        """An event that fires when a server has been taken for the caller."""
        event = self.env.event()
        self._waiters.append(event)
        return event

    def cancel(self, event: simpy.Event) -> None:
        """Withdraw a pending request; if it was already granted, give the server back."""
        if event in self._waiters:
            self._waiters.remove(event)
        elif event.triggered:
            self.release()

    def release(self, _: Any = None) -> None:
        """Give a server back; the longest waiter gets it."""
        if self._waiters:
            self._waiters.popleft().succeed()
        else:
            self.free += 1
            self.busy.set(self.env.now, self.size - self.free)


class Transport:
    """Moves units between stations: a fixed (random) time, or a carrier of a pool for that time."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: FixedTransport | PoolTransport,
        streams: Streams,
        deliver: Callable[[Unit, StationRuntime, bool], None],
    ) -> None:
        self.env = env
        self.deliver = deliver
        self.time = make_sampler(spec.time, streams.generator("transport", "time"))
        self.instant = self.time.mean == 0
        self.pool = Pool(env, spec.size) if isinstance(spec, PoolTransport) else None
        self.moves = 0
        self.in_transit = 0

    def send(self, unit: Unit, to: StationRuntime, rework: bool = False) -> None:
        """Start moving ``unit`` to ``to``.

        A forward move has reserved its slot and holds a carrier (with a pool). A rework move needs neither: it
        goes to the station's rework rack, carried by the inspection crew.
        """
        self.moves += 1
        if self.instant:
            self.deliver(unit, to, rework)
            if self.pool is not None and not rework:
                self.pool.release()
            return
        event = self.env.timeout(self.time())
        self.in_transit += 1
        event.callbacks.append(lambda _: self._arrived(unit, to, rework))
        if self.pool is not None and not rework:
            event.callbacks.append(self.pool.release)

    def _arrived(self, unit: Unit, to: StationRuntime, rework: bool) -> None:
        self.in_transit -= 1
        self.deliver(unit, to, rework)
