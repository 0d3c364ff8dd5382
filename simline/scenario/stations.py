"""Stations: parallel machines, the buffer in front, processing, setups, failures, quality and power."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from simline.distributions import Distribution, Fixed
from simline.scenario.base import Id, Strict

__all__ = [
    "STATION_KINDS",
    "Failures",
    "Inspection",
    "Power",
    "Predictive",
    "Processing",
    "Quality",
    "Setup",
    "Station",
    "StationKind",
]

StationKind = Literal[
    "machining",
    "forming",
    "assembly",
    "printing",
    "kiln",
    "finishing",
    "inspection",
    "testing",
    "packaging",
    "manual",
    "other",
]
STATION_KINDS: tuple[str, ...] = get_args(StationKind)

_Prob = Annotated[float, Field(ge=0, le=1)]


class Processing(Strict):
    """Processing time per unit (minutes): ``base``, replaced per family, plus extras per option choice."""

    base: Distribution
    by_family: dict[Id, Distribution] = Field(default_factory=dict)
    by_option: dict[Id, dict[str, Distribution]] = Field(default_factory=dict)


class Setup(Strict):
    """Changeover when a machine switches family: ``default``, or ``matrix[from][to]`` where given.

    A machine's first unit needs no setup; two units of the same family in a row need none either.
    """

    default: Distribution
    matrix: dict[Id, dict[Id, Distribution]] = Field(default_factory=dict)


class Predictive(Strict):
    """Condition monitoring: a share of coming breakdowns is detected and replaced by a planned stop."""

    detection_share: _Prob
    maintenance_time: Distribution


class Failures(Strict):
    """Breakdowns: time between failures counts operating (processing) time only.

    After a breakdown, ``response_time`` passes before the repair starts (someone notices and comes), then
    ``repair_time``; with ``needs_technician`` the repair also waits for a free technician of the line's crew.
    """

    time_between: Distribution
    repair_time: Distribution
    response_time: Distribution = Field(default_factory=lambda: Fixed(value=0.0))
    needs_technician: bool = False
    predictive: Predictive | None = None


class Quality(Strict):
    """The probability that this station makes a unit defective (found later by an inspection, or escaping)."""

    defect_probability: _Prob = 0.0


class Inspection(Strict):
    """This station inspects units after processing.

    A defective unit is found with ``detection_rate``; a good one is wrongly rejected with ``false_reject_rate``.
    A rejected unit is scrapped, or sent back to ``rework_to`` (a station earlier in its route) at most
    ``max_rework`` times, after which it is scrapped.
    """

    detection_rate: _Prob = 1.0
    false_reject_rate: _Prob = 0.0
    on_reject: Literal["scrap", "rework"] = "scrap"
    rework_to: Id | None = None
    max_rework: int = Field(default=1, ge=0, le=10)

    @model_validator(mode="after")
    def _rework_target(self) -> Inspection:
        if self.on_reject == "rework" and self.rework_to is None:
            raise ValueError("on_reject: rework needs rework_to (the station that reworks rejected units)")
        if self.on_reject == "scrap" and self.rework_to is not None:
            raise ValueError("rework_to is only used with on_reject: rework")
        return self


class Power(Strict):
    """Electrical power (kW) drawn per machine in each state."""

    processing: float = Field(default=0.0, ge=0)
    setup: float = Field(default=0.0, ge=0)
    idle: float = Field(default=0.0, ge=0)
    blocked: float | None = Field(default=None, ge=0, description="defaults to idle")
    down: float = Field(default=0.0, ge=0)
    maintenance: float = Field(default=0.0, ge=0)
    off_shift: float = Field(default=0.0, ge=0)
    standby: float | None = Field(default=None, ge=0, description="power in standby; defaults to idle")
    standby_after_minutes: float | None = Field(
        default=None, ge=0, description="an idle machine goes to standby after this long; never when omitted"
    )


class Station(Strict):
    """A work station: ``machines`` identical machines in parallel fed by one buffer.

    ``buffer`` is the capacity of the queue in front of the station (units waiting, not those on machines);
    omitted means unlimited. A full buffer blocks the upstream station. ``operators`` is the number of people
    the station needs while the line works (for labour costs).
    """

    id: Id
    name: str = ""
    kind: StationKind = "other"
    machines: int = Field(default=1, ge=1, le=100)
    buffer: int | None = Field(default=None, ge=0, le=1_000_000)
    dispatch: Literal["fifo", "edd", "same_setup"] = "fifo"
    processing: Processing
    setup: Setup | None = None
    failures: Failures | None = None
    quality: Quality = Field(default_factory=Quality)
    inspection: Inspection | None = None
    power_kw: Power = Field(default_factory=Power)
    operators: int = Field(default=0, ge=0, le=1000)
