"""Investments an SME is weighing: their costs and the changes (levers) they make to the line, and the economics
and public co-funding that turn simulated KPIs into a business case."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from simline.distributions import Distribution
from simline.scenario.base import Id, Strict

__all__ = [
    "Andon",
    "AutomatedTransport",
    "Change",
    "Economics",
    "EnergyManagement",
    "ExtraCapacity",
    "Funding",
    "Grant",
    "InlineInspection",
    "Investment",
    "MesSequencing",
    "PredictiveMaintenance",
    "QuickChangeover",
    "SetValue",
    "TaxCredit",
]

_Prob = Annotated[float, Field(ge=0, le=1)]
_Money = Annotated[float, Field(ge=0)]


class PredictiveMaintenance(Strict):
    """Condition monitoring on ``stations`` (all stations with failures when empty).

    Machines degrade with operating time and break down when the degradation reaches its limit. Monitoring
    detects a share ``detection_share`` of the coming breakdowns early enough to replace them by a planned
    maintenance stop of ``maintenance_time`` minutes.
    """

    lever: Literal["predictive_maintenance"]
    stations: list[Id] = Field(default_factory=list)
    detection_share: _Prob
    maintenance_time: Distribution


class Andon(Strict):
    """IoT alarms / andon: a stop is noticed sooner; response times are multiplied by ``response_time_factor``."""

    lever: Literal["andon"]
    stations: list[Id] = Field(default_factory=list)
    response_time_factor: float = Field(ge=0, le=1)


class QuickChangeover(Strict):
    """SMED: setup times are multiplied by ``setup_factor``."""

    lever: Literal["quick_changeover"]
    stations: list[Id] = Field(default_factory=list)
    setup_factor: float = Field(ge=0, le=1)


class InlineInspection(Strict):
    """Automated inspection at ``station``: defects are caught there instead of downstream."""

    lever: Literal["inline_inspection"]
    station: Id
    detection_rate: _Prob
    false_reject_rate: _Prob = 0.0
    on_reject: Literal["scrap", "rework"] = "scrap"
    rework_to: Id | None = None
    max_rework: int = Field(default=1, ge=0, le=10)


class AutomatedTransport(Strict):
    """AGVs replace the transport: a pool of ``size`` vehicles, each move taking ``time`` minutes, unstaffed."""

    lever: Literal["automated_transport"]
    size: int = Field(ge=1, le=1000)
    time: Distribution
    name: str = "AGVs"


class MesSequencing(Strict):
    """MES sequencing: a setup-aware (``same_setup``) or due-date-aware (``edd``) dispatching rule."""

    lever: Literal["mes_sequencing"]
    rule: Literal["edd", "same_setup"]
    stations: list[Id] = Field(default_factory=list)


class EnergyManagement(Strict):
    """Idle machines go to standby after ``standby_after_minutes``, drawing ``standby_power_share`` of idle power."""

    lever: Literal["energy_management"]
    stations: list[Id] = Field(default_factory=list)
    standby_after_minutes: float = Field(ge=0)
    standby_power_share: float = Field(ge=0, le=1)


class ExtraCapacity(Strict):
    """``machines`` more machine(s) at ``station``."""

    lever: Literal["extra_capacity"]
    station: Id
    machines: int = Field(default=1, ge=1, le=100)


class SetValue(Strict):
    """Set any scenario value: ``path`` is dotted, stations and products addressed by id.

    E.g. ``stations.cnc.processing.base`` or ``transport.size`` or ``products.valve_s.price``.
    """

    lever: Literal["set"]
    path: str = Field(min_length=1)
    value: Any


Change = Annotated[
    PredictiveMaintenance
    | Andon
    | QuickChangeover
    | InlineInspection
    | AutomatedTransport
    | MesSequencing
    | EnergyManagement
    | ExtraCapacity
    | SetValue,
    Field(discriminator="lever"),
]
"""One change an investment makes to the line."""


class Investment(Strict):
    """A named investment: what it costs and what it changes."""

    name: Id
    description: str = ""
    capex: _Money
    opex_per_year: _Money = 0.0
    useful_life_years: int = Field(default=5, ge=1, le=30)
    installation_downtime_hours: float = Field(default=0.0, ge=0, le=24 * 365)
    grant_eligible: bool = True
    tax_credit_eligible: bool = True
    residual_value: float = Field(default=0.0, description="value left at the end of the appraisal (EUR)")
    changes: list[Change] = Field(min_length=1)


class Economics(Strict):
    """Prices and rates that turn KPIs into money.

    The observed window's money is scaled by ``hours_per_year`` / observed hours: 8760 for a line simulated in
    calendar time; for an order book covering part of a year, the observed hours that make up one year.
    """

    energy_price_per_kwh: _Money = 0.20
    labour_cost_per_hour: _Money = 0.0
    lateness_penalty_per_order: _Money = 0.0
    lateness_penalty_per_day: _Money = 0.0
    discount_rate: float = Field(default=0.08, gt=-1, le=1)
    horizon_years: int = Field(default=5, ge=1, le=30)
    hours_per_year: float = Field(default=8760.0, gt=0, le=100_000)


class Grant(Strict):
    """A grant of ``share`` of the eligible cost (capex), at most ``cap``, for projects of at least ``min_project``."""

    share: _Prob
    cap: _Money | None = None
    min_project: _Money | None = None


class TaxCredit(Strict):
    """A tax credit of ``share`` of the eligible cost, at most ``cap``, used in equal parts over ``years`` years.

    ``tax_capacity_per_year`` limits what the firm can use each year (it needs enough tax to offset).
    """

    share: _Prob
    years: int = Field(default=3, ge=1, le=15)
    cap: _Money | None = None
    tax_capacity_per_year: _Money | None = None


class Funding(Strict):
    """Public co-funding available for the investments."""

    programme: str = ""
    grant: Grant | None = None
    tax_credit: TaxCredit | None = None

    @model_validator(mode="after")
    def _something(self) -> Funding:
        if self.grant is None and self.tax_credit is None:
            raise ValueError("funding needs a grant, a tax_credit or both")
        return self
