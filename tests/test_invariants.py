"""Determinism, common random numbers, invariants on random scenarios (Hypothesis) and the warm-up window."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from helpers import TransitCounter, assert_conserved, exponential, tandem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simline.events import Event, MachineState, OperationFinished, OrderCreated
from simline.experiment import run_experiment, run_replication
from simline.kpis import compute_kpis, state_names
from simline.scenario import Experiment, Scenario, load_scenario, scenario_from_data
from simline.sim import Line

EXAMPLES = Path(__file__).resolve().parent.parent / "scenarios"
SCENARIOS = sorted(EXAMPLES.glob("*.yaml"))
SHARE_SUFFIXES = ("utilisation", "active_share", "availability", "quality")
LINE_SHARES = ("scrap_rate", "first_pass_yield", "escaped_defect_rate", "on_time_delivery", "quality", "availability")


def shortened(scenario: Scenario, horizon_hours: float, warmup_hours: float = 0.0, **kw: Any) -> Scenario:
    exp = {"horizon_hours": horizon_hours, "warmup_hours": warmup_hours, "seed": scenario.experiment.seed, **kw}
    return scenario.model_copy(update={"experiment": Experiment.model_validate(exp)})


# --- determinism --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_same_seed_gives_identical_kpis(path: Path) -> None:
    scenario = shortened(load_scenario(path), 400, 40)
    first = run_replication(scenario, 1)
    second = run_replication(scenario, 1)
    assert first == second
    assert first["line.units_finished"]


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_observers_do_not_change_the_run(path: Path) -> None:
    scenario = shortened(load_scenario(path), 400, 40)
    seen: list[Event] = []
    line = Line(scenario, 0, observers=[seen.append])
    line.run()
    assert seen
    assert compute_kpis(line) == run_replication(scenario, 0)


def test_different_seeds_and_replications_differ() -> None:
    scenario = shortened(load_scenario(EXAMPLES / "quickstart.yaml"), 200, 8)
    base = run_replication(scenario, 0)
    other_seed = run_replication(scenario, 0, seed=scenario.experiment.seed + 1)
    other_rep = run_replication(scenario, 1)
    assert other_seed != other_rep
    for other in (other_seed, other_rep):
        assert other != base
        assert other["line.wip_mean"] != base["line.wip_mean"]
        assert other["line.unit_time_mean_h"] != base["line.unit_time_mean_h"]


def test_parallel_replications_equal_sequential() -> None:
    scenario = shortened(load_scenario(EXAMPLES / "valve_blocks.yaml"), 500, 100, replications=4)
    sequential = run_experiment(scenario, jobs=1)
    parallel = run_experiment(scenario, jobs=2)
    assert sequential.replications == parallel.replications == 4
    assert sequential.runs == parallel.runs
    assert sequential.runs[0] != sequential.runs[1]


def _orders_and_ops(scenario: Scenario) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    orders: list[tuple[Any, ...]] = []
    ops: list[tuple[Any, ...]] = []

    def observe(event: Event) -> None:
        if isinstance(event, OrderCreated):
            orders.append((event.time, event.order_id, event.family, event.options, event.quantity, event.due))
        elif isinstance(event, OperationFinished):
            ops.append((event.time, event.station, event.unit_id))

    Line(scenario, 0, observers=[observe]).run()
    return orders, ops


def test_common_random_numbers_keep_the_order_stream() -> None:
    """Changing one station's processing time must not change when orders arrive or what they are for."""
    base = shortened(load_scenario(EXAMPLES / "valve_blocks.yaml"), 600, 0)
    data = base.model_dump(mode="json")
    cnc = next(s for s in data["stations"] if s["id"] == "cnc")
    cnc["processing"]["base"] = exponential(20.0)
    cnc["processing"]["by_family"] = {"ng16": exponential(40.0)}
    changed = scenario_from_data(data)
    orders_a, ops_a = _orders_and_ops(base)
    orders_b, ops_b = _orders_and_ops(changed)
    assert len(orders_a) > 50
    assert orders_a == orders_b
    assert ops_a != ops_b  # the change did change the run downstream of the arrivals


