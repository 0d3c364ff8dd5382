"""Typed domain events the model emits to its observers: plain data, stamped with simulated time (minutes).

Observers are callables taking one event. They are handed to the model; the model never does I/O itself.
Events are built only when at least one observer is attached, so batch runs without observers pay nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any, ClassVar

__all__ = [
    "Breakdown",
    "Event",
    "MachineState",
    "Observer",
    "OperationFinished",
    "OperationStarted",
    "OrderCompleted",
    "OrderCreated",
    "Repaired",
    "ShiftChanged",
    "StateChanged",
    "UnitFinished",
    "UnitReworked",
    "UnitScrapped",
]


class MachineState(IntEnum):
    """What a machine is doing. The values index the per-state time arrays of the statistics."""

    PROCESSING = 0
    SETUP = 1
    IDLE = 2
    BLOCKED = 3
    DOWN = 4
    MAINTENANCE = 5
    OFF_SHIFT = 6
    STANDBY = 7

    @property
    def label(self) -> str:
        """Lower-case name used in JSON, CSV and protocols."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all events: ``time`` is simulated minutes since the start of the run."""

    kind: ClassVar[str] = "event"
    time: float

    def as_row(self) -> dict[str, Any]:
        """A flat mapping of the event's fields, with its kind first."""
        row: dict[str, Any] = {"event": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            row[f.name] = value.label if isinstance(value, MachineState) else value
        return row


@dataclass(frozen=True, slots=True)
class OrderCreated(Event):
    """An order entered the system (arrived or released from the order book)."""

    kind: ClassVar[str] = "order_created"
    order_id: str
    family: str
    options: str
    quantity: int
    due: float


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    """A machine changed state."""

    kind: ClassVar[str] = "state_changed"
    station: str
    machine: int
    state: MachineState


@dataclass(frozen=True, slots=True)
class OperationStarted(Event):
    """A machine started processing a unit (after any setup)."""

    kind: ClassVar[str] = "operation_started"
    station: str
    machine: int
    unit_id: int
    order_id: str


@dataclass(frozen=True, slots=True)
class OperationFinished(Event):
    """A machine finished processing a unit; ``defective`` is the unit's true condition afterwards."""

    kind: ClassVar[str] = "operation_finished"
    station: str
    machine: int
    unit_id: int
    order_id: str
    defective: bool


@dataclass(frozen=True, slots=True)
class UnitScrapped(Event):
    """An inspection rejected a unit for good; a replacement unit is released for its order."""

    kind: ClassVar[str] = "unit_scrapped"
    station: str
    unit_id: int
    order_id: str


@dataclass(frozen=True, slots=True)
class UnitReworked(Event):
    """An inspection sent a unit back to ``to_station`` for rework."""

    kind: ClassVar[str] = "unit_reworked"
    station: str
    to_station: str
    unit_id: int
    order_id: str


@dataclass(frozen=True, slots=True)
class UnitFinished(Event):
    """A unit left the last station; ``good`` is false for a defect that escaped inspection."""

    kind: ClassVar[str] = "unit_finished"
    unit_id: int
    order_id: str
    good: bool


@dataclass(frozen=True, slots=True)
class OrderCompleted(Event):
    """Every unit of an order is finished."""

    kind: ClassVar[str] = "order_completed"
    order_id: str
    lead_time: float
    on_time: bool


@dataclass(frozen=True, slots=True)
class Breakdown(Event):
    """A machine broke down."""

    kind: ClassVar[str] = "breakdown"
    station: str
    machine: int


@dataclass(frozen=True, slots=True)
class Repaired(Event):
    """A machine was repaired after ``downtime`` minutes."""

    kind: ClassVar[str] = "repaired"
    station: str
    machine: int
    downtime: float


@dataclass(frozen=True, slots=True)
class ShiftChanged(Event):
    """The line's calendar switched to working (``working`` true) or off-shift time."""

    kind: ClassVar[str] = "shift_changed"
    working: bool


Observer = Callable[[Event], None]
"""Anything that takes an event: a recorder, a publisher, a KPI tracker."""
