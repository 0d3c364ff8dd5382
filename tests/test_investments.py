"""Investments as overlays: each lever changes the line causally and moves the KPI it must.

Every test builds a small scenario with :func:`helpers.tandem_yaml`, applies investments with
:func:`simline.overlays.alternative` or runs :func:`simline.compare.run_comparison` (common random numbers), and
checks the effect: exactly where the model is deterministic, by a paired 95 % confidence interval that excludes 0
where the effect is systematic.
"""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import exponential
from helpers import tandem_yaml as _tandem_yaml

from simline import Line, ScenarioError, compute_kpis, parse_scenario
from simline.business import annual_contribution, yearly_cases
from simline.compare import AlternativeResult, Comparison, run_comparison
from simline.distributions import Exponential, Fixed, mean_of
from simline.events import Breakdown, Event, MachineState, Repaired, StateChanged
from simline.experiment import Summary
from simline.kpis import Kpis
from simline.overlays import alternative
from simline.scenario import PoolTransport, Scenario, load_scenario


# --- helpers -----------------------------------------------------------------------------------------------
def tandem_yaml(processing: list[Any], **kwargs: Any) -> str:
    """:func:`helpers.tandem_yaml` on unshared copies of the data (YAML anchors for shared parts are refused)."""
    unshared = json.loads(json.dumps({"processing": processing, **kwargs}))
    return _tandem_yaml(**unshared)


def fixed(value: float) -> dict[str, Any]:
    """A fixed duration (minutes) as scenario data."""
    return {"kind": "fixed", "value": value}


def inv(name: str, *changes: dict[str, Any], capex: float = 10_000.0, **extra: Any) -> dict[str, Any]:
    """An investment as scenario data."""
    return {"name": name, "capex": capex, "changes": list(changes), **extra}


def compare(sc: Scenario, *specs: str) -> Comparison:
    """Baseline against ``specs`` (default: every investment), in this process."""
    return run_comparison(sc, list(specs) or None, jobs=1)


def alt(c: Comparison, label: str) -> AlternativeResult:
    (found,) = [a for a in c.alternatives if a.label == label]
    return found


def below_zero(d: Summary) -> bool:
    """The paired 95 % CI lies entirely below 0."""
    return d.high is not None and d.high < 0


def above_zero(d: Summary) -> bool:
    """The paired 95 % CI lies entirely above 0."""
    return d.low is not None and d.low > 0


def kpi(k: Kpis, name: str) -> float:
    value = k[name]
    assert value is not None, f"{name} is undefined"
    return value


def per_rep(c: Comparison, label: str, name: str) -> list[tuple[float, float]]:
    """(baseline, alternative) value of a KPI in each replication."""
    return [(kpi(b, name), kpi(a, name)) for b, a in zip(c.baseline.runs, alt(c, label).result.runs, strict=True)]


TWO_FAMILIES = [{"family": "a", "share": 0.5, "price": 10.0}, {"family": "b", "share": 0.5, "price": 12.0}]

FAILING = {
    "failures": {"time_between": exponential(180), "repair_time": fixed(20), "response_time": fixed(30)},
    "power_kw": {"processing": 5, "idle": 2, "down": 0.5},
}
PDM = {"lever": "predictive_maintenance", "detection_share": 0.8, "maintenance_time": fixed(10)}


@functools.cache
def failure_line() -> Scenario:
    """s1 breaks down (response 30 min + repair 20 min) → s2; PdM, PdM catching everything, andon."""
    return parse_scenario(
        tandem_yaml(
            [exponential(4), exponential(3)],
            rate_per_hour=10,
            horizon_hours=48,
            replications=6,
            seed=3,
            station_extra=[FAILING, {}],
            investments=[
                inv("pdm", PDM),
                inv("pdm_all", {**PDM, "detection_share": 1.0}),
                inv("andon", {"lever": "andon", "response_time_factor": 0.25}),
            ],
        )
    )


@functools.cache
def failure_comparison() -> Comparison:
    return compare(failure_line())


def rich_yaml(change: dict[str, Any]) -> str:
    """Two families, setups, failures, defects and a final inspection, carriers and power: most KPIs vary."""
    return tandem_yaml(
        [exponential(3), exponential(4), exponential(2)],
        rate_per_hour=9,
        horizon_hours=36,
        warmup_hours=4,
        replications=3,
        seed=17,
        products=TWO_FAMILIES,
        transport={"kind": "pool", "size": 2, "time": fixed(1)},
        maintenance={"technicians": 1},
        station_extra=[
            {
                "setup": {"default": fixed(5), "matrix": {"a": {"b": fixed(8)}}},
                "quality": {"defect_probability": 0.1},
                "power_kw": {"processing": 4, "idle": 1, "setup": 2},
            },
            {
                "failures": {
                    "time_between": exponential(200),
                    "repair_time": exponential(15),
                    "response_time": fixed(5),
                    "needs_technician": True,
                },
                "operators": 1,
                "power_kw": {"processing": 6, "idle": 2},
            },
            {"inspection": {"detection_rate": 0.9}, "operators": 1},
        ],
        economics={"labour_cost_per_hour": 35.0, "lateness_penalty_per_order": 20.0},
        investments=[inv("noop", change)],
    )