# --- Hypothesis: random valid scenarios ---------------------------------------------------------------------


@st.composite
def durations(draw: st.DrawFn, low: float = 0.5, high: float = 12.0, zero: bool = False) -> Any:
    """A duration distribution (minutes) as scenario data, with a mean in [low, high] (or exactly 0)."""
    if zero and draw(st.booleans()):
        return 0
    m = draw(st.floats(low, high))
    kind = draw(st.sampled_from(["number", "fixed", "uniform", "triangular", "normal", "lognormal", "exp", "emp"]))
    f = draw(st.floats(0.0, 0.9))
    match kind:
        case "number":
            return round(m, 3)
        case "fixed":
            return {"kind": "fixed", "value": m}
        case "uniform":
            return {"kind": "uniform", "low": m * (1 - f), "high": m * (1 + f)}
        case "triangular":
            return {"kind": "triangular", "low": m * (1 - f), "mode": m, "high": m * (1 + f)}
        case "normal":
            return {"kind": "normal", "mean": m, "sd": m * f}
        case "lognormal":
            return {"kind": "lognormal", "mean": m, "sd": m * f * 2}
        case "exp":
            return exponential(m)
        case _:
            values = draw(st.lists(st.floats(low, high), min_size=1, max_size=4))
            return {"kind": "empirical", "values": values}


