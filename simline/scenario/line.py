"""Line-wide parts of a scenario: routing, transport, maintenance crew, calendar and the experiment."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from simline.distributions import Distribution, Fixed
from simline.scenario.base import Id, Strict

__all__ = [
    "WEEKDAYS",
    "Calendar",
    "Experiment",
    "FixedTransport",
    "Maintenance",
    "PoolTransport",
    "RouteStep",
    "TimeWindow",
    "Transport",
]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WORKWEEK: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class RouteStep(Strict):
    """One step of the routing. ``when`` limits it to units whose family/options match.

    ``when: {family: [valve_l], coating: [nickel, zinc]}`` means: only units of family ``valve_l`` *and* with
    coating nickel or zinc visit this station.
    """

    station: Id
    when: dict[Id, Annotated[list[str], Field(min_length=1)]] = Field(default_factory=dict)


class FixedTransport(Strict):
    """Moving a unit to the next station takes ``time`` minutes and needs no resource."""

    kind: Literal["fixed"]
    time: Distribution = Field(default_factory=lambda: Fixed(value=0.0))


class PoolTransport(Strict):
    """Each move needs one of ``size`` carriers (operators, forklifts, AGVs), busy for ``time`` minutes.

    The sending machine is blocked until a carrier picks the unit up.
    """

    kind: Literal["pool"]
    name: str = "carriers"
    size: int = Field(ge=1, le=1000)
    time: Distribution
    staffed: bool = Field(default=True, description="carriers are people (labour cost); false for AGVs")


Transport = Annotated[FixedTransport | PoolTransport, Field(discriminator="kind")]
"""How units move between stations."""


class Maintenance(Strict):
    """The maintenance crew. ``technicians`` omitted means a repair never waits for a person."""

    technicians: int | None = Field(default=None, ge=1, le=1000)


def _minutes(value: str) -> int:
    if not _HHMM.match(value):
        raise ValueError(f"'{value}' is not a time of day as HH:MM (00:00 to 24:00)")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


class TimeWindow(Strict):
    """A daily window ``start``–``end`` (``HH:MM``); an end before the start runs past midnight."""

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        _minutes(value)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> TimeWindow:
        if self.start == "24:00":
            raise ValueError("a window starts at 00:00 to 23:59; 24:00 is only an end")
        if _minutes(self.start) == _minutes(self.end) % 1440:
            raise ValueError(f"window {self.start}-{self.end} is empty (start equals end)")
        return self

    def minutes(self) -> tuple[int, int]:
        """Start and end in minutes after midnight; the end may exceed 1440 for windows past midnight."""
        start, end = _minutes(self.start), _minutes(self.end)
        return start, end if end > start else end + 1440


class Calendar(Strict):
    """Working time: shifts on working days, minus planned breaks. Omit the calendar for a line that never stops.

    A shift belongs to the day it starts on. Simulated time starts on a Monday at 00:00.
    """

    working_days: list[Weekday] = Field(default_factory=lambda: list(_WORKWEEK), min_length=1)
    shifts: list[TimeWindow] = Field(min_length=1)
    breaks: list[TimeWindow] = Field(default_factory=list)


class Experiment(Strict):
    """How long to simulate, what to discard as warm-up, how many replications, and the seed."""

    horizon_hours: float = Field(gt=0, le=24 * 366 * 20)
    warmup_hours: float = Field(default=0.0, ge=0)
    replications: int = Field(default=5, ge=1, le=10_000)
    seed: int = Field(default=1, ge=0, lt=2**63)

    @model_validator(mode="after")
    def _warmup_inside(self) -> Experiment:
        if self.warmup_hours >= self.horizon_hours:
            raise ValueError(
                f"warmup_hours ({self.warmup_hours:g}) must be less than horizon_hours ({self.horizon_hours:g})"
            )
        return self