# --- an investment that changes nothing ----------------------------------------------------------------------
NO_OPS = {
    "set machines to its value": {"lever": "set", "path": "stations.s1.machines", "value": 1},
    "set a price to its value": {"lever": "set", "path": "products.b.price", "value": 12.0},
    "set a distribution to itself": {"lever": "set", "path": "stations.s2.processing.base", "value": exponential(4)},
    "andon with factor 1": {"lever": "andon", "response_time_factor": 1.0},
    "SMED with factor 1": {"lever": "quick_changeover", "setup_factor": 1.0},
}


@pytest.mark.parametrize("change", NO_OPS.values(), ids=NO_OPS.keys())
def test_an_investment_that_changes_nothing_gives_exactly_zero_deltas(change: dict[str, Any]) -> None:
    sc = parse_scenario(rich_yaml(change))
    c = compare(sc)
    noop = alt(c, "noop")
    assert noop.alternative.scenario == sc
    assert c.baseline.runs[0]["stations.s2.failures"], "the scenario should exercise failures"
    assert c.baseline.runs[0]["stations.s1.setups"], "the scenario should exercise setups"
    for base, other in zip(c.baseline.runs, noop.result.runs, strict=True):
        assert other == base  # every KPI, bit for bit: common random numbers
    for name, delta in noop.deltas.items():
        if delta.n:
            assert delta.mean == 0.0, name
            assert delta.sd == 0.0, name
    econ = sc.economics
    for base, other in zip(c.baseline.runs, noop.result.runs, strict=True):
        assert annual_contribution(base, econ) != 0.0
        case = yearly_cases(base, other, noop.alternative, econ, sc.funding)
        assert case.annual_benefit == 0.0
    assert noop.case is not None
    benefit = noop.case.figures["annual_benefit"]
    assert (benefit.mean, benefit.sd, benefit.n) == (0.0, 0.0, 3)


# --- each lever moves its KPI -------------------------------------------------------------------------------
def test_predictive_maintenance_replaces_breakdowns_by_planned_stops() -> None:
    c = failure_comparison()
    pdm = alt(c, "pdm")
    d = pdm.deltas
    assert below_zero(d["stations.s1.failures"])
    assert above_zero(d["stations.s1.maintenances"])
    assert below_zero(d["stations.s1.state_share.down"])
    assert above_zero(d["stations.s1.state_share.maintenance"])
    assert above_zero(d["stations.s1.availability"])
    assert all(b["stations.s1.maintenances"] == 0 for b in c.baseline.runs)

    # down time: fewer breakdowns, each as long as before (response 30 + repair 20 min)
    def down_hours(runs: list[Kpis]) -> float:
        return sum(kpi(k, "stations.s1.state_share.down") * kpi(k, "line.observed_hours") for k in runs)

    assert down_hours(pdm.result.runs) < 0.5 * down_hours(c.baseline.runs)
    for k in (*c.baseline.runs, *pdm.result.runs):
        if k["stations.s1.mttr_h"] is not None:  # (undefined if the only breakdown is not repaired yet)
            assert kpi(k, "stations.s1.mttr_h") == pytest.approx(50 / 60)
    # the monitored station is the only one with failures; the other is unaffected in kind
    assert all(k["stations.s2.maintenances"] == 0 for k in pdm.result.runs)
    spec = pdm.alternative.scenario.station("s1").failures
    assert spec is not None and spec.predictive is not None
    assert spec.predictive.detection_share == 0.8
    assert failure_line().station("s1").failures.predictive is None  # type: ignore[union-attr]


def test_predictive_maintenance_detecting_everything_leaves_no_breakdown() -> None:
    c = failure_comparison()
    full = alt(c, "pdm_all")
    for base, other in zip(c.baseline.runs, full.result.runs, strict=True):
        assert kpi(base, "stations.s1.failures") > 0
        assert other["stations.s1.failures"] == 0
        assert other["stations.s1.mttr_h"] is None
        assert other["stations.s1.state_share.down"] == 0
        assert kpi(other, "stations.s1.maintenances") > 0


def test_andon_shortens_the_response_and_so_the_mttr() -> None:
    c = failure_comparison()
    andon = alt(c, "andon")
    assert below_zero(andon.deltas["stations.s1.mttr_h"])
    assert below_zero(andon.deltas["stations.s1.state_share.down"])
    for base, other in per_rep(c, "andon", "stations.s1.mttr_h"):
        assert base == pytest.approx((30 + 20) / 60)
        assert other == pytest.approx((30 * 0.25 + 20) / 60)
    spec = andon.alternative.scenario.station("s1").failures
    assert spec is not None and spec.response_time == Fixed(kind="fixed", value=7.5)