def shares(draw: st.DrawFn, names: list[str]) -> dict[str, float]:
    weights = [draw(st.integers(1, 5)) for _ in names]
    return {n: w / sum(weights) for n, w in zip(names, weights, strict=True)}


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """Scenario data: 1–5 stations, 1–2 families with options, optional setups, failures, inspection, calendar."""
    families = ["fa", "fb"][: draw(st.integers(1, 2))]
    option_choices = {
        f"o{i}": [f"c{j}" for j in range(draw(st.integers(1, 3)))] for i in range(draw(st.integers(0, 2)))
    }
    family_share = shares(draw, families)
    products = []
    for fam in families:
        opts = {}
        for name, choices in option_choices.items():
            if fam == "fa" or draw(st.booleans()):  # fb may lack an option: its units then never match a `when` on it
                opts[name] = {"choices": shares(draw, choices)}
        products.append({"family": fam, "share": family_share[fam], "price": 10.0, "options": opts})

    n = draw(st.integers(1, 5))
    ids = [f"s{i}" for i in range(n)]
    needs_crew = False
    stations = []
    for i, sid in enumerate(ids):
        station: dict[str, Any] = {
            "id": sid,
            "machines": draw(st.integers(1, 3)),
            "dispatch": draw(st.sampled_from(["fifo", "edd", "same_setup"])),
            "processing": {"base": draw(durations(1.0, 15.0))},
        }
        buffer = draw(st.one_of(st.none(), st.integers(0, 4)))
        if buffer is not None:
            station["buffer"] = buffer
        if len(families) > 1 and draw(st.booleans()):
            station["processing"]["by_family"] = {"fb": draw(durations(1.0, 15.0))}
        if option_choices and draw(st.booleans()):
            name = sorted(option_choices)[0]
            station["processing"]["by_option"] = {name: {option_choices[name][-1]: draw(durations(0.5, 5.0))}}
        if draw(st.booleans()):
            setup: dict[str, Any] = {"default": draw(durations(1.0, 20.0, zero=True))}
            if len(families) > 1 and draw(st.booleans()):
                setup["matrix"] = {"fa": {"fb": draw(durations(1.0, 20.0))}}
            station["setup"] = setup
        if draw(st.booleans()):
            tech = draw(st.booleans())
            needs_crew |= tech
            station["failures"] = {
                "time_between": exponential(draw(st.floats(30.0, 600.0))),
                "repair_time": draw(durations(1.0, 60.0)),
                "response_time": draw(durations(0.5, 10.0, zero=True)),
                "needs_technician": tech,
            }
        if draw(st.booleans()):
            station["quality"] = {"defect_probability": draw(st.floats(0.0, 0.3))}
        if draw(st.booleans()):
            inspection: dict[str, Any] = {
                "detection_rate": draw(st.floats(0.0, 1.0)),
                "false_reject_rate": draw(st.floats(0.0, 0.2)),
            }
            if draw(st.booleans()):
                inspection |= {
                    "on_reject": "rework",
                    "rework_to": ids[draw(st.integers(0, i))],
                    "max_rework": draw(st.integers(0, 2)),
                }
            station["inspection"] = inspection
        stations.append(station)

    routing = []
    for sid in ids:
        step: dict[str, Any] = {"station": sid}
        filt = draw(st.sampled_from(["none", "family", "option"]))
        if filt == "family" and len(families) > 1:
            step["when"] = {"family": [draw(st.sampled_from(families))]}
        elif filt == "option" and option_choices:
            name = sorted(option_choices)[0]
            step["when"] = {name: option_choices[name][:1]}
        routing.append(step)

    if draw(st.booleans()):
        transport: dict[str, Any] = {"kind": "fixed", "time": draw(durations(0.5, 5.0, zero=True))}
    else:
        transport = {"kind": "pool", "size": draw(st.integers(1, 2)), "time": draw(durations(0.5, 5.0, zero=True))}

    horizon = draw(st.floats(8.0, 72.0))
    orders: dict[str, Any] = {
        "kind": "poisson",
        "rate_per_hour": draw(st.floats(0.5, 20.0)),
        "quantity": draw(st.integers(1, 3)),
        "due_in_hours": draw(st.floats(1.0, 48.0)),
    }
    if draw(st.integers(0, 4)) == 0:  # now and then an order book instead
        rows = []
        for _ in range(draw(st.integers(1, 12))):
            product = draw(st.sampled_from(products))
            release = draw(st.sampled_from([0.0, 1.0, draw(st.floats(0.0, horizon))]))
            row = {
                "release_hour": release,
                "family": product["family"],
                "options": {
                    name: draw(st.sampled_from(sorted(o["choices"]))) for name, o in product["options"].items()
                },
                "quantity": draw(st.integers(1, 4)),
            }
            if draw(st.booleans()):
                row["due_hour"] = release + draw(st.floats(0.0, 24.0))
            rows.append(row)
        orders = {"kind": "order_book", "rows": rows}
    data: dict[str, Any] = {
        "name": "random",
        "products": products,
        "orders": orders,
        "stations": stations,
        "routing": routing,
        "transport": transport,
        "experiment": {
            "horizon_hours": horizon,
            "warmup_hours": draw(st.sampled_from([0.0, 0.1, 0.5])) * horizon,
            "seed": draw(st.integers(0, 2**32)),
        },
    }
    if needs_crew:
        data["maintenance"] = {"technicians": draw(st.integers(1, 2))}
    if draw(st.booleans()):
        days = draw(st.sets(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1))
        shifts = draw(
            st.sets(st.sampled_from([("06:00", "14:00"), ("14:00", "22:00"), ("22:00", "06:00")]), min_size=1)
        )
        calendar: dict[str, Any] = {
            "working_days": sorted(days),
            "shifts": [{"start": a, "end": b} for a, b in sorted(shifts)],
        }
        breaks = []
        if ("06:00", "14:00") in shifts and draw(st.booleans()):
            breaks += [{"start": "09:00", "end": "09:15"}, {"start": "12:00", "end": "12:30"}]
        if ("22:00", "06:00") in shifts and draw(st.booleans()):
            breaks.append({"start": "02:00", "end": "02:30"})  # after midnight, inside the night shift
        if breaks:
            calendar["breaks"] = breaks
        data["calendar"] = calendar
    return data


