"""Baseline against investments: common random numbers, paired deltas, the business case, its JSON and the CLI.

The scenarios are small YAML texts built with :func:`helpers.tandem_yaml`; comparisons run in this process
(``jobs=1``) except in the command-line tests, which run ``simline compare`` for real in a subprocess.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import exponential
from helpers import tandem_yaml as _tandem_yaml

from simline import Line, parse_scenario, run_replication
from simline.business import Cases, annual_contribution, public_money, window_contribution, yearly_cases
from simline.compare import AlternativeResult, Comparison, paired_deltas, run_comparison
from simline.events import Event, OrderCreated
from simline.kpis import Kpis
from simline.scenario import Scenario, load_scenario, scenario_from_data

ROOT = Path(__file__).resolve().parent.parent


# --- helpers -----------------------------------------------------------------------------------------------
def tandem_yaml(processing: list[Any], **kwargs: Any) -> str:
    """:func:`helpers.tandem_yaml` on unshared copies of the data (YAML anchors for shared parts are refused)."""
    unshared = json.loads(json.dumps({"processing": processing, **kwargs}))
    return _tandem_yaml(**unshared)


def fixed(value: float) -> dict[str, Any]:
    return {"kind": "fixed", "value": value}


def inv(name: str, *changes: dict[str, Any], capex: float = 10_000.0, **extra: Any) -> dict[str, Any]:
    return {"name": name, "capex": capex, "changes": list(changes), **extra}


def alt(c: Comparison, label: str) -> AlternativeResult:
    (found,) = [a for a in c.alternatives if a.label == label]
    return found


def nan_to_none(value: Any) -> Any:
    """The JSON document with every non-finite float replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nan_to_none(v) for v in value]
    return value


PRODUCTS = [
    {
        "family": "a",
        "share": 0.6,
        "price": 40.0,
        "material_cost": 12.0,
        "options": {"colour": {"choices": {"red": 0.5, "blue": 0.5}, "price_extra": {"blue": 3.0}}},
    },
    {"family": "b", "share": 0.4, "price": 55.0, "material_cost": 20.0},
]
FUNDING = {
    "programme": "test programme",
    "grant": {"share": 0.4, "cap": 30_000, "min_project": 5_000},
    # 30 % of the eligible cost over 3 years, at most 6000 a year: the rest is carried beyond the horizon
    "tax_credit": {"share": 0.3, "years": 3, "tax_capacity_per_year": 6_000},
}
ECONOMICS = {
    "energy_price_per_kwh": 0.25,
    "labour_cost_per_hour": 30.0,
    "lateness_penalty_per_order": 15.0,
    "discount_rate": 0.08,
    "horizon_years": 3,
}


@functools.cache
def scenario() -> Scenario:
    """Two families with options, setups and failures at s1, a slow s2; four investments."""
    return parse_scenario(
        tandem_yaml(
            [exponential(3), exponential(4.5)],
            rate_per_hour=11,
            horizon_hours=48,
            warmup_hours=4,
            replications=6,
            seed=11,
            products=PRODUCTS,
            station_extra=[
                {
                    "setup": {"default": fixed(2)},
                    "failures": {"time_between": exponential(300), "repair_time": fixed(20)},
                    "power_kw": {"processing": 4, "idle": 1},
                    "operators": 1,
                },
                {"power_kw": {"processing": 6, "idle": 2}, "operators": 1},
            ],
            orders={"kind": "poisson", "rate_per_hour": 11, "due_in_hours": 2},
            economics=ECONOMICS,
            funding=FUNDING,
            investments=[
                inv("tweak", {"lever": "set", "path": "stations.s2.processing.base.mean", "value": 4.3}, capex=8_000),
                inv(
                    "cnc",
                    {"lever": "extra_capacity", "station": "s2"},
                    capex=120_000,
                    opex_per_year=5_000,
                    installation_downtime_hours=16,
                ),
                inv(
                    "pdm",
                    {"lever": "predictive_maintenance", "detection_share": 0.9, "maintenance_time": fixed(5)},
                    capex=4_000,
                    grant_eligible=False,
                    tax_credit_eligible=False,
                ),
                inv("price", {"lever": "set", "path": "products.b.price", "value": 60.0}, capex=2_000),
            ],
        )
    )