@functools.cache
def setup_comparison() -> Comparison:
    """One station, two families, 10 min changeovers, busy enough for a queue; SMED and same-setup sequencing."""
    sc = parse_scenario(
        tandem_yaml(
            [exponential(3)],
            rate_per_hour=6.5,
            horizon_hours=48,
            warmup_hours=4,
            replications=5,
            seed=5,
            products=TWO_FAMILIES,
            station_extra=[{"setup": {"default": fixed(10)}}],
            investments=[
                inv("smed", {"lever": "quick_changeover", "setup_factor": 0.3}),
                inv("same", {"lever": "mes_sequencing", "rule": "same_setup"}),
            ],
        )
    )
    return compare(sc)


def test_quick_changeover_lowers_the_setup_share() -> None:
    c = setup_comparison()
    smed = alt(c, "smed")
    assert below_zero(smed.deltas["stations.s1.state_share.setup"])
    spec = smed.alternative.scenario.station("s1").setup
    assert spec is not None and spec.default == Fixed(kind="fixed", value=3.0)
    # each setup now takes 3 min instead of 10 (give or take one under way at the end of the warm-up or the run)
    for runs, minutes in ((c.baseline.runs, 10.0), (smed.result.runs, 3.0)):
        for k in runs:
            setups = kpi(k, "stations.s1.setups")
            booked = kpi(k, "stations.s1.state_share.setup") * kpi(k, "line.observed_hours") * 60
            assert setups > 0
            assert minutes * (setups - 1) - 1e-6 <= booked <= minutes * (setups + 1) + 1e-6


def test_same_setup_sequencing_needs_fewer_setups_than_fifo() -> None:
    c = setup_comparison()
    same = alt(c, "same")
    assert same.alternative.scenario.station("s1").dispatch == "same_setup"
    assert c.scenario.station("s1").dispatch == "fifo"
    assert below_zero(same.deltas["stations.s1.setups"])
    assert below_zero(same.deltas["stations.s1.state_share.setup"])
    for base, other in per_rep(c, "same", "stations.s1.setups"):
        assert other < base


def test_inline_inspection_catches_defects_before_downstream_work() -> None:
    """s1 makes 20 % defects, found by the final inspection at s3; inline inspection at s1 scraps them at once."""
    sc = parse_scenario(
        tandem_yaml(
            [exponential(3), exponential(5), exponential(2)],
            rate_per_hour=8,
            horizon_hours=48,
            replications=5,
            seed=8,
            station_extra=[
                {"quality": {"defect_probability": 0.2}},
                {"power_kw": {"processing": 6, "idle": 1}},
                {"inspection": {"detection_rate": 1.0}},
            ],
            investments=[inv("aoi", {"lever": "inline_inspection", "station": "s1", "detection_rate": 1.0})],
        )
    )
    c = compare(sc)
    aoi = alt(c, "aoi")
    inspection = aoi.alternative.scenario.station("s1").inspection
    assert inspection is not None and inspection.detection_rate == 1.0 and inspection.on_reject == "scrap"
    assert sc.station("s1").inspection is None
    for base, other in zip(c.baseline.runs, aoi.result.runs, strict=True):
        assert base["stations.s1.rejected"] == 0
        assert kpi(base, "stations.s3.rejected") > 0
        assert kpi(other, "stations.s1.rejected") > 0  # caught where they are made...
        assert other["stations.s3.rejected"] == 0  # ...so none is left for the final inspection
        assert other["line.escaped_defect_rate"] == 0
    d = aoi.deltas
    assert below_zero(d["stations.s2.processed"])  # no more processing of parts that are already bad
    assert below_zero(d["stations.s2.energy_kwh"])
    assert below_zero(d["stations.s3.processed"])


def test_automated_transport_replaces_the_staffed_carriers() -> None:
    sc = parse_scenario(
        tandem_yaml(
            [exponential(3), exponential(4), exponential(2)],
            rate_per_hour=8,
            horizon_hours=24,
            replications=3,
            seed=4,
            transport={"kind": "pool", "name": "forklift drivers", "size": 2, "time": fixed(2)},
            station_extra=[{"operators": 1}, {"operators": 2}, {}],
            investments=[inv("agv", {"lever": "automated_transport", "size": 3, "time": fixed(1)})],
        )
    )
    c = compare(sc)
    agv = alt(c, "agv")
    transport = agv.alternative.scenario.transport
    assert isinstance(transport, PoolTransport)
    assert (transport.name, transport.size, transport.time, transport.staffed) == ("AGVs", 3, Fixed(value=1.0), False)
    for base, other in zip(c.baseline.runs, agv.result.runs, strict=True):
        hours = kpi(base, "line.working_hours")
        assert kpi(base, "line.staffed_hours") == pytest.approx(5 * hours)  # 3 operators + 2 drivers
        assert kpi(other, "line.staffed_hours") == pytest.approx(3 * hours)  # the AGVs need nobody
    assert below_zero(agv.deltas["line.staffed_hours"])


