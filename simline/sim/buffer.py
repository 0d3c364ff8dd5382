"""The buffer in front of a station: finite or unlimited, with a dispatching rule and blocking of senders.

A sender first *reserves* a slot (which may block it while the buffer is full), then the unit *arrives*
(possibly after transport). Machines *take* units according to the rule, or wait until one arrives.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

from simline.stats import TimeAverage

if TYPE_CHECKING:
    from simline.sim.machine import Machine
    from simline.sim.units import Unit

__all__ = ["Buffer"]


class Buffer:
    """Queue of units waiting for a station's machines."""

    def __init__(self, env: simpy.Environment, capacity: int | None, rule: str) -> None:
        self.env = env
        self.capacity = capacity
        self.rule = rule
        self.reserved = 0  # units present plus units on their way
        self.level = TimeAverage(env.now)
        self._getters: deque[tuple[Machine, simpy.Event]] = deque()
        self._space_waiters: deque[simpy.Event] = deque()
        self._seq = 0
        self._fifo: deque[Unit] = deque()
        self._heap: list[tuple[float, int, Unit]] = []
        self._by_family: dict[str, deque[tuple[int, Unit]]] = {}
        self._size = 0
        self._rework: deque[Unit] = deque()  # units sent back for rework: a rack beside the buffer

    def __len__(self) -> int:
        return self._size

    @property
    def waiting(self) -> int:
        """Units waiting: in the buffer and on the rework rack."""
        return self._size + len(self._rework)

    def set_capacity(self, capacity: int | None) -> None:
        """Change the capacity (a live setpoint); senders blocked on a full buffer move on if there is room now."""
        self.capacity = capacity
        self._grant_space()

    # --- senders -------------------------------------------------------------------------------------
    def reserve(self) -> bool:
        """Take a slot now if there is one (a waiting machine counts as a slot)."""
        if self.capacity is None or self.reserved < self.capacity + len(self._getters):
            self.reserved += 1
            return True
        return False

    def wait_space(self) -> simpy.Event:
        """An event that fires once a slot has been reserved for the caller."""
        event = self.env.event()
        self._space_waiters.append(event)
        return event

    def on_space(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback`` once a slot has been reserved for the caller."""
        self.wait_space().callbacks.append(callback)

    def arrive(self, unit: Unit) -> None:
        """A unit whose slot was reserved arrives; a waiting machine gets it at once."""
        getters = self._getters
        if getters:
            self.reserved -= 1
            index = 0
            if self.rule == "same_setup" and len(getters) > 1:
                family = unit.order.variant.family
                index = next((i for i, (m, _) in enumerate(getters) if m.family == family), 0)
            if index:
                _, event = getters[index]
                del getters[index]
            else:
                _, event = getters.popleft()
            event.succeed(unit)
            return
        self._push(unit)
        self._size += 1
        self.level.set(self.env.now, self._size)

    def arrive_rework(self, unit: Unit) -> None:
        """A unit sent back for rework arrives. It needs no slot (it waits on a rework rack, so rework loops
        cannot deadlock with the forward flow) and is taken before the buffer's units."""
        if self._getters and (self.capacity is None or self.reserved < self.capacity + len(self._getters)):
            # a waiting machine that no forward unit has been promised takes it at once
            self.reserved += 1  # arrive() hands it over and gives the slot back
            self.arrive(unit)
            return
        self._rework.append(unit)

    # --- machines ------------------------------------------------------------------------------------
    def take(self, machine: Machine) -> Unit | None:
        """A unit from the rework rack, else the next unit by the dispatching rule; ``None`` when empty."""
        if not self._size:
            return self._rework.popleft() if self._rework else None
        if self._rework:
            return self._rework.popleft()
        unit = self._pop(machine)
        self._size -= 1
        self.level.set(self.env.now, self._size)
        self.reserved -= 1
        self._grant_space()
        return unit

    def wait(self, machine: Machine) -> simpy.Event:
        """An event whose value is the next unit that arrives for ``machine``."""
        event = self.env.event()
        self._getters.append((machine, event))
        self._grant_space()  # an idle machine is a slot for a blocked sender
        return event

    def _grant_space(self) -> None:
        while self._space_waiters and self.reserve():
            self._space_waiters.popleft().succeed()

    # --- dispatching rules ---------------------------------------------------------------------------
    def _push(self, unit: Unit) -> None:
        self._seq += 1
        if self.rule == "fifo":
            self._fifo.append(unit)
        elif self.rule == "edd":
            heapq.heappush(self._heap, (unit.order.due, self._seq, unit))
        else:
            self._by_family.setdefault(unit.order.variant.family, deque()).append((self._seq, unit))

    def _pop(self, machine: Machine) -> Unit:
        if self.rule == "fifo":
            return self._fifo.popleft()
        if self.rule == "edd":
            return heapq.heappop(self._heap)[2]
        queues = self._by_family
        same = queues.get(machine.family or "")
        if not same:
            same = min((q for q in queues.values() if q), key=lambda q: q[0][0])
        return same.popleft()[1]
