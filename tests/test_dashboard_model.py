"""The model behind the live dashboard: twin lines in lockstep, the running money difference, the order tracker,
the snapshot feed and the bridge from web threads to the live loop.

Everything is driven deterministically: the live driver runs on a fake wall clock (``driver.advance()``), a bare
line with ``env.run(until=...)``, and the bridge talks to a real event loop in a thread whose only simulation
progress comes from calls the test makes through the bridge itself.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dashboards.bridge import Bridge
from dashboards.feed import Feed
from dashboards.tracker import OrderTracker
from simline import CommandError, load_scenario
from simline.business import RunningDifference, prorated_cost_per_hour, public_money, running_difference
from simline.events import Event, MachineState, OrderCompleted, OrderCreated
from simline.finance import grant_amount, tax_credit_schedule
from simline.live.driver import LiveDriver
from simline.overlays import Alternative, alternative
from simline.scenario import Scenario
from simline.sim import Line

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml"
SEED = 7
SMALL = {"size": "small", "engraving": "no"}
ENGRAVED = {"size": "large", "engraving": "yes"}


# --- helpers -----------------------------------------------------------------------------------------------
@functools.cache
def quickstart() -> Scenario:
    return load_scenario(QUICKSTART)


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make_driver(twin: str | None = "same", seed: int = SEED) -> tuple[LiveDriver, FakeClock, Alternative | None]:
    """A live driver on quickstart at one simulated minute per wall second, with a twin line: ``"same"`` (the same
    scenario), an investment name, or ``None`` (no twin). Slices are long enough that every advance reaches its
    target."""
    sc = quickstart()
    clock = FakeClock()
    alt = alternative(sc, twin) if twin not in (None, "same") else None
    twins = [] if twin is None else [Line(alt.scenario if alt else sc, seed=seed, live=True)]
    driver = LiveDriver(Line(sc, seed=seed, live=True), speed=60.0, twins=twins, clock=clock, slice_seconds=10.0)
    return driver, clock, alt


def advance(driver: LiveDriver, clock: FakeClock, minutes: float) -> None:
    """Move the fake wall clock so that ``minutes`` more simulated minutes are due (speed 60), and advance."""
    clock.t += minutes * 60.0 / driver.speed
    driver.advance()


def advance_until(
    driver: LiveDriver, clock: FakeClock, condition: Callable[[], bool], step: float = 0.5, limit: float = 600.0
) -> None:
    """Advance in steps of ``step`` simulated minutes until ``condition()`` holds (at most ``limit`` minutes)."""
    start = driver.env.now
    while not condition():
        assert driver.env.now - start < limit, "the condition never held"
        advance(driver, clock, step)


def cutting_everywhere(driver: LiveDriver) -> Callable[[], bool]:
    """Condition: the cutter of every line is processing a unit."""
    return lambda: all(line.by_id["cut"].machines[0].state is MachineState.PROCESSING for line in driver.lines)


def fingerprint(line: Line) -> tuple[Any, ...]:
    """Counters and machine states of a line: equal fingerprints mean the lines are in the same state."""
    s = line.stats
    machines = tuple((m.state, m.processed, m.good, m.failures, m.ttf, m.unit_id, m.order_id) for m in line.machines)
    counters = (s.orders_created, s.orders_completed, s.units_released, s.units_finished, s.units_scrapped, s.revenue)
    return (line.env.now, counters, line.wip, tuple(line.orders), machines)


class Recorder:
    """An observer keeping the events of the given kinds."""

    def __init__(self, *kinds: type[Event]) -> None:
        self.kinds = kinds
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, self.kinds):
            self.events.append(event)


# --- 1. twin lockstep and common random numbers -------------------------------------------------------------
def test_a_twin_of_the_same_scenario_and_seed_stays_identical_step_by_step() -> None:
    """Same scenario, same seed: after every advance both lines have the same clock, counters, open orders and
    machine states (including each machine's remaining time to failure), so they share every random stream and
    advance together."""
    driver, clock, _ = make_driver("same")
    main, twin = driver.lines
    for _ in range(72):  # 12 simulated hours in 10-minute advances
        advance(driver, clock, 10.0)
        assert main.env.now == pytest.approx(driver.target())
        assert fingerprint(main) == fingerprint(twin)
    assert main.stats.orders_completed > 30  # ~6 orders/h for 12 h: the comparison was not vacuous
    assert main.stats.revenue > 0


# Theory of the cutter's processing time per unit (minutes): a triangular base plus 1.5 for a large plate
# (share 0.4 of the demand mix). Triangular(a, c, b): mean (a + b + c) / 3, variance (a² + b² + c² − ab − ac − bc) / 18.
def _triangular(a: float, c: float, b: float) -> tuple[float, float]:
    return (a + b + c) / 3, (a * a + b * b + c * c - a * b - a * c - b * c) / 18


def _cut_theory(a: float, c: float, b: float) -> tuple[float, float]:
    mean, var = _triangular(a, c, b)
    return mean + 0.4 * 1.5, math.sqrt(var + 1.5**2 * 0.4 * 0.6)


def test_an_invested_twin_sees_the_same_orders_but_cuts_faster() -> None:
    """With the fibre laser the twin receives exactly the same order arrivals (times, products, options, ids),
    but its cutter's mean processing time per unit is that of the new triangular(2.5, 3, 4.5) instead of
    triangular(4, 5, 7), each within four standard errors of theory, and the twin's cutter is less busy."""
    driver, clock, _ = make_driver("fiber_laser")
    main, twin = driver.lines
    arrivals = [Recorder(OrderCreated), Recorder(OrderCreated)]
    for line, rec in zip(driver.lines, arrivals, strict=True):
        line.add_observer(rec)
    for _ in range(48):  # 24 simulated hours
        advance(driver, clock, 30.0)
    assert len(arrivals[0].events) > 100
    assert arrivals[0].events == arrivals[1].events
    assert main.stats.orders_created == twin.stats.orders_created
    means = []
    for line, (a, c, b) in ((main, (4, 5, 7)), (twin, (2.5, 3, 4.5))):
        cutter = line.by_id["cut"].machines[0]
        # Not flushed: the booked processing time stops at the last state change, so it covers the units processed
        # (each start of processing books the previous unit) and not the one on the machine now.
        busy = cutter.times[MachineState.PROCESSING]
        mean, sd = _cut_theory(a, c, b)
        n = cutter.processed
        assert busy / n == pytest.approx(mean, abs=4 * sd / math.sqrt(n)), line
        means.append(busy / n)
    assert means[1] < means[0]
    main_cut, twin_cut = (line.by_id["cut"].machines[0] for line in driver.lines)
    assert twin_cut.times[MachineState.PROCESSING] < main_cut.times[MachineState.PROCESSING]


# --- 2. orders reach every line -----------------------------------------------------------------------------
def test_an_order_is_placed_in_every_line_under_the_same_id() -> None:
    """``place_order`` creates the order in the main line and the twin, with the same id, options, quantity,
    creation and due time."""
    driver, clock, _ = make_driver("fiber_laser")
    advance(driver, clock, 90.0)
    main, twin = driver.lines
    for options in (SMALL, ENGRAVED):
        order = driver.place_order("plate", options, quantity=2, due_in_hours=3)
        assert order.id in main.orders
        copy = twin.orders[order.id]
        assert copy is not order
        assert (copy.variant.key, copy.quantity, copy.created, copy.due) == (
            order.variant.key,
            2,
            pytest.approx(90.0),
            pytest.approx(90.0 + 180.0),
        )


@pytest.mark.parametrize(
    ("family", "options", "quantity", "due", "field", "match"),
    [
        ("plate", {"size": "huge", "engraving": "no"}, 1, None, "options.size", "'huge' is not a choice of size"),
        ("mug", SMALL, 1, None, "family", r"'mug' is not a product family \(known: plate\)"),
        ("plate", {"size": "small"}, 1, None, "options", "no choice given for engraving"),
        ("plate", {**SMALL, "colour": "red"}, 1, None, "options.colour", "not an option of plate"),
        ("plate", SMALL, 0, None, "quantity", "between 1 and 10000"),
        ("plate", SMALL, 1, -2.0, "due_in_hours", "between 0 and 8760"),
    ],
)
def test_a_bad_order_raises_and_places_nothing_in_any_line(
    family: str, options: dict[str, str], quantity: int, due: float | None, field: str, match: str
) -> None:
    """An invalid order raises CommandError naming the bad field and leaves every line untouched: no order
    created, no unit released, and the next valid order gets the same id in both lines."""
    driver, clock, _ = make_driver("fiber_laser")
    advance(driver, clock, 60.0)
    before = [(line.stats.orders_created, line.released_total, dict(line.orders)) for line in driver.lines]
    with pytest.raises(CommandError, match=match) as info:
        driver.place_order(family, options, quantity, due_in_hours=due)
    assert info.value.field == field
    assert [(line.stats.orders_created, line.released_total, dict(line.orders)) for line in driver.lines] == before
    order = driver.place_order("plate", SMALL)
    assert all(order.id in line.orders for line in driver.lines)


def test_an_order_placed_while_the_lines_lag_still_has_the_same_id_and_time_in_the_twin() -> None:
    """When the model lags its target (each advance is one batch of steps per line), the lines are not at the
    same simulated now; an order placed through the driver must still be the same order in every line."""
    driver, clock, _ = make_driver("fiber_laser")
    driver.slice_seconds = 0.0  # one batch of 64 steps per line per advance: deterministic
    driver.set_speed(100_000.0)
    clock.t += 3600.0
    twin = driver.lines[1]
    for _ in range(5):
        driver.advance()
        order = driver.place_order("plate", SMALL)
        assert order.id in twin.orders
        assert twin.orders[order.id].created == order.created


# --- 3. machine commands reach every line -------------------------------------------------------------------
def test_a_fault_breaks_the_same_machine_in_every_line_and_reset_repairs_all() -> None:
    """``inject_fault`` puts the cutter of both lines down at once, a second fault is refused, a forced repair
    ends after exactly its duration in both lines; ``reset_machine`` ends the repair in both."""
    driver, clock, _ = make_driver("fiber_laser")
    advance_until(driver, clock, cutting_everywhere(driver))
    cutters = [line.by_id["cut"].machines[0] for line in driver.lines]
    assert driver.machines_like(driver.machine("cut")) == cutters
    assert driver.inject_fault(driver.machine("cut"), 30.0) == "down"
    advance(driver, clock, 0.01)
    assert [m.state for m in cutters] == [MachineState.DOWN, MachineState.DOWN]
    assert [m.failures for m in cutters] == [1, 1]
    with pytest.raises(CommandError, match="already down"):
        driver.inject_fault(driver.machine("cut"))
    advance(driver, clock, 29.0)
    assert [m.state for m in cutters] == [MachineState.DOWN, MachineState.DOWN]
    advance(driver, clock, 1.5)  # the forced 30-minute repair is over in both lines
    assert all(m.state is not MachineState.DOWN for m in cutters)

    advance_until(driver, clock, cutting_everywhere(driver))
    assert driver.inject_fault(driver.machine("cut"), 500.0) == "down"
    advance(driver, clock, 0.01)
    assert all(m.state is MachineState.DOWN for m in cutters)
    assert driver.reset_machine(driver.machine("cut")) == "repaired"
    advance(driver, clock, 0.01)
    assert all(m.state is not MachineState.DOWN for m in cutters)
    assert [m.failures for m in cutters] == [2, 2]


def test_an_unknown_station_or_machine_is_refused_with_the_known_ones() -> None:
    """``driver.machine`` names the stations of the line (or the machine range) when asked for one it lacks."""
    driver, _, _ = make_driver(None)
    with pytest.raises(CommandError, match=r"'nope' is not a station of this line \(stations: cut, engrave, pack\)"):
        driver.machine("nope")
    with pytest.raises(CommandError, match=r"machines 0\.\.0, got 1") as info:
        driver.machine("cut", 1)
    assert info.value.field == "machine"
    assert driver.machine("pack") is driver.line.by_id["pack"].machines[0]


# --- 4. the running money difference ------------------------------------------------------------------------
def test_public_money_for_pdm_cut_follows_the_funding_rules() -> None:
    """pdm_cut costs 9,500, below the grant's minimum project of 10,000: no grant (``grant_amount`` funds only
    projects of at least ``min_project``); the tax credit is 20 % of 9,500 = 1,900 in three equal parts."""
    sc = quickstart()
    alt = alternative(sc, "pdm_cut")
    assert grant_amount(9500, 0.40, 50_000, 10_000) == 0.0
    assert grant_amount(10_000, 0.40, 50_000, 10_000) == pytest.approx(4000.0)
    assert tax_credit_schedule(9500, 0.20, 3) == pytest.approx([1900 / 3] * 3)
    grant, credits = public_money(alt, sc.funding)
    assert grant == 0.0
    assert credits == pytest.approx([1900 / 3] * 3)
    assert public_money(alt, None) == (0.0, [])


@pytest.mark.parametrize(
    ("spec", "capex", "opex", "public"),
    [
        ("pdm_cut", 9500, 900, 0 + 0.2 * 9500),  # below the grant's minimum project: tax credit only
        ("pdm_cut+standby", 12_000, 900, 0.4 * 12_000 + 0.2 * 12_000),  # 12,000 ≥ 10,000: grant and credit
    ],
)
def test_prorated_cost_per_hour_by_hand(spec: str, capex: float, opex: float, public: float) -> None:
    """Cost per simulated hour = (capex / life + opex) / 8760 without funding, and less (grant + credits) / life
    with funding (life 5 years, no residual value)."""
    sc = quickstart()
    per_hour, per_hour_funded = prorated_cost_per_hour(alternative(sc, spec), sc.economics, sc.funding)
    assert per_hour == pytest.approx((capex / 5 + opex) / 8760)
    assert per_hour_funded == pytest.approx((capex / 5 + opex - public / 5) / 8760)
    if spec == "pdm_cut":
        assert per_hour == pytest.approx(2800 / 8760)
        assert per_hour_funded == pytest.approx(2420 / 8760)
    no_funding = prorated_cost_per_hour(alternative(sc, spec), sc.economics, None)
    assert no_funding == pytest.approx((per_hour, per_hour))


KPIS = {
    "line.observed_hours": 10.0,
    "line.revenue": 3000.0,
    "line.material_cost": 800.0,
    "line.energy_kwh": 100.0,
    "line.staffed_hours": 20.0,
    "line.orders_late": 2.0,
    "line.tardiness_h": 3.0,
}


def test_running_difference_of_equal_lines_is_minus_the_prorated_cost() -> None:
    """Two identical KPI sets: no contribution difference, so the net is minus the cost of the hours observed."""
    sc = quickstart()
    alt = alternative(sc, "pdm_cut")
    diff = running_difference(KPIS, dict(KPIS), alt, sc.economics, sc.funding)
    assert isinstance(diff, RunningDifference)
    assert diff.hours == 10.0
    assert diff.contribution_delta == 0.0
    assert diff.cost == pytest.approx(10 * 2800 / 8760)
    assert diff.cost_funded == pytest.approx(10 * 2420 / 8760)
    assert diff.net == pytest.approx(-diff.cost)
    assert diff.net_funded == pytest.approx(-diff.cost_funded)
    assert diff.net_funded > diff.net


@pytest.mark.parametrize(
    ("change", "delta"),
    [
        ({"line.revenue": 3100.0}, 100.0),
        ({"line.energy_kwh": 90.0}, 10 * 0.27),  # 10 kWh saved at 0.27 EUR/kWh
        ({"line.staffed_hours": 19.0}, 30.0),  # one person-hour at 30 EUR
        ({"line.orders_late": 1.0}, 20.0),  # one late-order voucher fewer
        ({"line.material_cost": 850.0, "line.revenue": 3045.0}, -5.0),
    ],
)
def test_running_difference_rises_with_the_contribution_delta(change: dict[str, float], delta: float) -> None:
    """The invested line's better (or worse) KPIs become the contribution delta, priced by the economics, and
    the net moves by exactly that amount; the cost depends only on the baseline's hours."""
    sc = quickstart()
    alt = alternative(sc, "pdm_cut")
    same = running_difference(KPIS, dict(KPIS), alt, sc.economics, sc.funding)
    diff = running_difference(KPIS, {**KPIS, **change}, alt, sc.economics, sc.funding)
    assert diff.contribution_delta == pytest.approx(delta)
    assert diff.cost == pytest.approx(same.cost)
    assert diff.net - same.net == pytest.approx(delta)
    assert diff.net_funded - same.net_funded == pytest.approx(delta)


# --- 5. the order tracker -----------------------------------------------------------------------------------
def test_the_tracker_follows_an_order_from_open_to_completed() -> None:
    """An engraved plate is followed through cut, engrave and pack: its progress never falls and ends at 1, the
    stations named are always on its route (each of them at some point), its estimated completion is never in
    the past, and it ends up completed with its completion time and punctuality."""
    line = Line(quickstart(), seed=SEED, live=True)
    tracker = OrderTracker(line)
    line.add_observer(tracker.observe)
    line.env.run(until=45.0)
    order = line.place_order("plate", ENGRAVED, 1, line.env.now + 8 * 60)
    track = tracker.get(order.id)
    assert track is not None and track.id in tracker.open
    assert track.route == ("cut", "engrave", "pack")
    assert track.progress == 0.0
    minutes_at = {"cut": 6.0, "engrave": 4.5, "pack": 4.0}
    progress, seen = [0.0], set()
    while order.id in tracker.open:
        assert line.env.now < 45.0 + 8 * 60, "the order never completed"
        assert set(track.stations_now) <= set(track.route)
        seen.update(track.stations_now)
        eta = tracker.eta(track, minutes_at)
        assert eta is not None and eta >= line.env.now
        line.env.run(until=line.env.now + 0.25)
        progress.append(track.progress)
    assert track.scrapped == 0  # with this seed the plate passes inspection: no replacement unit restarts it
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    assert len(set(progress)) >= 4  # 0, 1/3, 2/3, 1 at least: progress moved in steps, not in one jump
    assert seen == {"cut", "engrave", "pack"}
    assert tracker.completed[order.id] is track
    assert track.completed is not None and order.created < track.completed <= line.env.now
    assert track.on_time == (track.completed <= track.due)
    assert track.stations_now == [] and track.position == {}
    assert tracker.eta(track, minutes_at) == track.completed


def test_the_tracker_keeps_every_open_order_and_only_the_last_completed_ones() -> None:
    """Attached from the start, the tracker's open orders are exactly the line's open orders; completed ones are
    kept up to ``keep_completed``, the most recent ones, in completion order."""
    line = Line(quickstart(), seed=SEED, live=True)
    tracker = OrderTracker(line, keep_completed=4)
    completions = Recorder(OrderCompleted)
    line.add_observer(tracker.observe)
    line.add_observer(completions)
    for hour in range(1, 13):
        line.env.run(until=hour * 60.0)
        assert set(tracker.open) == set(line.orders)
        assert len(tracker.completed) <= 4
    assert len(completions.events) > 20
    assert list(tracker.completed) == [e.order_id for e in completions.events[-4:]]  # type: ignore[attr-defined]
    for order_id in list(tracker.completed):
        assert tracker.get(order_id) is tracker.completed[order_id]
    assert tracker.get(completions.events[0].order_id) is None  # type: ignore[attr-defined]


# --- 6. the snapshot feed -----------------------------------------------------------------------------------
def test_snapshots_show_the_machines_as_they_are_and_alarm_on_a_fault() -> None:
    """Each snapshot has a higher sequence number; every station view shows its machines' states (the worst as
    the station's state); an injected fault makes the cutter's view ``down`` with an alarm naming the station,
    and the repair clears it."""

    async def scenario() -> None:
        driver, clock, _ = make_driver(None)
        feed = Feed(driver)
        await feed.start()
        try:
            first = feed.latest
            advance(driver, clock, 30.0)
            snap = feed.build()
            assert snap.seq > first.seq
            assert snap.sim_minutes == pytest.approx(30.0)
            assert snap.stations == (
                ("cut", "Laser cutter", 1),
                ("engrave", "Engraving station", 1),
                ("pack", "Packing", 1),
            )
            (view,) = snap.lines
            for sv, st in zip(view.stations, driver.line.stations, strict=True):
                assert sv.id == st.id
                assert sv.machines == tuple(m.effective_state.label for m in st.machines)
                assert sv.state == sv.machines[0]
                assert sv.waiting == st.buffer.waiting
            assert view.alarms == ()

            advance_until(driver, clock, cutting_everywhere(driver))
            assert driver.inject_fault(driver.machine("cut"), 60.0) == "down"
            advance(driver, clock, 0.5)
            down = feed.build()
            assert down.seq > snap.seq
            cut = down.lines[0].stations[0]
            assert (cut.id, cut.down, cut.state) == ("cut", True, "down")
            assert [sv.down for sv in down.lines[0].stations[1:]] == [False, False]
            assert down.lines[0].alarms == ("Laser cutter: down",)

            advance(driver, clock, 61.0)
            repaired = feed.build()
            assert not repaired.lines[0].stations[0].down
            assert repaired.lines[0].alarms == ()
        finally:
            await feed.stop()
        assert feed.lines[0].observe not in driver.line.observers

    asyncio.run(scenario())


def test_telemetry_columns_are_aligned_and_record_the_breakdowns() -> None:
    """The telemetry history of a station has one equally long column per signal, sampled once per snapshot
    (at most once a simulated minute), with the condition between 0 and 1 and the injected breakdown listed."""

    async def scenario() -> None:
        driver, clock, _ = make_driver(None)
        feed = Feed(driver)
        await feed.start()
        try:
            for _ in range(120):
                advance(driver, clock, 2.0)
                feed.build()
            advance_until(driver, clock, cutting_everywhere(driver))
            fault_at = driver.env.now
            driver.inject_fault(driver.machine("cut"), 20.0)
            advance(driver, clock, 1.5)
            feed.build()
            feed.build()  # the same simulated minute: no second sample
            telemetry = feed.telemetry("cut")
        finally:
            await feed.stop()
        assert telemetry["station"] == "cut"
        (machine,) = telemetry["machines"]
        columns = ("minutes", "power_kw", "condition", "temperature_c", "vibration_mm_s")
        lengths = {len(machine[c]) for c in columns}
        assert lengths == {122}  # the sample at build time 0, 120 advances, one after the fault
        assert list(machine["minutes"]) == sorted(set(machine["minutes"]))
        assert all(0.0 <= c <= 1.0 for c in machine["condition"])
        assert max(machine["condition"]) > 0.0  # the cutter wears while it cuts
        assert fault_at in machine["breakdowns"]
        assert machine["power_kw"][-1] == pytest.approx(0.3)  # the cutter's power while down
        assert feed.telemetry("nope") == {"station": "nope", "machines": []}

    asyncio.run(scenario())


def test_a_twin_feed_shows_both_lines_and_the_running_money_difference() -> None:
    """With a pdm_cut twin the snapshot has two line views and a money view whose running difference covers the
    simulated hours so far at the prorated cost; an order placed through the driver is found in both lines."""

    async def scenario() -> None:
        driver, clock, alt = make_driver("pdm_cut")
        assert alt is not None
        feed = Feed(driver, alt)
        await feed.start()
        try:
            order = driver.place_order("plate", ENGRAVED)
            for i in range(12):
                advance(driver, clock, 30.0)
                snap = feed.build()
                if i == 1:  # an hour on: done, and still among the last completed orders kept
                    views = feed.order(order.id)
        finally:
            await feed.stop()
        assert [v.label for v in snap.lines] == ["Baseline", "With pdm_cut"]
        money = snap.money
        assert money is not None
        hours = driver.env.now / 60.0
        assert hours == pytest.approx(6.0)
        assert money.now.hours == pytest.approx(hours)
        assert money.investment == "pdm_cut"
        assert money.now.cost == pytest.approx(hours * 2800 / 8760)
        assert money.now.cost_funded == pytest.approx(hours * 2420 / 8760)
        assert money.now.contribution_delta == pytest.approx(snap.lines[1].contribution - snap.lines[0].contribution)
        assert len(money.minutes) == len(money.net) == len(money.net_funded) == 13  # the first snapshot too
        assert money.minutes[-1] == pytest.approx(driver.env.now)
        assert money.net[-1] == pytest.approx(money.now.net)
        assert [v.id for v in views] == [order.id, order.id]
        assert all(v.route == ("Laser cutter", "Engraving station", "Packing") for v in views)
        assert all(v.status == "done" and v.progress == 1.0 for v in views)

    asyncio.run(scenario())


def test_snapshot_kpis_count_the_working_hours_up_to_now() -> None:
    """On a 24/7 line the working hours in a snapshot equal the hours observed, even while the first machine
    has been in one state for long (here: down for five hours)."""
    driver, clock, _ = make_driver(None)
    feed = Feed(driver)
    advance_until(driver, clock, cutting_everywhere(driver))
    driver.inject_fault(driver.machine("cut"), 600.0)
    advance(driver, clock, 300.0)
    kpis = feed.build().lines[0].kpis
    assert kpis["line.working_hours"] == pytest.approx(kpis["line.observed_hours"], abs=0.01)


# --- 7. the bridge from web threads to the live loop --------------------------------------------------------
@dataclass
class LiveLoop:
    """A live loop in its own thread, with the driver, feed and bridge of a quickstart line on it."""

    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    driver: LiveDriver
    clock: FakeClock
    feed: Feed
    bridge: Bridge

    def advance(self, minutes: float) -> float:
        """Advance the simulation by ``minutes`` on the loop (through the bridge); returns the simulated now."""

        def step() -> float:
            advance(self.driver, self.clock, minutes)
            return self.driver.env.now

        return self.bridge.call(step)

    def cutter_state(self) -> MachineState:
        return self.bridge.call(lambda: self.driver.machine("cut").state)

    def stop(self) -> None:
        """Stop the feed and the loop, and wait for the thread."""
        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(self.feed.stop(), self.loop).result(5)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def live() -> Iterator[LiveLoop]:
    driver, clock, _ = make_driver(None)
    feed = Feed(driver, period=3600.0)  # no snapshot refresh in the background during a test
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-live-loop", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(feed.start(), loop).result(5)
    bridge = Bridge(loop, driver, feed, timeout=5.0, order_rate=0.0, order_burst=5)
    running = LiveLoop(loop, thread, driver, clock, feed, bridge)
    try:
        yield running
    finally:
        running.stop()
        loop.close()


def test_a_valid_order_through_the_bridge_is_placed_and_followed(live: LiveLoop) -> None:
    """A kiosk order comes back ``ok`` with its id; the order is open in the line, marked as a kiosk order, and
    the bridge finds it until (and after) it completes."""
    live.advance(20.0)
    outcome = live.bridge.place_order("plate", {"size": "small", "engraving": "yes"})
    assert outcome.ok and outcome.order_id is not None and outcome.field is None
    assert outcome.order_id in outcome.message
    assert outcome.order_id in live.driver.line.orders
    (view,) = live.bridge.order(outcome.order_id)
    assert (view.id, view.origin, view.status, view.created) == (outcome.order_id, "kiosk", "waiting", 20.0)
    for _ in range(60):
        live.advance(10.0)
        if outcome.order_id not in live.driver.line.orders:
            break
    assert outcome.order_id not in live.driver.line.orders
    (view,) = live.bridge.order(outcome.order_id)
    assert view.progress == 1.0 and view.status in ("done", "late")
    assert live.bridge.order("O999999") == ()


def test_an_invalid_order_is_an_outcome_not_an_error_and_the_line_runs_on(live: LiveLoop) -> None:
    """A bad choice, an unknown option or no product are refused with the field and a reason naming the option;
    nothing is placed, the loop keeps running and the next valid order goes through."""
    before = live.driver.line.stats.orders_created
    bad = live.bridge.place_order("plate", {"size": "huge", "engraving": "no"})
    assert (bad.ok, bad.field, bad.order_id) == (False, "options.size", None)
    assert "'huge' is not a choice of size" in bad.message and "small, large" in bad.message
    odd = live.bridge.place_order("plate", {"size": "small", "engraving": 3})
    assert (odd.ok, odd.field) == (False, "options.engraving")
    none = live.bridge.place_order(None, SMALL)
    assert (none.ok, none.field) == (False, "product")
    assert live.driver.line.stats.orders_created == before
    assert live.loop.is_running() and live.thread.is_alive()
    assert live.advance(15.0) == pytest.approx(15.0)
    good = live.bridge.place_order("plate", SMALL)
    assert good.ok and good.order_id in live.driver.line.orders


def test_orders_beyond_the_burst_are_rate_limited(live: LiveLoop) -> None:
    """With a burst of 3 and no refill, the first three orders are placed and the rest refused on ``rate``."""
    bridge = Bridge(live.loop, live.driver, live.feed, order_rate=0.0, order_burst=3)
    outcomes = [bridge.place_order("plate", SMALL) for _ in range(5)]
    assert [o.ok for o in outcomes] == [True, True, True, False, False]
    assert [o.field for o in outcomes[3:]] == ["rate", "rate"]
    assert len({o.order_id for o in outcomes[:3]}) == 3
    assert all(o.order_id in live.driver.line.orders for o in outcomes[:3])


def test_trainer_commands_change_the_line_or_explain_why_not(live: LiveLoop) -> None:
    """Pause and resume flip the driver; a speed out of range or not a number is refused and the speed kept; a
    fault puts the cutter down and a reset repairs it; an unknown station or command is refused."""
    driver = live.driver
    for value in (0.0, 1e9, "fast", float("nan")):
        refused = live.bridge.command("speed", value=value)
        assert (refused.ok, refused.field) == (False, "speed"), value
        assert driver.speed == 60.0
    assert live.bridge.command("speed", value="120").ok
    assert driver.speed == 120.0
    live.bridge.command("speed", value=60)

    paused = live.bridge.command("pause")
    assert paused.ok and driver.paused
    now = live.advance(30.0)
    assert live.advance(30.0) == now  # the simulated clock holds while paused
    assert live.bridge.command("resume").ok and not driver.paused

    for _ in range(1200):
        if live.cutter_state() is MachineState.PROCESSING:
            break
        live.advance(0.5)
    fault = live.bridge.command("fault", "cut", 0, value=45)
    assert fault.ok and fault.message == "cut#0: down."
    live.advance(0.5)
    assert live.cutter_state() is MachineState.DOWN
    again = live.bridge.command("fault", "cut", 0)
    assert (again.ok, again.field) == (False, "station") and "already down" in again.message
    reset = live.bridge.command("reset", "cut", 0)
    assert reset.ok and reset.message == "cut#0: repaired."
    live.advance(0.5)
    assert live.cutter_state() is not MachineState.DOWN

    unknown = live.bridge.command("fault", "nope", 0)
    assert (unknown.ok, unknown.field) == (False, "station") and "cut, engrave, pack" in unknown.message
    assert live.bridge.command("fault", None).field == "station"
    assert live.bridge.command("explode").field == "action"


def test_a_trainer_command_with_a_machine_that_is_not_a_number_is_an_outcome(live: LiveLoop) -> None:
    """A malformed machine index is refused like any other bad command, not raised into the web thread."""
    outcome = live.bridge.command("fault", "cut", "first")  # type: ignore[arg-type]
    assert (outcome.ok, outcome.field) == (False, "machine")


def test_a_stopped_loop_makes_calls_fail_cleanly(live: LiveLoop) -> None:
    """Once the live loop has stopped, ``call`` raises CommandError "not running" after its timeout, and the
    page-facing methods answer with a refusal, no order view or no telemetry instead of raising."""
    assert live.bridge.telemetry("cut") is not None
    live.stop()
    assert not live.loop.is_running()
    live.bridge.timeout = 0.05
    with pytest.raises(CommandError, match="not running") as info:
        live.bridge.call(lambda: 1)
    assert info.value.field == "line"
    outcome = live.bridge.place_order("plate", SMALL)
    assert (outcome.ok, outcome.field) == (False, "line")
    assert "not running" in outcome.message
    assert live.bridge.command("pause").ok is False
    assert not live.driver.paused
    assert live.bridge.order("O000001") == ()
    assert live.bridge.telemetry("cut") is None