def test_automated_transport_moves_take_the_time_set() -> None:
    """One order through three stations with fixed times: lead time = processing + two moves, exactly."""
    sc = parse_scenario(
        tandem_yaml(
            [fixed(3), fixed(4), fixed(5)],
            rate_per_hour=1,
            horizon_hours=2,
            replications=2,
            orders={"kind": "order_book", "rows": [{"release_hour": 0, "family": "a"}]},
            transport={"kind": "pool", "size": 1, "time": fixed(2.5)},
            economics={"labour_cost_per_hour": 40.0},
            investments=[inv("agv", {"lever": "automated_transport", "size": 1, "time": fixed(0.5)})],
        )
    )
    c = compare(sc)
    agv = alt(c, "agv")
    for base, other in zip(c.baseline.runs, agv.result.runs, strict=True):
        assert kpi(base, "line.lead_time_mean_h") * 60 == pytest.approx(3 + 4 + 5 + 2 * 2.5)
        assert kpi(other, "line.lead_time_mean_h") * 60 == pytest.approx(3 + 4 + 5 + 2 * 0.5)
    # the only money that changes is the driver's wage: one person, 40 EUR/h, all year round
    assert agv.case is not None
    assert agv.case.figures["annual_benefit"].mean == pytest.approx(40.0 * 8760)


def test_edd_sequencing_delivers_on_time_where_fifo_does_not() -> None:
    """Ten one-hour orders released together, listed against their due dates: FIFO is late on four, EDD on none.

    The first order (due 1.5 h) is taken at once under either rule; FIFO then works through due dates 10.5,
    9.5, ... and finishes the orders due 5.5, 4.5, 3.5, 2.5 h at 7, 8, 9, 10 h: 1.5 + 3.5 + 5.5 + 7.5 = 18 h late.
    """
    dues = [1.5, 10.5, 9.5, 8.5, 7.5, 6.5, 5.5, 4.5, 3.5, 2.5]
    rows = [{"release_hour": 0, "due_hour": due, "family": "a", "order_id": f"o{i}"} for i, due in enumerate(dues)]
    sc = parse_scenario(
        tandem_yaml(
            [fixed(60)],
            rate_per_hour=1,
            horizon_hours=12,
            replications=2,
            orders={"kind": "order_book", "rows": rows},
            economics={"lateness_penalty_per_order": 100.0, "hours_per_year": 12.0},
            investments=[inv("mes", {"lever": "mes_sequencing", "rule": "edd"})],
        )
    )
    c = compare(sc)
    mes = alt(c, "mes")
    assert mes.alternative.scenario.station("s1").dispatch == "edd"
    for base, other in zip(c.baseline.runs, mes.result.runs, strict=True):
        assert base["line.orders_completed"] == other["line.orders_completed"] == 10
        assert (base["line.on_time_delivery"], base["line.orders_late"]) == (0.6, 4)
        assert kpi(base, "line.tardiness_h") == pytest.approx(18.0)
        assert (other["line.on_time_delivery"], other["line.orders_late"], other["line.tardiness_h"]) == (1.0, 0, 0)
    assert above_zero(mes.deltas["line.on_time_delivery"])
    assert below_zero(mes.deltas["line.tardiness_h"])
    assert mes.case is not None
    assert mes.case.figures["annual_benefit"].mean == pytest.approx(4 * 100.0)  # four penalties saved per "year"


def test_energy_management_saves_energy_without_touching_the_flow() -> None:
    sc = parse_scenario(
        tandem_yaml(
            [exponential(4), exponential(3)],
            rate_per_hour=6,
            horizon_hours=48,
            replications=4,
            seed=6,
            station_extra=[
                {"power_kw": {"processing": 5, "idle": 2}},
                {"power_kw": {"processing": 3, "idle": 1.5}},
            ],
            investments=[
                inv(
                    "ems",
                    {"lever": "energy_management", "standby_after_minutes": 5, "standby_power_share": 0.1},
                )
            ],
        )
    )
    c = compare(sc)
    ems = alt(c, "ems")
    power = ems.alternative.scenario.station("s1").power_kw
    assert (power.standby, power.standby_after_minutes) == (pytest.approx(0.2), 5)
    assert below_zero(ems.deltas["line.energy_kwh"])
    assert below_zero(ems.deltas["stations.s1.energy_kwh"])
    assert below_zero(ems.deltas["stations.s1.state_share.idle"])
    for base, other in zip(c.baseline.runs, ems.result.runs, strict=True):
        assert base["stations.s1.state_share.standby"] == 0
        assert kpi(other, "stations.s1.state_share.standby") > 0
        assert kpi(other, "stations.s2.state_share.standby") > 0
        for name in (
            "line.throughput_per_hour",
            "line.units_good",
            "line.lead_time_mean_h",
            "stations.s1.processed",
            "stations.s2.processed",
        ):
            assert other[name] == base[name], name  # standby wakes up at once: the flow is identical
        for name in ("stations.s1.utilisation", "stations.s2.active_share", "stations.s1.state_share.processing"):
            assert other[name] == pytest.approx(base[name], rel=1e-12), name
        # the idle time saved is spent in standby, at a tenth of the idle power
        for sid, idle_kw in (("s1", 2.0), ("s2", 1.5)):
            minutes = kpi(base, "line.observed_hours") * 60
            standby = kpi(other, f"stations.{sid}.state_share.standby") * minutes
            saved = kpi(base, f"stations.{sid}.energy_kwh") - kpi(other, f"stations.{sid}.energy_kwh")
            assert saved == pytest.approx(standby * idle_kw * 0.9 / 60, rel=1e-9)