@functools.cache
def comparison() -> Comparison:
    return run_comparison(scenario(), jobs=1)


def cases(c: Comparison, label: str) -> list[Cases]:
    """The business case of each replication pair, as run_comparison builds it."""
    a = alt(c, label)
    sc = c.scenario
    return [
        yearly_cases(b, o, a.alternative, sc.economics, sc.funding)
        for b, o in zip(c.baseline.runs, a.result.runs, strict=True)
    ]


# --- common random numbers ---------------------------------------------------------------------------------
def orders_created(sc: Scenario, replication: int, seed: int) -> list[OrderCreated]:
    events: list[Event] = []
    Line(sc, replication, seed, observers=[events.append]).run()
    return [e for e in events if isinstance(e, OrderCreated)]


def test_baseline_and_alternatives_see_the_same_orders() -> None:
    c = comparison()
    assert [a.label for a in c.alternatives] == ["tweak", "cnc", "pdm", "price"]
    for r in (0, 1):
        base = orders_created(c.scenario, r, c.baseline.seed)
        assert len(base) > 400
        assert {e.family for e in base} == {"a", "b"} and {e.options for e in base} > {""}
        for a in c.alternatives:
            assert orders_created(a.alternative.scenario, r, c.baseline.seed) == base, a.label
    other_replication = orders_created(c.scenario, 2, c.baseline.seed)
    assert [e.time for e in other_replication] != [e.time for e in base]  # replications differ...
    for a in c.alternatives:  # ...but each is the same in every alternative
        for b, o in zip(c.baseline.runs, a.result.runs, strict=True):
            assert o["line.orders_created"] == b["line.orders_created"]


def test_comparison_runs_are_the_replications_of_each_scenario() -> None:
    c = comparison()
    assert c.baseline.replications == 6
    assert c.baseline.runs[3] == run_replication(c.scenario, 3, c.baseline.seed)
    cnc = alt(c, "cnc")
    assert cnc.result.replications == 6
    assert cnc.result.runs[5] == run_replication(cnc.alternative.scenario, 5, c.baseline.seed)


def test_seed_and_replications_can_be_overridden() -> None:
    c = run_comparison(scenario(), ["tweak"], replications=2, seed=99, jobs=1)
    assert (c.baseline.seed, c.baseline.replications, alt(c, "tweak").result.replications) == (99, 2, 2)
    assert c.baseline.runs[1] == run_replication(scenario(), 1, 99)
    assert c.baseline.runs[1] != comparison().baseline.runs[1]
    doc = c.to_json()
    assert (doc["seed"], doc["replications"]) == (99, 2)


# --- paired deltas -----------------------------------------------------------------------------------------
def test_paired_delta_is_the_difference_of_the_means() -> None:
    c = comparison()
    base = c.baseline.summary()
    checked = 0
    for a in c.alternatives:
        mine = a.result.summary()
        assert set(a.deltas) == set(base)
        for name, delta in a.deltas.items():
            if base[name].n == mine[name].n == 6:
                assert delta.n == 6
                assert delta.mean == pytest.approx(mine[name].mean - base[name].mean, rel=1e-12, abs=1e-12), name
                checked += 1
    assert checked > 100


