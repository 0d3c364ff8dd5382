"""Investment appraisal against textbook values worked by hand, co-funding rules, and properties.

Textbook source for the two-project example: Brigham & Houston / Brigham & Ehrhardt, *Fundamentals of Financial
Management* / *Financial Management* (capital budgeting chapter), projects S = [-1000, 500, 400, 300, 100] and
L = [-1000, 100, 300, 400, 600] at a 10 % cost of capital: NPV_S = 78.82, NPV_L = 49.18, IRR_S = 14.49 %,
IRR_L = 11.79 %, payback 2.33 and 3.33 years, discounted payback 2.95 and 3.88 years.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simline.finance import (
    IRR_HIGH,
    IRR_LOW,
    CaseResult,
    business_case,
    cumulative,
    grant_amount,
    irr,
    npv,
    payback_years,
    tax_credit_schedule,
)

PROJECT_S = [-1000.0, 500.0, 400.0, 300.0, 100.0]
PROJECT_L = [-1000.0, 100.0, 300.0, 400.0, 600.0]

# 5-year annuity factor at 10 %: (1 - 1.1**-5) / 0.1 = 3.790786769; 1000 / 3.790786769 = 263.797481
ANNUITY_FACTOR_10_5 = (1 - 1.1**-5) / 0.1


# --- NPV --------------------------------------------------------------------------------------------------------


def test_npv_textbook_example() -> None:
    # 300/1.1 = 272.727273, 400/1.21 = 330.578512, 500/1.331 = 375.657400, 200/1.4641 = 136.602691
    # sum = 1115.565877, minus 1000 -> 115.565877
    assert npv(0.10, [-1000, 300, 400, 500, 200]) == pytest.approx(115.565877, abs=1e-6)


def test_npv_brigham_projects() -> None:
    # S: -1000 + 454.545 + 330.579 + 225.394 + 68.301 = 78.82; L: -1000 + 90.909 + 247.934 + 300.526 + 409.808 = 49.18
    assert npv(0.10, PROJECT_S) == pytest.approx(78.8198, abs=1e-4)
    assert npv(0.10, PROJECT_L) == pytest.approx(49.1770, abs=1e-4)


def test_npv_conventions() -> None:
    assert npv(0.10, [-500.0]) == -500.0  # t = 0 is not discounted
    assert npv(0.0, [-100, 30, 30, 50]) == pytest.approx(10.0)
    assert npv(0.25, []) == 0.0
    assert npv(1.0, [0, 0, 400]) == pytest.approx(100.0)  # 400 / 2**2
    assert npv(-0.5, [0, 10]) == pytest.approx(20.0)  # negative rates are allowed above -100 %


@pytest.mark.parametrize("rate", [-1.0, -1.5, math.nan])
def test_npv_rejects_rate_at_or_below_minus_one(rate: float) -> None:
    with pytest.raises(ValueError, match="rate must be above -1"):
        npv(rate, [-100, 110])


# --- IRR --------------------------------------------------------------------------------------------------------


def test_irr_one_period() -> None:
    # -100 + 110 / (1 + r) = 0  ->  r = 10 %
    assert irr([-100, 110]) == pytest.approx(0.10, abs=1e-12)


def test_irr_brigham_projects() -> None:
    irr_s, irr_l = irr(PROJECT_S), irr(PROJECT_L)
    assert irr_s is not None and irr_l is not None
    assert irr_s == pytest.approx(0.1449, abs=5e-5)
    assert irr_l == pytest.approx(0.1179, abs=5e-5)
    # numpy-financial-free cross-check: the NPV at the IRR is zero
    assert npv(irr_s, PROJECT_S) == pytest.approx(0.0, abs=1e-9)
    assert npv(irr_l, PROJECT_L) == pytest.approx(0.0, abs=1e-9)


def test_annuity_rounded_payment() -> None:
    # 263.80 * 3.790786769 = 1000.009550 -> NPV = +0.00955 at 10 %, so the IRR is a hair above 10 %
    flows = [-1000.0] + [263.80] * 5
    assert npv(0.10, flows) == pytest.approx(0.00955, abs=1e-5)
    rate = irr(flows)
    assert rate is not None
    assert rate == pytest.approx(0.10, abs=1e-5)
    assert rate > 0.10


def test_annuity_exact_payment() -> None:
    payment = 1000 / ANNUITY_FACTOR_10_5  # 263.797481
    flows = [-1000.0] + [payment] * 5
    assert npv(0.10, flows) == pytest.approx(0.0, abs=1e-9)
    assert irr(flows) == pytest.approx(0.10, abs=1e-10)


@pytest.mark.parametrize(
    "flows",
    [
        [100, 200, 300],  # all positive
        [-100, -200, -300],  # all negative
        [0, 0, 0],  # NPV zero at every rate: IRR undefined
        [],
        [-100],
        [-100, 0.5],  # root at -99.5 %, below the searched range
        [-1, 20],  # root at 1900 %, above the searched range
    ],
)
def test_irr_none_without_a_root_in_range(flows: list[float]) -> None:
    assert irr(flows) is None


def test_irr_negative() -> None:
    # -100 + 50 / (1 + r) = 0  ->  r = -50 %
    assert irr([-100, 50]) == pytest.approx(-0.5, abs=1e-12)


def test_irr_several_roots_returns_smallest() -> None:
    # -100 + 230x - 132x^2 = 0 with x = 1/(1+r): x = 10/11 or 10/12, i.e. r = 10 % and r = 20 %
    assert npv(0.10, [-100, 230, -132]) == pytest.approx(0.0, abs=1e-9)
    assert npv(0.20, [-100, 230, -132]) == pytest.approx(0.0, abs=1e-9)
    assert irr([-100, 230, -132]) == pytest.approx(0.10, abs=1e-12)


# --- payback ----------------------------------------------------------------------------------------------------


def test_simple_payback_interpolates() -> None:
    # cumulative -1000, -700, -300, +200: crosses in year 3 -> 2 + 300/500 = 2.6
    assert payback_years([-1000, 300, 400, 500]) == pytest.approx(2.6)


def test_discounted_payback_by_hand() -> None:
    # at 5 %: 300/1.05 = 285.714286, 400/1.1025 = 362.811791, 500/1.157625 = 431.918799
    # cumulative -1000, -714.285714, -351.473923, +80.444876 -> 2 + 351.473923/431.918799 = 2.813750
    assert payback_years([-1000, 300, 400, 500], rate=0.05) == pytest.approx(2.813750, abs=1e-6)
    # at 10 %: 272.727 + 330.579 + 375.657 = 978.963 < 1000: never paid back within the horizon
    assert payback_years([-1000, 300, 400, 500], rate=0.10) is None


def test_payback_brigham_projects() -> None:
    # S: cumulative -1000, -500, -100, +200 -> 2 + 100/300 = 2.33
    # S discounted: -1000, -545.45, -214.88, +10.52 -> 2 + 214.88/225.39 = 2.95
    # L: -1000, -900, -600, -200, +400 -> 3 + 200/600 = 3.33
    # L discounted: -1000, -909.09, -661.16, -360.63, +49.18 -> 3 + 360.63/409.81 = 3.88
    assert payback_years(PROJECT_S) == pytest.approx(2 + 1 / 3)
    assert payback_years(PROJECT_S, rate=0.10) == pytest.approx(2.9533, abs=1e-4)
    assert payback_years(PROJECT_L) == pytest.approx(3 + 1 / 3)
    assert payback_years(PROJECT_L, rate=0.10) == pytest.approx(3.8800, abs=1e-4)


def test_payback_edge_cases() -> None:
    assert payback_years([0, 10, 20]) == 0.0  # never negative
    assert payback_years([50]) == 0.0
    assert payback_years([-100, 50, 50]) == pytest.approx(2.0)  # exactly zero at the end of year 2
    assert payback_years([-100]) is None
    assert payback_years([-100, 20, 30]) is None
    assert payback_years([0, -100, 200]) == pytest.approx(1.5)  # dips in year 1, recovers half-way through year 2
    assert payback_years([50, -100, 20]) is None  # dips and never recovers


def test_payback_reports_first_recovery() -> None:
    # cumulative -100, +50, -150, +150: first back at zero in year 1 (100/150), although it dips again later
    assert payback_years([-100, 150, -200, 300]) == pytest.approx(2 / 3)


def test_payback_rejects_empty_and_bad_rate() -> None:
    with pytest.raises(ValueError, match="cash_flows must not be empty"):
        payback_years([])
    with pytest.raises(ValueError, match="rate"):
        payback_years([-100, 200], rate=-1.0)


def test_cumulative() -> None:
    assert cumulative([-1000, 300, 400, 500]) == [-1000, -700, -300, 200]
    assert cumulative([-1000, 550, 605], rate=0.10) == pytest.approx([-1000, -500, 0])
    assert cumulative([]) == []
    with pytest.raises(ValueError, match="rate"):
        cumulative([1, 2], rate=-2)


# --- grants -----------------------------------------------------------------------------------------------------
# Digital Jetzt (BMWi/BMWK, 2020-2023): 40 % for firms with up to 50 staff (from July 2021), at most € 50,000 per
# firm; the € 17,000 minimum investment is the figure given for the worked example.


def test_grant_digital_jetzt_examples() -> None:
    assert grant_amount(60_000, 0.40, cap=50_000, min_project=17_000) == pytest.approx(24_000)  # 0.4 * 60k
    assert grant_amount(150_000, 0.40, cap=50_000, min_project=17_000) == 50_000  # 60k capped at 50k
    assert grant_amount(15_000, 0.40, cap=50_000, min_project=17_000) == 0.0  # below the minimum project
    assert grant_amount(17_000, 0.40, cap=50_000, min_project=17_000) == pytest.approx(6_800)  # at the minimum


def test_grant_without_cap_or_minimum() -> None:
    assert grant_amount(1_000_000, 0.25, cap=None, min_project=None) == pytest.approx(250_000)
    assert grant_amount(10_000, 0.0, cap=None, min_project=None) == 0.0
    assert grant_amount(10_000, 1.0, cap=None, min_project=None) == 10_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eligible_cost": -1.0}, "eligible_cost must not be negative"),
        ({"eligible_cost": math.inf}, "eligible_cost must be a finite number"),
        ({"share": 1.2}, "share must be a fraction between 0 and 1"),
        ({"share": -0.1}, "share must be a fraction between 0 and 1"),
        ({"share": math.nan}, "share must be a fraction between 0 and 1"),
        ({"cap": -5.0}, "cap must not be negative"),
        ({"min_project": -5.0}, "min_project must not be negative"),
    ],
)
def test_grant_validation(kwargs: dict[str, float], message: str) -> None:
    args: dict[str, float | None] = {"eligible_cost": 60_000.0, "share": 0.4, "cap": 50_000.0, "min_project": 17_000.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        grant_amount(**args)  # type: ignore[arg-type]


# --- tax credits ------------------------------------------------------------------------------------------------


def test_tax_credit_spread_evenly() -> None:
    # 25 % of 100k = 25k in 4 instalments of 6,250
    assert tax_credit_schedule(100_000, 0.25, years=4) == pytest.approx([6_250] * 4)
    # 25 % of 400k = 100k, capped at 60k -> 3 x 20k
    assert tax_credit_schedule(400_000, 0.25, years=3, cap=60_000) == pytest.approx([20_000] * 3)


def test_tax_credit_carry_forward_fully_used() -> None:
    # instalments 6,250, capacity 5,000: carried 1,250 / 2,500 / 3,750 / 5,000 after years 1-4, used up in year 5
    assert tax_credit_schedule(100_000, 0.25, years=4, tax_capacity_per_year=5_000) == pytest.approx([5_000] * 5)


def test_tax_credit_carry_forward_partly_lost() -> None:
    # instalments 6,250, capacity 2,000: 2,000 used in each of years 1-8 (carry-forward ends after 4 more years),
    # 25,000 - 16,000 = 9,000 lost
    schedule = tax_credit_schedule(100_000, 0.25, years=4, tax_capacity_per_year=2_000)
    assert schedule == pytest.approx([2_000] * 8)
    # one instalment of 10,000, capacity 4,000: 4,000 in year 1, 4,000 in the one carry-forward year, 2,000 lost
    assert tax_credit_schedule(40_000, 0.25, years=1, tax_capacity_per_year=4_000) == pytest.approx([4_000] * 2)


def test_tax_credit_capacity_edge_cases() -> None:
    # capacity above the instalment changes nothing; no capacity at all loses everything
    assert tax_credit_schedule(100_000, 0.25, years=4, tax_capacity_per_year=10_000) == pytest.approx([6_250] * 4)
    assert tax_credit_schedule(100_000, 0.25, years=4, tax_capacity_per_year=0) == [0.0] * 4
    # 12,000 in 3 instalments of 4,000, capacity 3,000: carried 1,000 / 2,000 / 3,000, used 3,000 in year 4
    assert tax_credit_schedule(48_000, 0.25, years=3, tax_capacity_per_year=3_000) == pytest.approx([3_000] * 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"years": 0}, "years must be at least 1"),
        ({"share": 2.0}, "share must be a fraction between 0 and 1"),
        ({"eligible_cost": -10.0}, "eligible_cost must not be negative"),
        ({"cap": -1.0}, "cap must not be negative"),
        ({"tax_capacity_per_year": -1.0}, "tax_capacity_per_year must not be negative"),
    ],
)
def test_tax_credit_validation(kwargs: dict[str, float], message: str) -> None:
    args: dict[str, float | None] = {"eligible_cost": 100_000.0, "share": 0.25, "years": 4}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        tax_credit_schedule(**args)  # type: ignore[arg-type]


# --- business case ----------------------------------------------------------------------------------------------


def test_business_case_by_hand() -> None:
    # year 0: -100,000 + 24,000 = -76,000
    # year 1: 40,000 - 5,000 + 2,000 - 10,000 = 27,000; year 2: 35,000 + 2,000 = 37,000; years 3-4: 35,000
    # year 5: 35,000 + 10,000 residual = 45,000
    # at 8 %: 25,000.00 + 31,721.54 + 27,784.13 + 25,726.04 + 30,626.24 - 76,000 = 64,857.95
    # payback: cumulative -76,000, -49,000, -12,000, +23,000 -> 2 + 12,000/35,000 = 2.342857
    # discounted: -76,000, -51,000, -19,278.46, +8,505.66 -> 2 + 19,278.46/27,784.13 = 2.693866
    result = business_case(
        annual_benefit=40_000,
        capex=100_000,
        opex_per_year=5_000,
        years=5,
        rate=0.08,
        installation_loss=10_000,
        grant=24_000,
        tax_credits=[2_000, 2_000],
        residual_value=10_000,
    )
    assert result.cash_flows == (-76_000.0, 27_000.0, 37_000.0, 35_000.0, 35_000.0, 45_000.0)
    assert all(isinstance(f, float) for f in result.cash_flows)
    assert result.npv == pytest.approx(64_857.95, abs=0.01)
    assert result.payback_years == pytest.approx(2.342857, abs=1e-6)
    assert result.discounted_payback_years == pytest.approx(2.693866, abs=1e-6)
    assert result.irr is not None
    assert npv(result.irr, result.cash_flows) == pytest.approx(0.0, abs=1e-6)


def test_business_case_without_extras_is_annuity() -> None:
    result = business_case(annual_benefit=300, capex=1000, opex_per_year=36.202519, years=5, rate=0.10)
    assert result.cash_flows[0] == -1000
    assert result.npv == pytest.approx(0.0, abs=1e-4)  # 263.797481 a year is the 10 % annuity of 1000
    assert result.irr == pytest.approx(0.10, abs=1e-7)
    assert result.discounted_payback_years == pytest.approx(5.0, abs=1e-6)


def test_business_case_with_co_funding() -> None:
    grant = grant_amount(60_000, 0.40, cap=50_000, min_project=17_000)
    credits = tax_credit_schedule(60_000, 0.10, years=3, tax_capacity_per_year=1_500)  # 2,000/yr -> 1,500 x 4
    result = business_case(
        20_000, capex=60_000, opex_per_year=2_000, years=5, rate=0.07, grant=grant, tax_credits=credits
    )
    assert result.cash_flows == pytest.approx((-36_000, 19_500, 19_500, 19_500, 19_500, 18_000))
    plain = business_case(20_000, capex=60_000, opex_per_year=2_000, years=5, rate=0.07)
    assert result.npv > plain.npv
    assert result.payback_years is not None and plain.payback_years is not None
    assert result.payback_years < plain.payback_years


def test_business_case_is_frozen() -> None:
    result = business_case(10, capex=20, opex_per_year=0, years=3, rate=0.05)
    assert isinstance(result, CaseResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.npv = 0.0  # type: ignore[misc]


def test_business_case_tax_credits_beyond_horizon_are_ignored() -> None:
    # a 2-year appraisal counts the credits of years 1 and 2 only, like any other flow after the horizon
    result = business_case(10, capex=20, opex_per_year=0, years=2, rate=0.05, tax_credits=[1, 2, 4, 8])
    assert result.cash_flows == (-20.0, 11.0, 12.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capex": -1.0}, "capex must not be negative"),
        ({"years": 0}, "years must be at least 1"),
        ({"rate": -1.0}, "rate must be above -1"),
        ({"opex_per_year": -1.0}, "opex_per_year must not be negative"),
        ({"installation_loss": -1.0}, "installation_loss must not be negative"),
        ({"grant": -1.0}, "grant must not be negative"),
        ({"annual_benefit": math.nan}, "annual_benefit must be a finite number"),
        ({"residual_value": math.inf}, "residual_value must be a finite number"),
        ({"tax_credits": [1.0, -1.0]}, r"tax_credits\[1\] \(year 2\) must not be negative"),
    ],
)
def test_business_case_validation(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"annual_benefit": 10.0, "capex": 20.0, "opex_per_year": 1.0, "years": 3, "rate": 0.05}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        business_case(**args)  # type: ignore[arg-type]


def test_business_case_negative_residual_is_a_disposal_cost() -> None:
    result = business_case(10, capex=20, opex_per_year=0, years=3, rate=0.0, residual_value=-5)
    assert result.cash_flows == (-20.0, 10.0, 10.0, 5.0)


# --- properties -------------------------------------------------------------------------------------------------

money = st.floats(min_value=-1e5, max_value=1e5, allow_nan=False)
inflows = st.lists(st.floats(min_value=0.0, max_value=1e5), min_size=1, max_size=15).filter(lambda xs: max(xs) >= 1)
outlay = st.floats(min_value=1.0, max_value=1e6)


@given(outlay, inflows, st.floats(min_value=-0.5, max_value=1.0), st.floats(min_value=0.01, max_value=1.0))
def test_npv_decreasing_in_rate_for_conventional_project(
    invest: float, later: list[float], r1: float, gap: float
) -> None:
    flows = [-invest, *later]
    assert npv(r1, flows) > npv(r1 + gap, flows)


@given(st.lists(money, min_size=2, max_size=15))
def test_npv_at_irr_is_zero(flows: list[float]) -> None:
    rate = irr(flows)
    if rate is None:
        return
    assert IRR_LOW <= rate <= IRR_HIGH
    # tolerance relative to the size of the discounted terms and of the NPV's slope at the root
    scale = math.fsum((t + 1) * abs(f) * (1 + rate) ** -(t + 1) for t, f in enumerate(flows))
    assert abs(npv(rate, flows)) <= 1e-9 * scale


@given(outlay, inflows)
def test_conventional_irr_is_the_unique_break_even_rate(invest: float, later: list[float]) -> None:
    flows = [-invest, *later]
    rate = irr(flows)
    if rate is None:
        return
    if rate - 0.01 > IRR_LOW:
        assert npv(rate - 0.01, flows) > 0
    assert npv(rate + 0.01, flows) < 0


@given(
    outlay,
    st.lists(money, min_size=1, max_size=15),
    st.lists(st.floats(min_value=0.0, max_value=1e5), min_size=15, max_size=15),
    st.none() | st.floats(min_value=0.0, max_value=0.5),
)
def test_more_benefit_never_lengthens_payback(
    invest: float, later: list[float], extra: list[float], rate: float | None
) -> None:
    flows = [-invest, *later]
    better = [-invest, *(f + e for f, e in zip(later, extra, strict=False))]
    before, after = payback_years(flows, rate), payback_years(better, rate)
    if before is not None:
        assert after is not None
        assert after <= before + 1e-9


@given(outlay, inflows, st.floats(min_value=0.0, max_value=0.5))
def test_discounted_payback_not_shorter_than_simple(invest: float, later: list[float], rate: float) -> None:
    flows = [-invest, *later]
    simple, discounted = payback_years(flows), payback_years(flows, rate)
    if discounted is not None:
        assert simple is not None
        assert simple <= discounted + 1e-9


@given(
    st.floats(min_value=0.0, max_value=1e7),
    st.floats(min_value=0.0, max_value=1.0),
    st.integers(min_value=1, max_value=10),
    st.none() | st.floats(min_value=0.0, max_value=1e6),
    st.none() | st.floats(min_value=0.0, max_value=1e6),
)
def test_tax_credit_schedule_properties(
    cost: float, share: float, years: int, cap: float | None, capacity: float | None
) -> None:
    schedule = tax_credit_schedule(cost, share, years, cap=cap, tax_capacity_per_year=capacity)
    credit = share * cost if cap is None else min(share * cost, cap)
    assert years <= len(schedule) <= 2 * years
    assert all(x >= 0 for x in schedule)
    assert math.fsum(schedule) <= credit * (1 + 1e-12) + 1e-9
    if capacity is None or capacity >= credit / years:
        assert len(schedule) == years
        assert math.fsum(schedule) == pytest.approx(credit)
    else:
        assert all(x <= capacity for x in schedule)


@given(
    st.floats(min_value=0.0, max_value=1e7),
    st.floats(min_value=0.0, max_value=1e7),
    st.floats(min_value=0.0, max_value=1.0),
    st.none() | st.floats(min_value=0.0, max_value=1e6),
)
def test_grant_bounded_and_monotone_above_minimum(a: float, b: float, share: float, cap: float | None) -> None:
    low, high = sorted((a, b))
    g_low = grant_amount(low, share, cap=cap, min_project=None)
    g_high = grant_amount(high, share, cap=cap, min_project=None)
    assert 0 <= g_low <= g_high
    assert g_high <= share * high
    if cap is not None:
        assert g_high <= cap
