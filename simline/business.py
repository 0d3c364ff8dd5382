"""The business case of an investment, per replication, from the paired KPIs of baseline and investment.

Money per simulated window = revenue − material − energy − labour − lateness penalties, scaled to a year.
The investment's yearly benefit is its difference to the baseline in the same replication (common random
numbers), so the confidence interval of every figure comes from the replications.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simline.experiment import Summary, summarise
from simline.finance import CaseResult, business_case, grant_amount, tax_credit_schedule
from simline.kpis import Kpis
from simline.overlays import Alternative
from simline.scenario.investments import Economics, Funding

__all__ = [
    "CaseSummary",
    "RunningDifference",
    "annual_contribution",
    "prorated_cost_per_hour",
    "running_difference",
    "summarise_cases",
    "yearly_cases",
]


def _get(k: Kpis, name: str) -> float:
    value = k.get(name)
    return 0.0 if value is None else value


def window_contribution(k: Kpis, econ: Economics) -> float:
    """Contribution margin of the observed window (EUR)."""
    return (
        _get(k, "line.revenue")
        - _get(k, "line.material_cost")
        - _get(k, "line.energy_kwh") * econ.energy_price_per_kwh
        - _get(k, "line.staffed_hours") * econ.labour_cost_per_hour
        - _get(k, "line.orders_late") * econ.lateness_penalty_per_order
        - _get(k, "line.tardiness_h") / 24.0 * econ.lateness_penalty_per_day
    )


def annual_contribution(k: Kpis, econ: Economics) -> float:
    """Contribution margin scaled from the observed window to a year (EUR/year)."""
    hours = _get(k, "line.observed_hours")
    return window_contribution(k, econ) * econ.hours_per_year / hours if hours > 0 else 0.0


@dataclass(frozen=True)
class Cases:
    """The business case of one replication, without and with public funding."""

    annual_benefit: float
    installation_loss: float
    without: CaseResult
    with_funding: CaseResult


def public_money(alt: Alternative, funding: Funding | None) -> tuple[float, list[float]]:
    """The grant and the yearly tax credits the alternative would receive."""
    if funding is None:
        return 0.0, []
    grant = 0.0
    if funding.grant is not None:
        g = funding.grant
        grant = grant_amount(alt.grant_eligible_cost, g.share, g.cap, g.min_project)
    credits: list[float] = []
    if funding.tax_credit is not None:
        t = funding.tax_credit
        credits = tax_credit_schedule(alt.tax_credit_eligible_cost, t.share, t.years, t.cap, t.tax_capacity_per_year)
    return grant, credits


def yearly_cases(base: Kpis, invested: Kpis, alt: Alternative, econ: Economics, funding: Funding | None) -> Cases:
    """The business case of one replication pair."""
    benefit = annual_contribution(invested, econ) - annual_contribution(base, econ)
    working = _get(base, "line.working_hours")
    per_working_hour = window_contribution(base, econ) / working if working > 0 else 0.0
    loss = max(0.0, per_working_hour * alt.installation_downtime_hours)
    years = min(econ.horizon_years, alt.useful_life_years)
    common: dict[str, Any] = {
        "annual_benefit": benefit,
        "capex": alt.capex,
        "opex_per_year": alt.opex_per_year,
        "years": years,
        "rate": econ.discount_rate,
        "installation_loss": loss,
        "residual_value": alt.residual_value,
    }
    grant, credits = public_money(alt, funding)
    return Cases(
        annual_benefit=benefit,
        installation_loss=loss,
        without=business_case(**common),
        with_funding=business_case(**common, grant=grant, tax_credits=credits),
    )


@dataclass(frozen=True)
class CaseSummary:
    """Business-case figures over the replications, each a mean with its 95 % confidence interval."""

    figures: dict[str, Summary]
    grant: float
    tax_credits: list[float]
    cash_flows_without: list[float]  # mean yearly cash flows, for charts
    cash_flows_with: list[float]
    funding_decisive_share: float  # replications where funding turns a negative NPV positive

    @property
    def public_money(self) -> float:
        """Grant plus all tax credits (undiscounted)."""
        return self.grant + sum(self.tax_credits)

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON."""
        return {
            "figures": {k: v.as_dict() for k, v in self.figures.items()},
            "grant": self.grant,
            "tax_credits": self.tax_credits,
            "public_money": self.public_money,
            "cash_flows_without_funding": self.cash_flows_without,
            "cash_flows_with_funding": self.cash_flows_with,
            "funding_decisive_share": self.funding_decisive_share,
        }