def test_paired_deltas_pair_replications_and_skip_undefined_ones() -> None:
    base: list[Kpis] = [{"x": 1.0, "y": None}, {"x": None, "y": 2.0}, {"x": 3.0, "y": 4.0}]
    other: list[Kpis] = [{"x": 2.5, "y": 1.0}, {"x": 5.0, "y": None}, {"x": 6.0, "y": 4.5}]
    d = paired_deltas(base, other)
    assert (d["x"].mean, d["x"].n) == (pytest.approx(2.25), 2)  # (1.5 + 3) / 2: replication 1 has no pair
    assert (d["y"].mean, d["y"].n, d["y"].half_width) == (0.5, 1, None)
    with pytest.raises(ValueError):
        paired_deltas(base, other[:2])


def test_the_paired_ci_is_much_narrower_than_the_unpaired_one_for_a_small_effect() -> None:
    """s2 4.5 → 4.3 min per unit: common random numbers show what independent runs would hide."""
    c = comparison()
    tweak = alt(c, "tweak")
    base, mine = c.baseline.summary(), tweak.result.summary()
    for name in ("stations.s2.utilisation", "line.lead_time_mean_h", "line.wip_mean"):
        paired = tweak.deltas[name]
        assert paired.half_width is not None and base[name].half_width is not None
        unpaired = math.hypot(base[name].half_width, mine[name].half_width or 0.0)
        assert paired.half_width < 0.5 * unpaired, name
    utilisation = tweak.deltas["stations.s2.utilisation"]
    assert utilisation.high is not None and utilisation.high < 0  # the small effect is clear when paired...
    unpaired = math.hypot(
        base["stations.s2.utilisation"].half_width or 0, mine["stations.s2.utilisation"].half_width or 0
    )
    assert abs(utilisation.mean or 0) < unpaired  # ...and would not be without pairing


# --- the business case -------------------------------------------------------------------------------------
def public_money_by_hand(eligible: float) -> tuple[float, list[float]]:
    grant = min(0.4 * eligible, 30_000) if eligible >= 5_000 else 0.0
    credit = 0.3 * eligible / 3
    used, carried = [], 0.0
    for year in range(1, 7):
        available = carried + (credit if year <= 3 else 0.0)
        use = min(available, 6_000)
        carried = available - use
        if year > 3 and use == 0:
            break
        used.append(use)
    return grant, used


@pytest.mark.parametrize("label", ["tweak", "cnc", "pdm", "price"])
def test_funding_adds_exactly_the_discounted_public_money(label: str) -> None:
    c = comparison()
    a = alt(c, label)
    eligible = {"tweak": 8_000, "cnc": 120_000, "pdm": 0, "price": 2_000}[label]
    assert a.alternative.grant_eligible_cost == eligible
    grant, credits = public_money_by_hand(eligible)
    assert a.case is not None
    assert a.case.grant == pytest.approx(grant)
    assert a.case.tax_credits == pytest.approx(credits)
    public = grant + sum(credits)
    assert a.case.public_money == pytest.approx(public)
    years = 3  # the horizon (3) is shorter than the useful life (5): later credits fall outside the appraisal
    discounted = grant + sum(credit / 1.08**t for t, credit in enumerate(credits[:years], start=1))
    per_rep = cases(c, label)
    for case in per_rep:
        assert case.with_funding.npv - case.without.npv == pytest.approx(discounted, abs=1e-6)
        assert case.with_funding.cash_flows[0] - case.without.cash_flows[0] == pytest.approx(grant)
    figures = a.case.figures
    npv_without = figures["npv_without_funding"].mean
    npv_with = figures["npv_with_funding"].mean
    assert npv_without is not None and npv_with is not None
    assert npv_without == pytest.approx(sum(x.without.npv for x in per_rep) / 6)
    assert npv_with - npv_without == pytest.approx(discounted, abs=1e-6)
    per_euro = figures["npv_per_public_euro"]
    if public > 0:
        assert per_euro.mean == pytest.approx(npv_without / public)
        assert per_euro.n == 6
    else:
        assert per_euro.mean is None and per_euro.n == 0
    share = a.case.funding_decisive_share
    assert 0.0 <= share <= 1.0
    assert share == sum(x.without.npv < 0 <= x.with_funding.npv for x in per_rep) / 6