@functools.cache
def capacity_comparison() -> Comparison:
    sc = parse_scenario(
        tandem_yaml(
            [exponential(3), exponential(6.5), exponential(2)],
            rate_per_hour=8,
            horizon_hours=48,
            warmup_hours=4,
            replications=4,
            seed=9,
            investments=[
                inv("cnc2", {"lever": "extra_capacity", "station": "s2"}),
                inv("fast", {"lever": "set", "path": "stations.s1.processing.base", "value": fixed(1.5)}),
                inv("faster", {"lever": "set", "path": "stations.s1.processing.base.mean", "value": 1.5}),
            ],
        )
    )
    return compare(sc)


def test_extra_capacity_adds_a_machine_and_lowers_its_utilisation() -> None:
    c = capacity_comparison()
    cnc = alt(c, "cnc2")
    assert c.scenario.station("s2").machines == 1
    assert cnc.alternative.scenario.station("s2").machines == 2
    assert below_zero(cnc.deltas["stations.s2.utilisation"])
    assert (cnc.deltas["stations.s2.wip_mean"].mean or 0) < 0  # (queues at 87 % load vary too much for a CI)
    assert (cnc.deltas["line.lead_time_mean_h"].mean or 0) < 0
    for base, other in per_rep(c, "cnc2", "stations.s2.utilisation"):
        assert other < 0.7 * base


@pytest.mark.parametrize(
    ("label", "expected"),
    [("fast", Fixed(kind="fixed", value=1.5)), ("faster", Exponential(kind="exponential", mean=1.5))],
)
def test_set_changes_a_stations_processing_time(label: str, expected: Any) -> None:
    c = capacity_comparison()
    changed = alt(c, label)
    assert c.scenario.station("s1").processing.base == Exponential(kind="exponential", mean=3.0)
    assert changed.alternative.scenario.station("s1").processing.base == expected
    assert changed.alternative.scenario.station("s2") == c.scenario.station("s2")
    assert below_zero(changed.deltas["stations.s1.utilisation"])
    for base, other in per_rep(c, label, "stations.s1.utilisation"):
        assert other == pytest.approx(base / 2, rel=0.25)


# --- overlay errors are caught when the scenario is loaded --------------------------------------------------
BAD_CHANGES = [
    pytest.param(
        {"lever": "andon", "stations": ["s9"], "response_time_factor": 0.5},
        ["'s9' is not a station", "s1, s2"],
        id="unknown station",
    ),
    pytest.param({"lever": "extra_capacity", "station": "s9"}, ["'s9' is not a station"], id="capacity: unknown"),
    pytest.param(
        {"lever": "inline_inspection", "station": "s9", "detection_rate": 0.9},
        ["'s9' is not a station"],
        id="inspection: unknown station",
    ),
    pytest.param({**PDM, "stations": ["s2"]}, ["station 's2' has no failures"], id="PdM without failures"),
    pytest.param(
        {"lever": "andon", "stations": ["s2"], "response_time_factor": 0.5},
        ["station 's2' has no failures"],
        id="andon without failures",
    ),
    pytest.param(
        {"lever": "quick_changeover", "stations": ["s1"], "setup_factor": 0.5},
        ["station 's1' has no setup"],
        id="SMED without setup",
    ),
    pytest.param(
        {"lever": "set", "path": "stations.s9.machines", "value": 2},
        ["stations.s9.machines", "nothing called 's9'"],
        id="set: no such station",
    ),
    pytest.param(
        {"lever": "set", "path": "stations.s1.setup.default", "value": fixed(1)},
        ["'setup' is not set"],
        id="set: no such key on the way",
    ),
    pytest.param(
        {"lever": "set", "path": "stations.s1.machines.x.y", "value": 2},
        ["stations.s1.machines", "is a value, not a mapping"],
        id="set: through a value",
    ),
    pytest.param(
        {"lever": "set", "path": "stations.s1.machines.x.y", "value": 2},
        ["'stations.s1.machines' is a value"],
        id="set: names the value on the way",
    ),
    pytest.param(
        {"lever": "set", "path": "stations.s1", "value": {}},
        ["cannot set 's1' inside a list"],
        id="set: a list item",
    ),
    pytest.param(
        {"lever": "set", "path": "stations.s1.machines.count", "value": 2},
        ["'stations.s1.machines' is a value"],
        id="set: a key of a value",
    ),
]


def bad_yaml(change: dict[str, Any]) -> str:
    """Two investments; the second's second change is ``change``."""
    return tandem_yaml(
        [exponential(3), exponential(2)],
        rate_per_hour=5,
        horizon_hours=10,
        station_extra=[FAILING, {}],
        investments=[
            inv("fine", {"lever": "extra_capacity", "station": "s2"}),
            inv("broken", {"lever": "extra_capacity", "station": "s1"}, change),
        ],
    )