def summarise_cases(cases: list[Cases], alt: Alternative, funding: Funding | None) -> CaseSummary:
    """Summarise the per-replication cases of one alternative."""
    grant, credits = public_money(alt, funding)
    public = grant + sum(credits)
    figures: dict[str, list[float | None]] = {}

    def add(name: str, value: float | None) -> None:
        figures.setdefault(name, []).append(value)

    for c in cases:
        add("annual_benefit", c.annual_benefit)
        add("installation_loss", c.installation_loss)
        for tag, case in (("without_funding", c.without), ("with_funding", c.with_funding)):
            add(f"npv_{tag}", case.npv)
            add(f"irr_{tag}", case.irr)
            add(f"payback_years_{tag}", case.payback_years)
            add(f"discounted_payback_years_{tag}", case.discounted_payback_years)
        add("npv_per_public_euro", c.without.npv / public if public > 0 else None)
    n = len(cases) or 1
    years = len(cases[0].without.cash_flows) if cases else 0
    mean_without = [sum(c.without.cash_flows[t] for c in cases) / n for t in range(years)]
    mean_with = [sum(c.with_funding.cash_flows[t] for c in cases) / n for t in range(years)]
    decisive = sum(1 for c in cases if c.without.npv < 0 <= c.with_funding.npv) / n
    return CaseSummary({k: summarise(v) for k, v in figures.items()}, grant, credits, mean_without, mean_with, decisive)


@dataclass(frozen=True)
class RunningDifference:
    """What an investment has earned so far in a live twin: the difference in contribution margin between the
    invested and the baseline line over the same hours, less the investment's cost prorated to those hours.

    Attributes:
        hours: Simulated hours compared (the statistics window of the baseline).
        contribution_delta: Invested minus baseline contribution margin (EUR).
        cost: The investment's prorated cost without public money (EUR).
        cost_funded: The prorated cost after the grant and the tax credits (EUR).
    """

    hours: float
    contribution_delta: float
    cost: float
    cost_funded: float

    @property
    def net(self) -> float:
        """Money gained by investing, without public co-funding (EUR)."""
        return self.contribution_delta - self.cost

    @property
    def net_funded(self) -> float:
        """Money gained by investing, with public co-funding (EUR)."""
        return self.contribution_delta - self.cost_funded


def prorated_cost_per_hour(alt: Alternative, econ: Economics, funding: Funding | None) -> tuple[float, float]:
    """The investment's cost per simulated hour, without and with public money (EUR/h).

    A year of cost is straight-line depreciation, (capex − residual value) / useful life, plus the yearly opex;
    the grant and the tax credits reduce the depreciated amount. A simulated hour is 1/``hours_per_year`` of a
    year, as in the yearly business case.
    """
    life = alt.useful_life_years
    yearly = (alt.capex - alt.residual_value) / life + alt.opex_per_year
    grant, credits = public_money(alt, funding)
    yearly_funded = yearly - (grant + sum(credits)) / life
    return yearly / econ.hours_per_year, yearly_funded / econ.hours_per_year


def running_difference(
    base: Kpis, invested: Kpis, alt: Alternative, econ: Economics, funding: Funding | None
) -> RunningDifference:
    """The running money difference of a live twin from the KPIs of both lines so far."""
    hours = _get(base, "line.observed_hours")
    per_hour, per_hour_funded = prorated_cost_per_hour(alt, econ, funding)
    return RunningDifference(
        hours=hours,
        contribution_delta=window_contribution(invested, econ) - window_contribution(base, econ),
        cost=per_hour * hours,
        cost_funded=per_hour_funded * hours,
    )