def test_public_money_of_a_large_project_is_capped_and_partly_carried_beyond_the_horizon() -> None:
    grant, credits = public_money_by_hand(120_000)
    assert grant == 30_000  # 40 % would be 48 000
    assert credits == [6_000] * 6  # 36 000 at 6000 a year: three years late
    a = alt(comparison(), "cnc")
    assert a.case is not None
    assert a.case.tax_credits == credits
    flows = cases(comparison(), "cnc")[0]
    assert len(flows.with_funding.cash_flows) == 4  # year 0 and three years


def test_without_eligible_cost_funding_changes_nothing() -> None:
    for case in cases(comparison(), "pdm"):
        assert case.with_funding == case.without


def test_the_yearly_benefit_is_the_scaled_change_of_the_contribution() -> None:
    c = comparison()
    econ = c.scenario.economics
    price = alt(c, "price")
    for base, other, case in zip(c.baseline.runs, price.result.runs, cases(c, "price"), strict=True):
        hours = base["line.observed_hours"]
        assert hours == pytest.approx(44.0)
        assert case.annual_benefit == pytest.approx(annual_contribution(other, econ) - annual_contribution(base, econ))
        # only the price of b changed, by 5 EUR per unit of b sold
        units_b = (other["line.revenue"] - base["line.revenue"]) / 5.0  # type: ignore[operator]
        assert units_b == pytest.approx(round(units_b)) and units_b > 0
        assert case.annual_benefit == pytest.approx(5.0 * units_b * 8760 / hours)
        assert case.without.cash_flows[1:] == pytest.approx((case.annual_benefit,) * 3)
    assert price.case is not None
    assert price.case.funding_decisive_share == 0.0  # it pays without any funding


def test_the_installation_downtime_costs_its_hours_of_baseline_contribution() -> None:
    c = comparison()
    econ = c.scenario.economics
    for base, case in zip(c.baseline.runs, cases(c, "cnc"), strict=True):
        per_hour = window_contribution(base, econ) / base["line.working_hours"]  # type: ignore[operator]
        assert per_hour > 0
        assert case.installation_loss == pytest.approx(16 * per_hour)
        assert case.without.cash_flows[1] == pytest.approx(case.annual_benefit - 5_000 - case.installation_loss)
        assert case.without.cash_flows[0] == -120_000


@pytest.mark.parametrize(
    ("funding", "npv_with", "public"),
    [
        # 8000 grant, then 1000 tax credit in each of three years
        ({"grant": {"share": 0.8}, "tax_credit": {"share": 0.3, "years": 3}}, None, 11_000),
        # break-even: a 100 % grant makes the NPV exactly 0, which counts as worth doing (NPV >= 0)
        ({"grant": {"share": 1.0}}, 0.0, 10_000),
    ],
    ids=["grant and tax credit", "break-even"],
)
def test_funding_can_be_decisive(funding: dict[str, Any], npv_with: float | None, public: float) -> None:
    """An investment with no benefit loses its cost; enough public money turns its NPV non-negative."""
    sc = parse_scenario(
        tandem_yaml(
            [exponential(4)],
            rate_per_hour=8,
            horizon_hours=12,
            replications=3,
            economics={"discount_rate": 0.08, "horizon_years": 5},
            funding=funding,
            investments=[inv("nothing", {"lever": "set", "path": "stations.s1.machines", "value": 1})],
        )
    )
    c = run_comparison(sc, jobs=1)
    a = alt(c, "nothing")
    assert a.case is not None
    figures = a.case.figures
    assert figures["annual_benefit"].mean == 0
    assert figures["npv_without_funding"].mean == pytest.approx(-10_000)
    if npv_with is None:
        npv_with = -2_000 + sum(1_000 / 1.08**t for t in (1, 2, 3))
        assert npv_with > 0
    assert figures["npv_with_funding"].mean == pytest.approx(npv_with, abs=1e-9)
    assert a.case.public_money == pytest.approx(public)
    assert a.case.funding_decisive_share == 1.0
    assert figures["npv_per_public_euro"].mean == pytest.approx(-10_000 / public)