@pytest.mark.parametrize(("change", "says"), BAD_CHANGES)
def test_a_change_that_does_not_fit_is_rejected_at_load_time(change: dict[str, Any], says: list[str]) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(bad_yaml(change))
    (issue,) = err.value.issues
    assert issue.path == "investments[1].changes[1]"
    assert issue.line is not None
    for words in says:
        assert words in issue.message


def test_load_scenario_rejects_a_bad_change_in_a_file(tmp_path: Path) -> None:
    file = tmp_path / "line.yaml"
    file.write_text(bad_yaml({"lever": "quick_changeover", "setup_factor": 0.5, "stations": ["s2"]}), encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(file)
    assert [i.path for i in err.value.issues] == ["investments[1].changes[1]"]
    assert "has no setup" in err.value.issues[0].message
    assert str(file) in str(err.value)


def test_without_a_selection_every_station_with_failures_gets_pdm_and_the_rest_is_left_alone() -> None:
    sc = parse_scenario(bad_yaml(PDM))  # no station list: all stations with failures (only s1)
    changed = alternative(sc, "broken").scenario
    assert changed.station("s1").failures.predictive is not None  # type: ignore[union-attr]
    assert changed.station("s2").failures is None


INVALIDATING = {
    "machines: -1": ({"lever": "set", "path": "stations.s1.machines", "value": -1}, ["stations[0].machines"]),
    "a probability above 1": (
        {"lever": "set", "path": "stations.s2.quality.defect_probability", "value": 1.5},
        ["stations[1].quality.defect_probability"],
    ),
    "an unknown key": ({"lever": "set", "path": "stations.s1.speed", "value": 2}, ["unknown key 'speed'"]),
    "a wrong type": ({"lever": "set", "path": "transport", "value": "by hand"}, ["transport"]),
}


@pytest.mark.parametrize(("change", "says"), INVALIDATING.values(), ids=INVALIDATING.keys())
def test_a_set_that_makes_the_scenario_invalid_is_rejected_at_load_time(
    change: dict[str, Any], says: list[str]
) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(bad_yaml(change))
    (issue,) = err.value.issues
    assert issue.path.startswith("investments[1]")
    assert issue.line is not None
    assert "after applying 'broken'" in issue.message
    for words in says:
        assert words in issue.message


def test_a_set_that_makes_the_scenario_invalid_is_reported_at_its_change() -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(bad_yaml({"lever": "set", "path": "stations.s1.machines", "value": -1}))
    assert [i.path for i in err.value.issues] == ["investments[1].changes[1]"]


def test_duplicate_investment_names_are_rejected() -> None:
    text = tandem_yaml(
        [exponential(3)],
        rate_per_hour=5,
        horizon_hours=10,
        investments=[
            inv("cnc", {"lever": "extra_capacity", "station": "s1"}),
            inv("other", {"lever": "extra_capacity", "station": "s1"}),
            inv("cnc", {"lever": "extra_capacity", "station": "s1", "machines": 2}),
        ],
    )
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text)
    (issue,) = err.value.issues
    assert issue.path == "investments[2].name"
    assert "'cnc'" in issue.message and "twice" in issue.message


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("nope", ["'nope' is not an investment", "known: smed, same"]),
        ("smed+nope", ["'nope' is not an investment"]),
        ("smed+smed", ["names an investment twice"]),
        ("", ["no investment"]),
        (" + ", ["no investment"]),
    ],
)
def test_alternative_rejects_unknown_or_repeated_names(spec: str, says: list[str]) -> None:
    sc = setup_comparison().scenario
    with pytest.raises(ScenarioError) as err:
        alternative(sc, spec)
    message = str(err.value)
    for words in says:
        assert words in message


def test_alternative_names_may_be_spaced() -> None:
    a = alternative(setup_comparison().scenario, " smed + same ")
    assert a.names == ["smed", "same"]
    assert a.label == "smed+same"


# --- combinations ------------------------------------------------------------------------------------------
@functools.cache
def combination_scenario() -> Scenario:
    return parse_scenario(
        tandem_yaml(
            [exponential(3), exponential(6.5)],
            rate_per_hour=7,
            horizon_hours=48,
            warmup_hours=4,
            replications=4,
            seed=12,
            products=TWO_FAMILIES,
            station_extra=[{"setup": {"default": fixed(4)}}, {}],
            investments=[
                inv(
                    "smed",
                    {"lever": "quick_changeover", "setup_factor": 0.25},
                    capex=20_000,
                    opex_per_year=1_000,
                    useful_life_years=8,
                    installation_downtime_hours=4,
                ),
                inv(
                    "cnc",
                    {"lever": "extra_capacity", "station": "s2"},
                    capex=150_000,
                    opex_per_year=6_000,
                    useful_life_years=6,
                    installation_downtime_hours=16,
                    grant_eligible=False,
                ),
                inv("two", {"lever": "set", "path": "stations.s2.machines", "value": 2}, capex=1),
            ],
        )
    )