class LiveChecks:
    """Observer: simulated time never goes back; buffers and station counters stay within their bounds."""

    def __init__(self) -> None:
        self.line: Line | None = None
        self.last = 0.0
        self.events = 0

    def __call__(self, event: Event) -> None:
        line = self.line
        assert line is not None
        assert event.time >= self.last, f"time went back from {self.last} to {event.time} at {event}"
        assert event.time == line.env.now
        self.last = event.time
        self.events += 1
        for station in line.stations:
            queued = len(station.buffer)  # the rework rack beside the buffer needs no slot
            cap = station.spec.buffer
            assert queued >= 0
            assert cap is None or queued <= cap, f"{station.id}: {queued} units in a buffer of {cap}"
            waiting = station.buffer.waiting
            assert queued <= waiting <= station.stats.wip.level <= waiting + len(station.machines)


DAY = 1440.0


def working_minutes(scenario: Scenario, start: float, end: float) -> float:
    """Working time of the calendar in [start, end] (minutes; time 0 is a Monday 00:00), worked out day by day."""
    cal = scenario.calendar
    if cal is None:
        return end - start
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    pieces: list[tuple[float, float]] = []
    for day in range(-1, int(end // DAY) + 1):
        if days[day % 7] not in cal.working_days:
            continue
        for shift in cal.shifts:
            a, b = shift.minutes()
            windows = [(b0 + k, b1 + k) for b0, b1 in (w.minutes() for w in cal.breaks) for k in (0.0, DAY)]
            cuts = sorted((b0, b1) for b0, b1 in windows if a <= b0 and b1 <= b)  # breaks inside the shift
            t = a
            for b0, b1 in [*cuts, (b, b)]:
                pieces.append((day * DAY + t, day * DAY + b0))
                t = b1
    pieces.sort()
    total, reach = 0.0, start
    for a, b in pieces:  # shifts of a calendar do not overlap, but a night shift may meet the next morning's
        a, b = max(a, reach), min(b, end)
        if b > a:
            total += b - a
            reach = b
    return total


def check_kpis(scenario: Scenario, line: Line) -> None:
    k = compute_kpis(line)
    exp = scenario.experiment
    for name, value in k.items():
        assert value is None or math.isfinite(value), f"{name} = {value}"
    assert k["line.observed_hours"] == pytest.approx(exp.horizon_hours - exp.warmup_hours)
    window = (exp.horizon_hours - exp.warmup_hours) * 60.0
    working = working_minutes(scenario, exp.warmup_hours * 60.0, exp.horizon_hours * 60.0)
    for machine in line.machines:
        assert sum(machine.times) == pytest.approx(window), f"{machine.station.id}#{machine.index} booked time"
        assert min(machine.times) >= 0
        off = machine.times[MachineState.OFF_SHIFT]
        assert off == pytest.approx(window - working, abs=1e-6), f"{machine.station.id}#{machine.index} off-shift"
    for station in scenario.stations:
        p = f"stations.{station.id}."
        for suffix in SHARE_SUFFIXES:
            v = k[p + suffix]
            assert v is None or -1e-9 <= v <= 1 + 1e-9, f"{p}{suffix} = {v}"
        state_shares = [k[p + "state_share." + s] for s in state_names()]
        assert all(s is not None and -1e-12 <= s <= 1 + 1e-12 for s in state_shares), state_shares
        assert math.fsum(state_shares) == pytest.approx(1.0)  # type: ignore[arg-type]
        if station.buffer is not None:
            assert k[p + "buffer_max"] <= station.buffer  # type: ignore[operator]
        assert 0 <= k[p + "buffer_mean"] <= k[p + "buffer_max"] + 1e-9  # type: ignore[operator]
        assert k[p + "wip_mean"] >= 0  # type: ignore[operator]
        assert 0 <= k[p + "good"] <= k[p + "processed"]  # type: ignore[operator]
        if station.failures is None:
            assert k[p + "failures"] == 0
            assert k[p + "state_share.down"] == 0
        if scenario.calendar is None:
            assert k[p + "state_share.off_shift"] == 0
    for suffix in LINE_SHARES:
        v = k["line." + suffix]
        assert v is None or -1e-9 <= v <= 1 + 1e-9, f"line.{suffix} = {v}"
    assert k["line.units_good"] <= k["line.units_finished"]  # type: ignore[operator]
    assert k["line.wip_mean"] >= 0  # type: ignore[operator]


STOPS = 8


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=scenarios(), replication=st.integers(0, 3))
def test_invariants_on_random_scenarios(data: dict[str, Any], replication: int) -> None:
    scenario = scenario_from_data(data)
    live = LiveChecks()
    line = Line(scenario, replication, observers=[live])
    live.line = line
    transit = TransitCounter(line)
    for i in range(1, STOPS + 1):
        line.run(line.horizon * i / STOPS)
        assert_conserved(line, transit)
        if line.env.now > line.warmup:  # at exactly the end of the warm-up its reset is still pending
            for m in line.machines:  # a stopped model has booked every minute of the observed window
                assert sum(m.times) == pytest.approx(line.env.now - line.warmup)
    check_kpis(scenario, line)


def test_random_scenario_strategy_is_valid_and_varied() -> None:
    """The strategy's examples validate and cover the features the invariants are meant for."""
    seen: set[str] = set()

    @settings(max_examples=60, deadline=None, database=None, derandomize=True)
    @given(data=scenarios())
    def collect(data: dict[str, Any]) -> None:
        s = scenario_from_data(data)
        seen.add(f"transport.{s.transport.kind}")
        for station in s.stations:
            seen.add(f"dispatch.{station.dispatch}")
            seen.add("buffer.none" if station.buffer is None else f"buffer.{min(station.buffer, 1)}")
            if station.setup:
                seen.add("setup")
            if station.failures:
                seen.add("failures")
            if station.inspection:
                seen.add(f"inspection.{station.inspection.on_reject}")
        seen.add(f"orders.{s.orders.kind}")
        if s.calendar is not None:
            seen.add("calendar.breaks" if s.calendar.breaks else "calendar")

    collect()
    expected = {
        "transport.fixed",
        "transport.pool",
        "dispatch.fifo",
        "dispatch.edd",
        "dispatch.same_setup",
        "buffer.none",
        "buffer.0",
        "buffer.1",
        "setup",
        "failures",
        "inspection.scrap",
        "inspection.rework",
        "calendar",
        "calendar.breaks",
        "orders.poisson",
        "orders.order_book",
    }
    assert expected <= seen


# --- warm-up ------------------------------------------------------------------------------------------------

COUNTS = (
    "line.units_released",
    "line.units_finished",
    "line.units_good",
    "line.units_scrapped",
    "line.units_reworked",
    "line.orders_created",
    "line.orders_completed",
)
STATION_COUNTS = ("processed", "good", "rejected", "setups", "failures")


def warmup_scenario(warmup_hours: float) -> Scenario:
    """Continuous random times only, so that no event coincides with the end of the warm-up."""
    rework = {"inspection": {"on_reject": "rework", "rework_to": "s1", "false_reject_rate": 0.05}}
    return tandem(
        [exponential(5.0), exponential(6.0), exponential(4.0)],
        buffers=[None, 3, 2],
        machines=[1, 2, 1],
        rate_per_hour=6,
        horizon_hours=120,
        warmup_hours=warmup_hours,
        seed=99,
        station_extra=[
            {"setup": {"default": exponential(3.0)}},
            {
                "failures": {"time_between": exponential(200.0), "repair_time": exponential(20.0)},
                "quality": {"defect_probability": 0.1},
            },
            {**rework, "quality": {"defect_probability": 0.05}},
        ],
        products=[
            {"family": "a", "share": 0.5, "price": 1.0},
            {"family": "b", "share": 0.5, "price": 2.0},
        ],
        calendar={"shifts": [{"start": "06:00", "end": "22:00"}], "working_days": ["mon", "tue", "wed", "thu", "fri"]},
        transport={"kind": "fixed", "time": exponential(1.0)},
    )


def test_warmup_discards_exactly_what_happened_before_it() -> None:
    warmup = 31.3
    with_warmup = warmup_scenario(warmup)
    finished: list[OperationFinished] = []

    def observe(event: Event) -> None:
        if isinstance(event, OperationFinished):
            finished.append(event)

    line = Line(with_warmup, 0, observers=[observe])
    line.run()
    after = compute_kpis(line)

    # the same trajectory without warm-up, stopped at the end of the warm-up and then run to the horizon
    plain = Line(warmup_scenario(0.0), 0)
    plain.run(warmup * 60)
    before = compute_kpis(plain)
    plain.run()
    total = compute_kpis(plain)

    assert after["line.observed_hours"] == pytest.approx(120 - warmup)
    assert total["line.observed_hours"] == pytest.approx(120)
    assert total["line.units_finished"] > before["line.units_finished"] > 0
    for name in COUNTS:
        assert after[name] == total[name] - before[name], name  # type: ignore[operator]
    for sid in ("s1", "s2", "s3"):
        for name in STATION_COUNTS:
            key = f"stations.{sid}.{name}"
            assert after[key] == total[key] - before[key], key  # type: ignore[operator]
        late = sum(e.station == sid and e.time > warmup * 60 for e in finished)
        assert after[f"stations.{sid}.processed"] == late
        assert after[f"stations.{sid}.processed"] < total[f"stations.{sid}.processed"]  # type: ignore[operator]
    assert after["stations.s2.failures"] and after["line.units_reworked"]
    for machine in line.machines:
        assert sum(machine.times) == pytest.approx((120 - warmup) * 60)
    # time-weighted means over the window: total area = area before + area after
    for key in ("line.wip_mean", "stations.s1.wip_mean", "stations.s2.wip_mean", "stations.s2.buffer_mean"):
        area = after[key] * (120 - warmup) + before[key] * warmup  # type: ignore[operator]
        assert area == pytest.approx(total[key] * 120), key  # type: ignore[operator]
    off = after["stations.s1.state_share.off_shift"]
    assert off is not None and 0 < off < 1


# --- model bugs found by these tests ----------------------------------------------------------------------------------


def test_pool_transport_with_zero_time_releases_its_carriers() -> None:
    """Regression: an instant move used to keep its carrier, and the line stalled after ``size`` moves."""
    scenario = tandem(
        [5.0, 5.0],
        rate_per_hour=6,
        horizon_hours=10,
        transport={"kind": "pool", "size": 1, "time": 0},
    )
    line = Line(scenario, 0)
    line.run()
    assert line.transport.pool is not None
    assert line.transport.pool.free == 1
    assert line.finished_total >= 50
    assert compute_kpis(line)["stations.s1.state_share.blocked"] < 0.01  # type: ignore[operator]


def test_rework_arrival_does_not_overflow_a_finite_buffer() -> None:
    """s1 → s2 (buffer 0), s2 rejects units and reworks them itself, transport takes 1 minute.

    At t = 13.196 min s2 sends a rejected unit back to itself and goes idle; its idle slot is granted to the
    unit blocked on s1. At 14.196 the rework unit arrives first and takes the idle machine, so the forward
    unit arriving next is pushed into a buffer of capacity 0.
    """
    scenario = tandem(
        [1.0, 1.0],
        buffers=[None, 0],
        rate_per_hour=20,
        horizon_hours=8,
        station_extra=[{}, {"inspection": {"false_reject_rate": 0.5, "on_reject": "rework", "rework_to": "s2"}}],
        transport={"kind": "fixed", "time": 1.0},
    )
    line = Line(scenario, 0)
    line.run()
    k = compute_kpis(line)
    assert k["line.units_reworked"]
    assert k["stations.s2.buffer_max"] == 0