# --- JSON ----------------------------------------------------------------------------------------------------
def test_to_json_has_the_documented_shape_and_is_serialisable() -> None:
    c = comparison()
    doc = c.to_json()
    assert doc["format"] == "simline.compare/1"
    assert (doc["seed"], doc["replications"], doc["horizon_hours"], doc["warmup_hours"]) == (11, 6, 48, 4)
    assert doc["economics"]["horizon_years"] == 3
    assert doc["funding"]["grant"]["share"] == 0.4
    base_kpis = doc["baseline"]["kpis"]
    assert base_kpis["line.throughput_per_hour"]["mean"] == c.baseline.summary()["line.throughput_per_hour"].mean
    assert set(base_kpis["line.throughput_per_hour"]) == {"mean", "ci95", "half_width", "sd", "n"}
    assert doc["baseline"]["bottleneck"] == "s2"
    assert [a["name"] for a in doc["alternatives"]] == ["tweak", "cnc", "pdm", "price"]
    for entry, a in zip(doc["alternatives"], c.alternatives, strict=True):
        assert entry["investments"] == [entry["name"]]
        assert entry["capex"] == a.alternative.capex
        assert set(entry["deltas"]) == set(base_kpis) == set(entry["kpis"])
        delta = entry["deltas"]["line.lead_time_mean_h"]
        assert delta["mean"] == a.deltas["line.lead_time_mean_h"].mean
        assert delta["ci95"] == [a.deltas["line.lead_time_mean_h"].low, a.deltas["line.lead_time_mean_h"].high]
        case = entry["business_case"]
        assert set(case) >= {
            "figures",
            "grant",
            "tax_credits",
            "public_money",
            "cash_flows_without_funding",
            "cash_flows_with_funding",
            "funding_decisive_share",
        }
        assert set(case["figures"]) >= {
            "annual_benefit",
            "installation_loss",
            "npv_without_funding",
            "npv_with_funding",
            "irr_without_funding",
            "irr_with_funding",
            "payback_years_without_funding",
            "discounted_payback_years_with_funding",
            "npv_per_public_euro",
        }
        assert len(case["cash_flows_with_funding"]) == 4
    text = json.dumps(nan_to_none(doc), allow_nan=False)
    assert json.loads(text)["alternatives"][0]["name"] == "tweak"


# --- the command line ------------------------------------------------------------------------------------------
def _command() -> list[str]:
    exe = shutil.which("simline")
    return [exe] if exe is not None else [sys.executable, "-c", "from simline.cli import main; main()"]