def test_a_combination_applies_both_changes_and_sums_the_costs() -> None:
    sc = combination_scenario()
    c = compare(sc, "smed", "cnc", "smed+cnc")
    both = alt(c, "smed+cnc")
    a = both.alternative
    assert a.names == ["smed", "cnc"]
    assert (a.capex, a.opex_per_year) == (170_000, 7_000)
    assert a.useful_life_years == 6
    assert a.installation_downtime_hours == 20
    assert a.grant_eligible_cost == 20_000  # the machine is not eligible
    changed = a.scenario
    assert changed.station("s2").machines == 2
    assert changed.station("s1").setup.default == Fixed(value=1.0)  # type: ignore[union-attr]
    assert changed == alternative(sc, "cnc+smed").scenario  # independent changes commute
    d = both.deltas
    assert below_zero(d["stations.s1.state_share.setup"])  # SMED's effect...
    assert below_zero(d["stations.s2.utilisation"])  # ...and the machine's
    # each effect as strong as the investment's own: they act on different stations
    for name, single in (("stations.s1.state_share.setup", "smed"), ("stations.s2.utilisation", "cnc")):
        alone = alt(c, single).deltas[name].mean
        assert alone is not None and d[name].mean == pytest.approx(alone, rel=0.3)


def test_a_combination_applies_its_changes_in_order() -> None:
    sc = combination_scenario()
    assert alternative(sc, "two+cnc").scenario.station("s2").machines == 3  # set to 2, then one more
    assert alternative(sc, "cnc+two").scenario.station("s2").machines == 2  # one more, then set to 2


