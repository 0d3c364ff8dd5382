"""Investment appraisal for the business case: NPV, IRR, payback and public co-funding (grants, tax credits).

Pure functions on yearly cash flows: ``cash_flows[0]`` falls at t = 0 (today, undiscounted) and ``cash_flows[t]``
at the end of year t, discounted by ``(1 + rate) ** t``. Rates are fractions (``0.1`` is 10 % a year); money is in
any one currency. Nothing here simulates, reads or writes files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

__all__ = [
    "IRR_HIGH",
    "IRR_LOW",
    "CaseResult",
    "business_case",
    "cumulative",
    "grant_amount",
    "irr",
    "npv",
    "payback_years",
    "tax_credit_schedule",
]

IRR_LOW = -0.99
"""Lowest rate :func:`irr` searches."""
IRR_HIGH = 10.0
"""Highest rate :func:`irr` searches (1000 % a year)."""

_IRR_GRID = np.unique(np.concatenate([np.linspace(IRR_LOW, 1.0, 399), np.linspace(1.0, IRR_HIGH, 181)]))
"""Rates at which :func:`irr` looks for a sign change: steps of 0.5 points up to 100 %, then of 5 points."""


def _check_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def _check_non_negative(name: str, value: float) -> None:
    _check_finite(name, value)
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")


def _check_rate(rate: float) -> None:
    if not rate > -1:  # also rejects NaN
        raise ValueError(
            f"rate must be above -1 (a loss of 100 % or more per year has no discount factor), got {rate!r}"
        )


def _check_share(share: float) -> None:
    if not 0 <= share <= 1:  # also rejects NaN
        raise ValueError(f"share must be a fraction between 0 and 1 (e.g. 0.4 for 40 %), got {share!r}")


def _check_years(years: int) -> None:
    if years < 1:
        raise ValueError(f"years must be at least 1, got {years!r}")


def npv(rate: float, cash_flows: Sequence[float]) -> float:
    """Net present value: the sum of ``cash_flows[t] / (1 + rate) ** t``.

    Args:
        rate: Discount rate per year, as a fraction.
        cash_flows: Cash flow at t = 0 (not discounted), then at the end of each year. Empty gives 0.

    Returns:
        The net present value, in the currency of the cash flows.

    Raises:
        ValueError: If ``rate`` is -1 or below (or NaN).
    """
    _check_rate(rate)
    growth = 1.0 + rate
    value = 0.0
    for flow in reversed(cash_flows):  # Horner: no power of (1 + rate) that could overflow
        value = value / growth + flow
    return value


def irr(cash_flows: Sequence[float]) -> float | None:
    """Internal rate of return: the rate at which the net present value is zero.

    The NPV is evaluated on a grid of rates from :data:`IRR_LOW` (-99 %) to :data:`IRR_HIGH` (1000 %), in steps of
    half a percentage point up to 100 % and five points above; the root is then refined with Brent's method
    (:func:`scipy.optimize.brentq`) inside the first grid step where the NPV changes sign. With several sign
    changes in the cash flows (a non-conventional project, which may have several IRRs) this is the smallest root
    above -99 % that the grid reveals; two roots within one grid step cancel out and are not seen.

    Args:
        cash_flows: Cash flow at t = 0, then at the end of each year.

    Returns:
        The IRR as a fraction, or ``None`` when the NPV does not change sign on the grid: all flows of one sign
        (or all zero), fewer than two flows, or a root outside [-99 %, 1000 %].
    """
    flows = [float(f) for f in cash_flows]
    if not any(flows):
        return None
    values = np.zeros_like(_IRR_GRID)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for flow in reversed(flows):
            values = values / (1.0 + _IRR_GRID) + flow
    signs = np.where(np.isfinite(values), np.sign(values), np.nan)
    for i, rate in enumerate(_IRR_GRID):
        if signs[i] == 0:
            return float(rate)
        if i + 1 < len(_IRR_GRID) and signs[i] * signs[i + 1] < 0:
            root = brentq(lambda r: npv(r, flows), float(rate), float(_IRR_GRID[i + 1]), xtol=1e-14, maxiter=500)
            return float(root)
    return None


def cumulative(cash_flows: Sequence[float], rate: float | None = None) -> list[float]:
    """Running total of the cash flows (for plotting a payback curve), discounted when ``rate`` is given.

    Args:
        cash_flows: Cash flow at t = 0, then at the end of each year.
        rate: Discount rate per year; ``None`` sums the flows as they are.

    Returns:
        ``result[t]`` is the (discounted) sum of ``cash_flows[0..t]``.

    Raises:
        ValueError: If ``rate`` is -1 or below (or NaN).
    """
    if rate is not None:
        _check_rate(rate)
    total = 0.0
    result: list[float] = []
    factor = 1.0
    for flow in cash_flows:
        total += flow * factor
        result.append(total)
        if rate is not None:
            factor /= 1.0 + rate
    return result


def payback_years(cash_flows: Sequence[float], rate: float | None = None) -> float | None:
    """Payback period: when the cumulative cash flow first climbs back to zero.

    Each year's flow (t >= 1) is taken to arrive evenly over that year, so the cumulative cash flow is linear within
    a year and the crossing is interpolated: with ``C`` the cumulative flow, crossing in year t gives
    ``t - 1 + -C[t-1] / (C[t] - C[t-1])``. With ``rate`` this is the discounted payback, on the discounted flows
    (each year's discounted flow spread evenly over that year, the usual textbook convention).

    If the cumulative flow dips below zero again after paying back (non-conventional flows, e.g. a later
    re-investment), the first recovery is still reported.

    Args:
        cash_flows: Cash flow at t = 0, then at the end of each year.
        rate: Discount rate per year for the discounted payback; ``None`` for the simple payback.

    Returns:
        Years (fractional) until the cumulative flow reaches zero from below; 0.0 when it is never negative; ``None``
        when it is negative at the end of the horizon without having reached zero.

    Raises:
        ValueError: If ``cash_flows`` is empty, or ``rate`` is -1 or below (or NaN).
    """
    if len(cash_flows) == 0:
        raise ValueError("cash_flows must not be empty: payback needs at least the flow at t = 0")
    cum = cumulative(cash_flows, rate)
    below = cum[0] < 0
    for t in range(1, len(cum)):
        if below and cum[t] >= 0:
            return t - 1 + -cum[t - 1] / (cum[t] - cum[t - 1])
        if cum[t] < 0:
            below = True  # recovery from a dip that starts in year t can only come in a later year
    return None if below else 0.0


def grant_amount(eligible_cost: float, share: float, cap: float | None, min_project: float | None) -> float:
    """Grant paid on an investment: ``share`` of the eligible cost, at most ``cap``.

    Programmes such as Germany's *Digital Jetzt* pay a share of the eligible cost up to a maximum grant, and only
    for projects of at least a minimum size.

    Args:
        eligible_cost: Cost the programme accepts as eligible.
        share: Funding rate, as a fraction between 0 and 1.
        cap: Maximum grant, or ``None`` for no maximum.
        min_project: Smallest eligible cost the programme funds, or ``None`` for no minimum. A project exactly at
            the minimum is funded.

    Returns:
        The grant; 0 when ``eligible_cost`` is below ``min_project``.

    Raises:
        ValueError: If ``eligible_cost``, ``cap`` or ``min_project`` is negative or not finite, or ``share`` is
            outside [0, 1].
    """
    _check_non_negative("eligible_cost", eligible_cost)
    _check_share(share)
    if cap is not None:
        _check_non_negative("cap", cap)
    if min_project is not None:
        _check_non_negative("min_project", min_project)
        if eligible_cost < min_project:
            return 0.0
    amount = share * eligible_cost
    return float(amount if cap is None else min(amount, cap))


def tax_credit_schedule(
    eligible_cost: float,
    share: float,
    years: int,
    cap: float | None = None,
    tax_capacity_per_year: float | None = None,
) -> list[float]:
    """Yearly tax credit actually used: ``share`` of the eligible cost (at most ``cap``) in equal instalments.

    The credit is granted in ``years`` equal instalments in years 1 to ``years``. With ``tax_capacity_per_year``,
    the firm can use at most that much credit in any year (its tax liability); what it cannot use is carried
    forward and used first in the following years, as far as capacity allows. Carry-forward runs for at most
    ``years`` further years (to year ``2 * years``); whatever is still unused after that is lost.

    Args:
        eligible_cost: Cost on which the credit is computed.
        share: Credit rate, as a fraction between 0 and 1.
        years: Number of equal instalments (years 1 to ``years``).
        cap: Maximum total credit, or ``None`` for no maximum.
        tax_capacity_per_year: Most credit the firm can use in one year, or ``None`` for no limit.

    Returns:
        Credit used in each year; ``result[0]`` is year 1. It has ``years`` entries, plus one for each later
        carry-forward year up to the last one in which credit is still used (at most ``2 * years`` entries). The
        lost part is the total credit minus the sum of the list.

    Raises:
        ValueError: If ``eligible_cost``, ``cap`` or ``tax_capacity_per_year`` is negative or not finite, ``share``
            is outside [0, 1] or ``years`` is below 1.
    """
    _check_non_negative("eligible_cost", eligible_cost)
    _check_share(share)
    _check_years(years)
    if cap is not None:
        _check_non_negative("cap", cap)
    if tax_capacity_per_year is not None:
        _check_non_negative("tax_capacity_per_year", tax_capacity_per_year)
    credit = float(share * eligible_cost if cap is None else min(share * eligible_cost, cap))
    instalment = credit / years
    if tax_capacity_per_year is None:
        return [instalment] * years
    used: list[float] = []
    carried = 0.0
    for year in range(1, 2 * years + 1):
        available = carried + (instalment if year <= years else 0.0)
        use = float(min(available, tax_capacity_per_year))
        carried = available - use
        if year > years and use == 0:
            break
        used.append(use)
    return used


@dataclass(frozen=True, slots=True)
class CaseResult:
    """Cash flows of an investment and the figures of merit computed from them.

    Attributes:
        cash_flows: Net cash flow at t = 0, then at the end of each year.
        npv: Net present value at the case's rate.
        irr: Internal rate of return (see :func:`irr`), ``None`` when there is none in [-99 %, 1000 %].
        payback_years: Simple payback (see :func:`payback_years`), ``None`` if never paid back.
        discounted_payback_years: Discounted payback at the case's rate, ``None`` if never paid back.
    """

    cash_flows: tuple[float, ...]
    npv: float
    irr: float | None
    payback_years: float | None
    discounted_payback_years: float | None


def business_case(
    annual_benefit: float,
    capex: float,
    opex_per_year: float,
    years: int,
    rate: float,
    installation_loss: float = 0.0,
    grant: float = 0.0,
    tax_credits: Sequence[float] = (),
    residual_value: float = 0.0,
) -> CaseResult:
    """Build the yearly cash flows of an investment and appraise them.

    The cash flows are:

    * year 0: ``-capex + grant``;
    * years 1 to ``years``: ``annual_benefit - opex_per_year``, plus ``tax_credits[t - 1]`` where given;
    * year 1 also ``- installation_loss`` (e.g. output lost while the new equipment is installed and run in);
    * the last year also ``+ residual_value``.

    Args:
        annual_benefit: Yearly gain over the baseline (e.g. extra contribution margin); may be negative.
        capex: Investment paid at t = 0.
        opex_per_year: Running cost the investment adds each year.
        years: Appraisal horizon in years.
        rate: Discount rate per year, as a fraction.
        installation_loss: One-off loss in year 1.
        grant: Grant received at t = 0 (see :func:`grant_amount`).
        tax_credits: Credit used in years 1, 2, ... (see :func:`tax_credit_schedule`); missing years count as 0.
            Credits after year ``years`` fall outside the appraisal and are ignored, like benefits after the
            horizon (compare ``sum(tax_credits)`` with the credits in ``cash_flows`` to see what was left out).
        residual_value: Value of the equipment at the end of the horizon; negative for a disposal cost.

    Returns:
        The cash flows with NPV, IRR, simple and discounted payback.

    Raises:
        ValueError: If ``capex``, ``opex_per_year``, ``installation_loss``, ``grant`` or a tax credit is negative,
            any amount is not finite, ``years`` is below 1 or ``rate`` is -1 or below.
    """
    _check_finite("annual_benefit", annual_benefit)
    _check_non_negative("capex", capex)
    _check_non_negative("opex_per_year", opex_per_year)
    _check_years(years)
    _check_rate(rate)
    _check_non_negative("installation_loss", installation_loss)
    _check_non_negative("grant", grant)
    _check_finite("residual_value", residual_value)
    for i, credit in enumerate(tax_credits):
        _check_non_negative(f"tax_credits[{i}] (year {i + 1})", credit)
    flows = [float(-capex + grant)]
    for t in range(1, years + 1):
        flow = float(annual_benefit - opex_per_year)
        if t <= len(tax_credits):
            flow += tax_credits[t - 1]
        if t == 1:
            flow -= installation_loss
        if t == years:
            flow += residual_value
        flows.append(flow)
    return CaseResult(
        cash_flows=tuple(flows),
        npv=npv(rate, flows),
        irr=irr(flows),
        payback_years=payback_years(flows),
        discounted_payback_years=payback_years(flows, rate),
    )