def simline(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [*_command(), *map(str, args)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False
    )


CLI_YAML = """\
name: cli line
products: [{family: a, price: 30, material_cost: 10}]
orders: {kind: poisson, rate_per_hour: 6}
stations:
  - id: press
    processing: {base: {kind: exponential, mean: 6}}
    failures: {time_between: {kind: exponential, mean: 240}, repair_time: {kind: fixed, value: 30}}
routing: [{station: press}]
experiment: {horizon_hours: 500, replications: 5, seed: 4}
funding: {grant: {share: 0.5}}
"""
CLI_INVESTMENTS = """\
investments:
  - name: pdm
    capex: 6000
    changes: [{lever: predictive_maintenance, detection_share: 0.9, maintenance_time: {kind: fixed, value: 5}}]
  - name: press2
    capex: 90000
    opex_per_year: 2000
    changes: [{lever: extra_capacity, station: press}]
"""


@pytest.fixture
def cli_file(tmp_path: Path) -> Path:
    file = tmp_path / "line.yaml"
    file.write_text(CLI_YAML + CLI_INVESTMENTS, encoding="utf-8")
    return file


def test_cli_compare_writes_the_json(cli_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    res = simline("compare", cli_file, "-r", "2", "--horizon-hours", "48", "-q", "--json", out)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""  # quiet
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["format"] == "simline.compare/1"
    assert (doc["replications"], doc["horizon_hours"], doc["seed"]) == (2, 48, 4)
    assert [a["name"] for a in doc["alternatives"]] == ["pdm", "press2"]
    pdm = doc["alternatives"][0]
    assert pdm["deltas"]["stations.press.failures"]["mean"] < 0
    assert pdm["business_case"]["grant"] == 3000
    # the command ran in parallel processes; the same comparison here, in one process, gives the same numbers
    sc = load_scenario(cli_file)
    sc = sc.model_copy(update={"experiment": sc.experiment.model_copy(update={"horizon_hours": 48.0})})
    assert doc == json.loads(json.dumps(nan_to_none(run_comparison(sc, replications=2, jobs=1).to_json())))


def test_cli_compare_a_combination(cli_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    res = simline("compare", cli_file, "-r", "2", "--horizon-hours", "48", "-j", "1", "-i", "pdm+press2", "--json", out)
    assert res.returncode == 0, res.stderr
    assert "pdm+press2" in res.stdout  # the tables
    assert str(out) in res.stdout.replace("\n", "")
    doc = json.loads(out.read_text(encoding="utf-8"))
    (combo,) = doc["alternatives"]
    assert (combo["name"], combo["investments"]) == ("pdm+press2", ["pdm", "press2"])
    assert (combo["capex"], combo["opex_per_year"]) == (96_000, 2_000)
    assert combo["kpis"]["stations.press.maintenances"]["mean"] > 0  # PdM...
    assert combo["deltas"]["stations.press.utilisation"]["mean"] < 0  # ...and the second press


def test_cli_compare_without_investments_exits_2(tmp_path: Path) -> None:
    file = tmp_path / "plain.yaml"
    file.write_text(CLI_YAML, encoding="utf-8")
    res = simline("compare", file, "-r", "2", "--horizon-hours", "10", "-q")
    assert res.returncode == 2
    assert "no investments to compare" in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_compare_unknown_investment_exits_2_naming_the_known_ones(cli_file: Path) -> None:
    res = simline("compare", cli_file, "-r", "2", "--horizon-hours", "10", "-q", "-i", "pdm+robot")
    assert res.returncode == 2
    assert "'robot' is not an investment" in res.stderr
    assert "known: pdm, press2" in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_compare_help_lists_the_options() -> None:
    res = simline("compare", "--help")
    assert res.returncode == 0, res.stderr
    for option in (
        "--investment",
        "-i",
        "--replications",
        "-r",
        "--seed",
        "--horizon-hours",
        "--warmup-hours",
        "--jobs",
        "--json",
        "--report",
        "--quiet",
    ):
        assert option in res.stdout, option


def test_tax_credit_eligibility_is_separate_from_the_grant_and_residual_value_ends_the_cash_flows() -> None:
    from simline.overlays import alternative

    base = scenario()
    data = base.model_dump(mode="python")
    data["investments"].append(
        inv(
            "machine",
            {"lever": "extra_capacity", "station": "s2"},
            capex=20_000,
            grant_eligible=False,
            tax_credit_eligible=True,
            residual_value=4_000,
        )
    )
    sc = scenario_from_data(data)
    a = alternative(sc, "machine")
    assert a.grant_eligible_cost == 0
    assert a.tax_credit_eligible_cost == 20_000
    grant, credits = public_money(a, sc.funding)
    assert grant == 0
    assert sum(credits) == pytest.approx(0.3 * 20_000)
    run = run_replication(sc, 0)
    case = yearly_cases(run, run, a, sc.economics, sc.funding)
    years = len(case.without.cash_flows) - 1
    assert case.without.cash_flows[years] == pytest.approx(-a.opex_per_year + 4_000)
    assert case.with_funding.cash_flows[0] == pytest.approx(-20_000)