# --- standby ------------------------------------------------------------------------------------------------
class Recorder:
    """Observer that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def states(self, station: str = "s1", index: int = 0) -> list[tuple[float, MachineState]]:
        return [
            (e.time, e.state)
            for e in self.events
            if isinstance(e, StateChanged) and e.station == station and e.machine == index
        ]


def standby_line(after: float) -> Scenario:
    """One machine, 5 min per unit, orders at 0, 7.5 and 60 min; an investment in energy management ("ems") that
    sends it to standby after ``after`` idle minutes."""
    text = tandem_yaml(
        [fixed(5)],
        rate_per_hour=1,
        horizon_hours=2,
        replications=2,
        orders={
            "kind": "order_book",
            "rows": [{"release_hour": h, "family": "a"} for h in (0, 0.125, 1)],
        },
        station_extra=[{"power_kw": {"processing": 5, "idle": 2}}],
        investments=[
            inv("ems", {"lever": "energy_management", "standby_after_minutes": after, "standby_power_share": 0.2})
        ],
    )
    return parse_scenario(text)


def with_ems(sc: Scenario) -> Scenario:
    return alternative(sc, "ems").scenario


PROC, IDLE, STBY = MachineState.PROCESSING, MachineState.IDLE, MachineState.STANDBY


def test_an_idle_machine_goes_to_standby_after_the_delay_and_wakes_for_the_next_unit() -> None:
    sc = with_ems(standby_line(10))
    rec = Recorder()
    line = Line(sc, 0, observers=[rec])
    line.run()
    # idle 5-7.5 is too short for standby, and its timer (due at 15) must not fire in the idle spell from 12.5
    assert rec.states() == [
        (0, IDLE),
        (0, PROC),
        (5, IDLE),
        (7.5, PROC),
        (12.5, IDLE),
        (22.5, STBY),
        (60, PROC),
        (65, IDLE),
        (75, STBY),
    ]
    k = compute_kpis(line)
    minutes = {"processing": 15.0, "idle": 2.5 + 10 + 10, "standby": 37.5 + 45}
    for state, expected in minutes.items():
        assert kpi(k, f"stations.s1.state_share.{state}") * 120 == pytest.approx(expected)
    assert kpi(k, "stations.s1.energy_kwh") == pytest.approx((15 * 5 + 22.5 * 2 + 82.5 * 2 * 0.2) / 60)
    assert kpi(k, "line.energy_kwh") == kpi(k, "stations.s1.energy_kwh")
    assert kpi(k, "line.units_good") == 3


def test_standby_after_zero_minutes_starts_with_the_idle_time() -> None:
    rec = Recorder()
    line = Line(with_ems(standby_line(0)), 0, observers=[rec])
    line.run()
    states = rec.states()
    assert states == [
        (0, IDLE),
        (0, STBY),
        (0, PROC),
        (5, IDLE),
        (5, STBY),
        (7.5, PROC),
        (12.5, IDLE),
        (12.5, STBY),
        (60, PROC),
        (65, IDLE),
        (65, STBY),
    ]
    k = compute_kpis(line)
    assert k["stations.s1.state_share.idle"] == 0
    assert kpi(k, "stations.s1.energy_kwh") == pytest.approx((15 * 5 + 105 * 2 * 0.2) / 60)


def test_without_energy_management_there_is_no_standby() -> None:
    baseline = standby_line(10)
    rec = Recorder()
    line = Line(baseline, 0, observers=[rec])
    line.run()
    assert STBY not in {s for _, s in rec.states()}
    assert kpi(compute_kpis(line), "stations.s1.energy_kwh") == pytest.approx((15 * 5 + 105 * 2) / 60)


# --- the degradation signal -----------------------------------------------------------------------------------
def test_degradation_rises_between_failures_and_resets_after_repair_or_planned_stop() -> None:
    sc = parse_scenario(
        tandem_yaml(
            [exponential(4)],
            rate_per_hour=12,
            horizon_hours=72,
            replications=1,
            seed=2,
            station_extra=[
                {
                    "failures": {
                        "time_between": exponential(120),
                        "repair_time": fixed(15),
                        "predictive": {"detection_share": 0.5, "maintenance_time": fixed(5)},
                    }
                }
            ],
        )
    )
    line = Line(sc, 0)
    machine = line.by_id["s1"].machines[0]
    marks: list[tuple[str, float, float]] = []  # (what, time, degradation then)
    last: dict[str, MachineState | None] = {"state": None}

    def observe(e: Event) -> None:
        if isinstance(e, Breakdown):
            marks.append(("breakdown", e.time, machine.degradation))
        elif isinstance(e, Repaired):
            marks.append(("repaired", e.time, machine.degradation))
        elif isinstance(e, StateChanged):
            if e.state is MachineState.MAINTENANCE:
                marks.append(("maintenance", e.time, machine.degradation))
            elif last["state"] is MachineState.MAINTENANCE:
                marks.append(("maintained", e.time, machine.degradation))
            last["state"] = e.state

    samples: list[tuple[float, float]] = []

    def sample() -> Any:
        while True:
            samples.append((line.env.now, machine.degradation))
            yield line.env.timeout(1.0)

    line.add_observer(observe)
    line.env.process(sample())
    line.run()

    kinds = [m[0] for m in marks]
    assert kinds.count("breakdown") >= 3 and kinds.count("maintenance") >= 3
    assert kinds.count("repaired") in (kinds.count("breakdown"), kinds.count("breakdown") - 1)  # one under way
    for what, _, degradation in marks:
        assert degradation == {"breakdown": 1.0, "maintenance": 1.0, "repaired": 0.0, "maintained": 0.0}[what]
    resets = [t for what, t, _ in marks if what in ("repaired", "maintained")]
    assert samples[0] == (0.0, 0.0)
    assert all(0.0 <= d <= 1.0 for _, d in samples)
    drops = 0
    for (t0, d0), (t1, d1) in itertools.pairwise(samples):
        if d1 < d0:
            drops += 1
            assert any(t0 < r <= t1 for r in resets), (
                f"degradation fell from {d0} to {d1} in ({t0}, {t1}] without a reset"
            )
    assert drops >= len(resets) - 1  # it does fall back after (nearly) every reset...
    assert sum(d > 0.9 for _, d in samples) > 0  # ...having risen toward 1
    assert sum(0 < d < 0.5 for _, d in samples) > 0


def test_degradation_is_zero_without_failures() -> None:
    line = Line(parse_scenario(tandem_yaml([exponential(4)], rate_per_hour=10, horizon_hours=5)), 0)
    line.run()
    assert line.by_id["s1"].machines[0].degradation == 0.0


# --- scaling levers keep the kind of distribution -------------------------------------------------------------
SETUP_TIMES = [
    fixed(10),
    {"kind": "uniform", "low": 4, "high": 12},
    {"kind": "triangular", "low": 2, "mode": 5, "high": 20},
    {"kind": "normal", "mean": 8, "sd": 5},
    {"kind": "lognormal", "mean": 8, "sd": 3},
    exponential(8),
    {"kind": "empirical", "values": [3, 6, 12], "weights": [1, 2, 1]},
]


@pytest.mark.parametrize("dist", SETUP_TIMES, ids=[d["kind"] for d in SETUP_TIMES])
@pytest.mark.parametrize("factor", [0.4, 0.0])
def test_quick_changeover_scales_every_kind_of_setup_time(dist: dict[str, Any], factor: float) -> None:
    sc = parse_scenario(
        tandem_yaml(
            [exponential(3)],
            rate_per_hour=5,
            horizon_hours=10,
            products=TWO_FAMILIES,
            station_extra=[{"setup": {"default": dist, "matrix": {"a": {"b": dist}}}}],
            investments=[inv("smed", {"lever": "quick_changeover", "setup_factor": factor})],
        )
    )
    before = sc.station("s1").setup
    after = alternative(sc, "smed").scenario.station("s1").setup
    assert before is not None and after is not None
    for old, new in ((before.default, after.default), (before.matrix["a"]["b"], after.matrix["a"]["b"])):
        assert mean_of(new) == pytest.approx(factor * mean_of(old))
        assert new.kind in (old.kind, "fixed")
        assert new.kind == old.kind or factor == 0  # (a zero duration becomes fixed where the kind needs a mean > 0)
