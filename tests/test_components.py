"""Focused, deterministic behaviour tests of the model's components, each on a small scenario.

Every test builds a small YAML scenario, runs it with a recording observer and checks one behaviour against a
value worked out by hand (deterministic cases) or a theory band derived from the standard error (random cases).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import textwrap
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simline import CommandError, Line, compute_kpis, parse_scenario, run_experiment
from simline.eventlog import COLUMNS, EventLog
from simline.events import (
    Breakdown,
    Event,
    MachineState,
    OperationFinished,
    OperationStarted,
    OrderCompleted,
    OrderCreated,
    Repaired,
    ShiftChanged,
    StateChanged,
    UnitFinished,
    UnitReworked,
    UnitScrapped,
)
from simline.kpis import Kpis
from simline.scenario import Calendar, Scenario
from simline.scenario.line import WEEKDAYS
from simline.sim.calendar import WEEK, WorkCalendar

DAY = 1440.0
EPS = 1e-6


# --- helpers -----------------------------------------------------------------------------------------------
def scenario(text: str, **sections: Any) -> Scenario:
    """Parse a YAML scenario; each keyword is appended as a top-level section (in flow style, i.e. JSON)."""
    body = textwrap.dedent(text)
    for key, value in sections.items():
        body += f"\n{key}: {json.dumps(value)}\n"
    return parse_scenario(body)


def book(*rows: dict[str, Any], due_in_hours: float = 48.0) -> dict[str, Any]:
    """An inline order book section."""
    return {"kind": "order_book", "due_in_hours": due_in_hours, "rows": list(rows)}


class Recorder:
    """Observer that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, *kinds: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kinds)]


def simulate(
    sc: Scenario, observers: Iterable[Callable[[Event], None]] = (), replication: int = 0
) -> tuple[Line, Recorder, Kpis]:
    rec = Recorder()
    line = Line(sc, replication, observers=[rec, *observers])
    line.run()
    return line, rec, compute_kpis(line)


def kpi(k: Kpis, name: str) -> float:
    value = k[name]
    assert value is not None, f"{name} is undefined"
    return value


def at(day: int, hh: int, mm: int = 0) -> float:
    """Minutes since Monday 00:00 of week 0 (day 0 is Monday)."""
    return day * DAY + hh * 60 + mm


def working_minutes(cal: WorkCalendar, t0: float, t1: float) -> float:
    """Working time between ``t0`` and ``t1`` by the calendar."""
    total, t = 0.0, t0
    while t < t1 - 1e-12:
        working, change = cal.state_at(t)
        end = min(change, t1)
        if working:
            total += end - t
        t = end
    return total


def strictly_off(cal: WorkCalendar, t: float) -> bool:
    """Off shift at ``t`` and just before it (so ``t`` is not the end of a working interval)."""
    return not cal.state_at(t)[0] and not cal.state_at(t - EPS)[0]


ONE_FAMILY = """
name: test line
products: [{family: a, price: 10, material_cost: 1}]
"""
TWO_FAMILIES = """
name: test line
products:
  - {family: a, share: 0.5, price: 10}
  - {family: b, share: 0.5, price: 12}
"""


# --- WorkCalendar ------------------------------------------------------------------------------------------
def work_calendar(**spec: Any) -> WorkCalendar:
    return WorkCalendar(Calendar.model_validate(spec))


TWO_SHIFTS = {
    "working_days": ["mon", "tue", "wed", "thu", "fri"],
    "shifts": [{"start": "06:00", "end": "14:00"}, {"start": "14:00", "end": "22:00"}],
    "breaks": [{"start": "10:00", "end": "10:30"}, {"start": "18:00", "end": "18:30"}],
}
NIGHTS = {
    "working_days": ["sun", "mon"],
    "shifts": [{"start": "22:00", "end": "06:00"}],
    "breaks": [{"start": "23:00", "end": "23:30"}],
}
THREE_SHIFTS = {
    "working_days": ["mon", "tue", "wed", "thu", "fri"],
    "shifts": [
        {"start": "06:00", "end": "14:00"},
        {"start": "14:00", "end": "22:00"},
        {"start": "22:00", "end": "06:00"},
    ],
}
EARLY_AND_NIGHT = {
    "working_days": ["mon", "tue", "wed", "thu", "fri", "sun"],
    "shifts": [{"start": "06:00", "end": "14:00"}, {"start": "22:00", "end": "06:00"}],
    "breaks": [{"start": "09:00", "end": "09:15"}, {"start": "23:45", "end": "00:15"}],
}


@pytest.mark.parametrize(
    ("t", "working", "change"),
    [
        (at(0, 0), False, at(0, 6)),
        (at(0, 5, 59), False, at(0, 6)),
        (at(0, 6), True, at(0, 10)),
        (at(0, 10), False, at(0, 10, 30)),
        (at(0, 10, 15), False, at(0, 10, 30)),
        (at(0, 10, 30), True, at(0, 18)),  # the 14:00 shift change is seamless
        (at(0, 13, 59), True, at(0, 18)),
        (at(0, 18, 30), True, at(0, 22)),
        (at(0, 22), False, at(1, 6)),
        (at(4, 21, 59), True, at(4, 22)),
        (at(4, 22), False, at(7, 6)),  # Friday evening to Monday morning
        (at(5, 12), False, at(7, 6)),
        (at(6, 23, 59), False, at(7, 6)),
        (at(23, 10, 15), False, at(23, 10, 30)),  # a Tuesday three weeks on
    ],
)
def test_calendar_two_shifts_with_breaks(t: float, working: bool, change: float) -> None:
    cal = work_calendar(**TWO_SHIFTS)
    assert cal.state_at(t) == (working, pytest.approx(change))


def test_calendar_two_shifts_share() -> None:
    cal = work_calendar(**TWO_SHIFTS)
    assert cal.share_working() == pytest.approx(5 * 15 / 168)
    assert not cal.always_on


@pytest.mark.parametrize(
    ("t", "working", "change"),
    [
        (at(0, 0), True, at(0, 6)),  # Sunday's night shift wraps into Monday of week 0
        (at(0, 5, 59), True, at(0, 6)),
        (at(0, 6), False, at(0, 22)),
        (at(0, 22), True, at(0, 23)),
        (at(0, 23, 10), False, at(0, 23, 30)),
        (at(1, 3), True, at(1, 6)),  # Monday's night shift runs past midnight into Tuesday
        (at(1, 6), False, at(6, 22)),
        (at(6, 22, 30), True, at(6, 23)),
        (at(6, 23, 45), True, at(7, 6)),  # Sunday night into next Monday: across the week's end
        (at(13, 23, 45), True, at(14, 6)),
        (at(14, 2), True, at(14, 6)),
    ],
)
def test_calendar_night_shift_wraps_midnight_and_week(t: float, working: bool, change: float) -> None:
    cal = work_calendar(**NIGHTS)
    assert cal.state_at(t) == (working, pytest.approx(change))


def test_calendar_night_shift_share() -> None:
    assert work_calendar(**NIGHTS).share_working() == pytest.approx(2 * 7.5 / 168)


def test_calendar_three_shifts_merge_into_one_interval() -> None:
    cal = work_calendar(**THREE_SHIFTS)
    assert cal.state_at(at(0, 0)) == (False, at(0, 6))
    assert cal.state_at(at(2, 12)) == (True, at(5, 6))  # Monday 06:00 to Saturday 06:00 without a gap
    assert cal.share_working() == pytest.approx(5 * 24 / 168)


def test_calendar_always_on() -> None:
    cal = WorkCalendar(None)
    assert cal.always_on
    assert cal.state_at(12345.0) == (True, math.inf)
    assert cal.share_working() == 1.0


def _reference_working(spec: dict[str, Any], t: float) -> bool:
    """Brute force: a shift belongs to the day it starts on; breaks are cut from shifts on the same day."""
    cal = Calendar.model_validate(spec)
    tw = t % WEEK
    for back in (0, 1):
        day = int(tw // DAY) - back
        start_of_day = day * DAY
        if WEEKDAYS[day % 7] not in cal.working_days:
            continue
        for shift in cal.shifts:
            s0, s1 = shift.minutes()
            if start_of_day + s0 <= tw < start_of_day + s1 and not any(
                start_of_day + b0 <= tw < start_of_day + b1 for b0, b1 in (b.minutes() for b in cal.breaks)
            ):
                return True
    return False


@settings(max_examples=300, deadline=None)
@given(
    spec=st.sampled_from([TWO_SHIFTS, NIGHTS, THREE_SHIFTS, EARLY_AND_NIGHT]),
    t=st.floats(min_value=0, max_value=5 * WEEK, allow_nan=False),
)
def test_calendar_matches_brute_force(spec: dict[str, Any], t: float) -> None:
    cal = work_calendar(**spec)
    working, change = cal.state_at(t)
    assert working == _reference_working(spec, t)
    assert change > t
    assert _reference_working(spec, (t + change) / 2) == working  # constant until the change...
    assert _reference_working(spec, change) != working  # ...and different from then on


def test_calendar_share_matches_brute_force() -> None:
    for spec in (TWO_SHIFTS, NIGHTS, THREE_SHIFTS, EARLY_AND_NIGHT):
        minutes = sum(_reference_working(spec, m + 0.5) for m in range(int(WEEK)))
        assert work_calendar(**spec).share_working() == pytest.approx(minutes / WEEK), spec


def test_calendar_break_after_midnight_in_a_night_shift() -> None:
    text = ONE_FAMILY + textwrap.dedent(
        """
        orders: {kind: poisson, rate_per_hour: 1}
        stations: [{id: s, processing: {base: 1}}]
        routing: [{station: s}]
        calendar:
          shifts: [{start: "22:00", end: "06:00"}]
          breaks: [{start: "02:00", end: "02:30"}]
        experiment: {horizon_hours: 24}
        """
    )
    cal = WorkCalendar(parse_scenario(text).calendar)  # accepted by validation
    assert cal.state_at(at(1, 2, 15)) == (False, at(1, 2, 30))  # Tuesday 02:15, in Monday's night shift
    assert cal.share_working() == pytest.approx(5 * 7.5 / 168)


# --- shifts in the model -----------------------------------------------------------------------------------
SHIFT_CAL = {
    "working_days": ["mon", "tue", "wed", "thu", "fri"],
    "shifts": [{"start": "06:00", "end": "14:00"}, {"start": "22:00", "end": "06:00"}],
    "breaks": [{"start": "10:00", "end": "10:30"}],
}


def shift_scenario(**changes: Any) -> Scenario:
    sections: dict[str, Any] = {
        "orders": {"kind": "poisson", "rate_per_hour": 3},
        "stations": [{"id": "s", "processing": {"base": 5}}],
        "routing": [{"station": "s"}],
        "calendar": SHIFT_CAL,
        "experiment": {"horizon_hours": 336, "seed": 3},
    }
    return scenario(ONE_FAMILY, **(sections | changes))


def test_processing_consumes_only_working_time() -> None:
    line, rec, _ = simulate(shift_scenario())
    cal = line.calendar
    starts = {e.unit_id: e.time for e in rec.of(OperationStarted)}
    finishes = rec.of(OperationFinished)
    assert len(finishes) > 100
    for e in finishes:
        assert working_minutes(cal, starts[e.unit_id], e.time) == pytest.approx(5.0, abs=1e-6), e
        assert not strictly_off(cal, e.time), f"unit {e.unit_id} finished off shift at {e.time}"


def test_no_operation_starts_off_shift() -> None:
    line, rec, _ = simulate(shift_scenario())
    off = [e for e in rec.of(OperationStarted) if strictly_off(line.calendar, e.time)]
    assert off == []


def test_shift_changed_events_follow_the_calendar() -> None:
    line, rec, _ = simulate(shift_scenario())
    cal = line.calendar
    shifts = rec.of(ShiftChanged)
    # every minute at which the calendar switches, by brute force
    edges = [m for m in range(1, 336 * 60) if cal.state_at(m)[0] != cal.state_at(m - 1)[0]]
    assert [e.time for e in shifts] == pytest.approx(edges)
    for e in shifts:
        assert cal.state_at(e.time)[0] == e.working
    assert [e.working for e in shifts] == [i % 2 == 0 for i in range(len(shifts))]  # starts off shift at 00:00
    off_states = {e.time for e in rec.of(StateChanged) if e.state == MachineState.OFF_SHIFT}
    assert off_states == {e.time for e in shifts if not e.working}


def test_off_shift_share_equals_calendar_off_share_for_a_busy_machine() -> None:
    sc = shift_scenario(
        orders=book({"release_hour": 0, "family": "a", "quantity": 10000}),
        stations=[{"id": "s", "processing": {"base": 1}}],
    )
    line, _, k = simulate(sc)
    share = line.calendar.share_working()
    assert share == pytest.approx(5 * 15.5 / 168)
    assert kpi(k, "stations.s.state_share.off_shift") == pytest.approx(1 - share, abs=1e-12)
    assert kpi(k, "stations.s.state_share.processing") == pytest.approx(share, abs=1e-12)
    assert kpi(k, "stations.s.processed") == 2 * 5 * 15.5 * 60  # one unit per working minute
    assert kpi(k, "stations.s.availability") == pytest.approx(1.0)


# --- finite buffers and blocking ---------------------------------------------------------------------------
def blocking_scenario(buffer: int, units: int = 20) -> Scenario:
    return scenario(
        ONE_FAMILY,
        orders=book({"release_hour": 0, "family": "a", "quantity": units}),
        stations=[
            {"id": "up", "processing": {"base": 1}},
            {"id": "down", "buffer": buffer, "processing": {"base": 3}},
        ],
        routing=[{"station": "up"}, {"station": "down"}],
        experiment={"horizon_hours": 1.5},
    )


class BufferWatch:
    """Observer that records the largest content of each buffer seen at any event."""

    def __init__(self) -> None:
        self.line: Line | None = None
        self.max: dict[str, int] = defaultdict(int)

    def __call__(self, _: Event) -> None:
        assert self.line is not None
        for st_ in self.line.stations:
            self.max[st_.id] = max(self.max[st_.id], len(st_.buffer))


def run_watched(sc: Scenario) -> tuple[Line, Recorder, Kpis, BufferWatch]:
    watch = BufferWatch()
    rec = Recorder()
    line = Line(sc, observers=[rec, watch])
    watch.line = line
    line.run()
    return line, rec, compute_kpis(line), watch


def test_buffer_zero_is_a_pure_blocking_line() -> None:
    _, rec, k, watch = run_watched(blocking_scenario(buffer=0))
    # the slow station is busy from t=1 on; the fast one waits 2 min with each unit from the 2nd to the 20th
    assert [e.time for e in rec.of(UnitFinished)] == pytest.approx([1 + 3 * i for i in range(1, 21)])
    assert kpi(k, "stations.up.state_share.blocked") == pytest.approx(19 * 2 / 90)
    assert kpi(k, "stations.up.state_share.processing") == pytest.approx(20 / 90)
    assert kpi(k, "stations.down.buffer_max") == 0
    assert watch.max["down"] == 0
    blocked = [e for e in rec.of(StateChanged) if e.station == "up" and e.state == MachineState.BLOCKED]
    assert len(blocked) == 19


def test_buffer_two_limits_content_and_blocks_upstream() -> None:
    _, rec, k, watch = run_watched(blocking_scenario(buffer=2))
    _, _, k0, _ = run_watched(blocking_scenario(buffer=0))
    assert [e.time for e in rec.of(UnitFinished)] == pytest.approx([1 + 3 * i for i in range(1, 21)])
    assert kpi(k, "stations.down.buffer_max") == 2
    assert watch.max["down"] == 2
    blocked = kpi(k, "stations.up.state_share.blocked")
    assert 0 < blocked < kpi(k0, "stations.up.state_share.blocked")


def test_random_line_never_overfills_its_buffers() -> None:
    caps = {"a": 3, "b": 0, "c": 1}
    sc = scenario(
        ONE_FAMILY,
        orders={"kind": "poisson", "rate_per_hour": 20},
        stations=[
            {"id": "a", "buffer": 3, "processing": {"base": {"kind": "exponential", "mean": 2.5}}},
            {"id": "b", "buffer": 0, "machines": 2, "processing": {"base": {"kind": "exponential", "mean": 5.5}}},
            {"id": "c", "buffer": 1, "processing": {"base": {"kind": "uniform", "low": 1, "high": 4}}},
        ],
        routing=[{"station": "a"}, {"station": "b"}, {"station": "c"}],
        transport={"kind": "fixed", "time": {"kind": "uniform", "low": 0, "high": 2}},
        experiment={"horizon_hours": 100, "seed": 5},
    )
    line, _, k, watch = run_watched(sc)
    for sid, cap in caps.items():
        assert watch.max[sid] <= cap
        assert kpi(k, f"stations.{sid}.buffer_max") <= cap
    assert kpi(k, "stations.a.state_share.blocked") > 0
    assert kpi(k, "line.units_finished") > 500
    assert line.backlog("a") > 0  # the first buffer is full: released units wait in the line's backlog


# --- dispatch rules ----------------------------------------------------------------------------------------
def dispatch_scenario(rule: str, rows: list[dict[str, Any]], **station: Any) -> Scenario:
    return scenario(
        TWO_FAMILIES,
        orders=book(*rows),
        stations=[{"id": "s", "dispatch": rule, "processing": {"base": 10}, **station}],
        routing=[{"station": "s"}],
        experiment={"horizon_hours": 100},
    )


EDD_ROWS = [
    {"order_id": "first", "release_hour": 0, "due_hour": 90, "family": "a"},
    *(
        {"order_id": f"d{i}", "release_hour": 0.05, "due_hour": due, "family": "a"}
        for i, due in enumerate([50, 10, 40, 20, 30, 20], start=1)
    ),
]


def test_edd_processes_the_earliest_due_first() -> None:
    _, rec, _ = simulate(dispatch_scenario("edd", EDD_ROWS))
    order = [e.order_id for e in rec.of(OperationStarted)]
    assert order == ["first", "d2", "d4", "d6", "d5", "d3", "d1"]  # ties (d4, d6) keep arrival order


def test_fifo_processes_in_arrival_order() -> None:
    _, rec, _ = simulate(dispatch_scenario("fifo", EDD_ROWS))
    assert [e.order_id for e in rec.of(OperationStarted)] == ["first", "d1", "d2", "d3", "d4", "d5", "d6"]


def test_fifo_preserves_order_through_a_line() -> None:
    sc = scenario(
        ONE_FAMILY,
        orders={"kind": "poisson", "rate_per_hour": 10},
        stations=[
            {"id": "a", "processing": {"base": {"kind": "exponential", "mean": 5}}},
            {"id": "b", "buffer": 2, "processing": {"base": {"kind": "exponential", "mean": 5}}},
        ],
        routing=[{"station": "a"}, {"station": "b"}],
        transport={"kind": "fixed", "time": 2},
        experiment={"horizon_hours": 50, "seed": 9},
    )
    _, rec, _ = simulate(sc)
    for sid in ("a", "b"):
        ids = [e.unit_id for e in rec.of(OperationStarted) if e.station == sid]
        assert len(ids) > 100
        assert ids == sorted(ids), sid


ALTERNATING = [{"release_hour": 0, "family": "ab"[i % 2]} for i in range(20)]
SETUP = {"setup": {"default": 10, "matrix": {"a": {"b": 10}, "b": {"a": 10}}}}


def test_same_setup_needs_fewer_setups_than_fifo() -> None:
    _, rec_fifo, k_fifo = simulate(dispatch_scenario("fifo", ALTERNATING, **SETUP))
    _, rec_same, k_same = simulate(dispatch_scenario("same_setup", ALTERNATING, **SETUP))
    assert kpi(k_fifo, "stations.s.setups") == 19
    assert kpi(k_same, "stations.s.setups") == 1
    families = {e.order_id: r["family"] for e, r in zip(rec_same.of(OrderCreated), ALTERNATING, strict=True)}
    sequence = [families[e.order_id] for e in rec_same.of(OperationStarted)]
    assert sequence == ["a"] * 10 + ["b"] * 10
    assert len(rec_fifo.of(OperationStarted)) == len(rec_same.of(OperationStarted)) == 20


# --- setups ------------------------------------------------------------------------------------------------
def test_setups_only_on_family_change_with_matrix_and_default() -> None:
    rows = [{"release_hour": 0, "family": f} for f in "aabba"]
    sc = scenario(
        TWO_FAMILIES,
        orders=book(*rows),
        stations=[
            {"id": "s", "processing": {"base": 1}, "setup": {"default": 5, "matrix": {"a": {"b": 20}}}},
        ],
        routing=[{"station": "s"}],
        experiment={"horizon_hours": 1},
    )
    _, rec, k = simulate(sc)
    # a (no setup: first unit), a (same family), a->b (matrix: 20), b, b->a (default: 5)
    assert [e.time for e in rec.of(OperationStarted)] == pytest.approx([0, 1, 22, 23, 29])
    setups = [e.time for e in rec.of(StateChanged) if e.state == MachineState.SETUP]
    assert setups == pytest.approx([2, 24])
    assert kpi(k, "stations.s.setups") == 2
    assert kpi(k, "stations.s.state_share.setup") * 60 == pytest.approx(25)


def test_no_setup_spec_means_no_setups() -> None:
    _, rec, k = simulate(dispatch_scenario("fifo", ALTERNATING))
    assert kpi(k, "stations.s.setups") == 0
    assert not [e for e in rec.of(StateChanged) if e.state == MachineState.SETUP]


# --- failures ----------------------------------------------------------------------------------------------
def failure_scenario(machines: int = 1, technicians: int | None = None, **failures: Any) -> Scenario:
    sections: dict[str, Any] = {
        "orders": book({"release_hour": 0, "family": "a", "quantity": 10000}),
        "stations": [{"id": "m", "machines": machines, "processing": {"base": 2}, "failures": failures}],
        "routing": [{"station": "m"}],
        "experiment": {"horizon_hours": 400, "seed": 11},
    }
    if technicians is not None:
        sections["maintenance"] = {"technicians": technicians}
    return scenario(ONE_FAMILY, **sections)


def test_mtbf_and_mttr_match_their_distributions() -> None:
    sc = failure_scenario(
        time_between={"kind": "exponential", "mean": 30},
        response_time=5,
        repair_time={"kind": "exponential", "mean": 20},
    )
    _, rec, k = simulate(sc)
    n = kpi(k, "stations.m.failures")
    assert n > 300
    assert kpi(k, "stations.m.state_share.idle") < 0.01  # always busy: the operating time is long
    # failures ~ Poisson(operating time / 30): the relative standard error of the observed MTBF is 1/sqrt(n)
    assert kpi(k, "stations.m.mtbf_h") == pytest.approx(30 / 60, rel=4 / math.sqrt(n))
    # down time = 5 + Exp(20): standard error 20/sqrt(n)
    assert kpi(k, "stations.m.mttr_h") * 60 == pytest.approx(25, abs=4 * 20 / math.sqrt(n))
    downtimes = [e.downtime for e in rec.of(Repaired)]
    assert len(downtimes) == len(rec.of(Breakdown)) or len(downtimes) == len(rec.of(Breakdown)) - 1
    assert min(downtimes) >= 5 - 1e-9


def test_breakdowns_happen_only_while_processing() -> None:
    sc = failure_scenario(time_between={"kind": "exponential", "mean": 30}, repair_time=10)
    _, rec, _ = simulate(sc)
    states: list[MachineState] = []
    for e in rec.events:
        if isinstance(e, StateChanged):
            states.append(e.state)
        elif isinstance(e, Breakdown):
            # the machine goes DOWN (announced just before the breakdown) from PROCESSING
            assert states[-2:] == [MachineState.PROCESSING, MachineState.DOWN], e
    assert rec.of(Breakdown)


def test_repairs_queue_for_a_single_technician() -> None:
    failures = {"time_between": {"kind": "exponential", "mean": 30}, "repair_time": 20, "needs_technician": True}
    _, rec1, k1 = simulate(failure_scenario(machines=2, technicians=1, **failures))
    _, rec2, _ = simulate(failure_scenario(machines=2, technicians=2, **failures))
    down1 = [e.downtime for e in rec1.of(Repaired)]
    down2 = [e.downtime for e in rec2.of(Repaired)]
    assert len(down1) > 100
    assert min(down1) == pytest.approx(20)
    assert sum(d > 20 + 1e-6 for d in down1) > 10  # some repairs waited for the technician
    assert down2 == pytest.approx([20.0] * len(down2))  # two technicians: nobody waits
    assert kpi(k1, "stations.m.mttr_h") * 60 > 20
    # one technician: the repair windows [end - 20, end] never overlap
    windows = sorted((e.time - 20, e.time) for e in rec1.of(Repaired))
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start >= end - 1e-9


# --- quality and inspection --------------------------------------------------------------------------------
def quality_scenario(defect: float, detection: float, orders: int = 100, quantity: int = 50) -> Scenario:
    return scenario(
        ONE_FAMILY,
        orders=book(*({"release_hour": i * 0.5, "family": "a", "quantity": quantity} for i in range(orders))),
        stations=[
            {
                "id": "s",
                "processing": {"base": 0.5},
                "quality": {"defect_probability": defect},
                "inspection": {"detection_rate": detection, "on_reject": "scrap"},
            }
        ],
        routing=[{"station": "s"}],
        experiment={"horizon_hours": 200, "seed": 21},
    )


def test_scrap_rate_is_defect_probability_times_detection_rate() -> None:
    p, d = 0.2, 0.5
    _, rec, k = simulate(quality_scenario(p, d))
    out = kpi(k, "line.units_finished") + kpi(k, "line.units_scrapped")
    expected = p * d
    se = math.sqrt(expected * (1 - expected) / out)
    assert kpi(k, "line.scrap_rate") == pytest.approx(expected, abs=4 * se)
    escaped = p * (1 - d) / (1 - p * d)  # defects among the finished units
    finished = kpi(k, "line.units_finished")
    assert kpi(k, "line.escaped_defect_rate") == pytest.approx(escaped, abs=4 * math.sqrt(escaped / finished))
    # every scrapped unit is replaced, so the whole book is delivered
    assert kpi(k, "line.orders_completed") == kpi(k, "line.orders_created") == 100
    assert finished == 100 * 50
    assert kpi(k, "line.units_released") == finished + kpi(k, "line.units_scrapped")
    assert len(rec.of(UnitScrapped)) == kpi(k, "line.units_scrapped") == kpi(k, "stations.s.rejected")
    assert {e.order_id for e in rec.of(OrderCompleted)} == {e.order_id for e in rec.of(OrderCreated)}


def rework_scenario(max_rework: int) -> Scenario:
    return scenario(
        ONE_FAMILY,
        orders=book(*({"release_hour": i, "family": "a", "quantity": 50} for i in range(40))),
        stations=[
            {"id": "prep", "processing": {"base": 0.2}},
            {"id": "fix", "processing": {"base": 0.5}, "quality": {"defect_probability": 0.3}},
            {
                "id": "check",
                "processing": {"base": 0.5},
                "inspection": {
                    "detection_rate": 1.0,
                    "on_reject": "rework",
                    "rework_to": "fix",
                    "max_rework": max_rework,
                },
            },
        ],
        routing=[{"station": "prep"}, {"station": "fix"}, {"station": "check"}],
        experiment={"horizon_hours": 200, "seed": 8},
    )


def test_rework_sends_units_back_and_is_bounded() -> None:
    _, rec, k = simulate(rework_scenario(max_rework=2))
    reworks = rec.of(UnitReworked)
    assert len(reworks) > 300
    assert {(e.station, e.to_station) for e in reworks} == {("check", "fix")}
    # after a rework the unit's next operation is at the rework station
    next_station: dict[int, str] = {}
    for e in rec.events:
        if isinstance(e, UnitReworked):
            next_station[e.unit_id] = "pending"
        elif isinstance(e, OperationStarted) and next_station.get(e.unit_id) == "pending":
            next_station[e.unit_id] = e.station
            assert e.station == "fix", e
    per_unit = Counter(e.unit_id for e in reworks)
    assert max(per_unit.values()) == 2
    scrapped = [e.unit_id for e in rec.of(UnitScrapped)]
    assert scrapped
    assert all(per_unit[u] == 2 for u in scrapped)  # scrapped only once the rework budget is spent
    assert kpi(k, "line.units_reworked") == len(reworks)
    # prep is never revisited: it sees each released unit once
    assert kpi(k, "stations.prep.processed") == kpi(k, "line.units_released")
    assert kpi(k, "line.units_good") == kpi(k, "line.units_finished") == 2000  # detection 1: no escapes
    assert kpi(k, "line.orders_completed") == 40
    # expected reworks per unit leaving the line: 0.3 + 0.3^2 (the third rejection scraps)
    out = kpi(k, "line.units_finished") + kpi(k, "line.units_scrapped")
    assert len(reworks) / out == pytest.approx(0.39, abs=0.05)
    assert kpi(k, "line.scrap_rate") == pytest.approx(0.027, abs=0.015)
    assert kpi(k, "line.first_pass_yield") == pytest.approx(0.7, abs=0.04)


def test_max_rework_zero_scraps_every_rejected_unit() -> None:
    _, rec, k = simulate(rework_scenario(max_rework=0))
    assert rec.of(UnitReworked) == []
    assert kpi(k, "line.units_scrapped") == kpi(k, "stations.check.rejected") > 0
    assert kpi(k, "line.orders_completed") == 40


def test_rework_loop_with_finite_buffers_keeps_flowing() -> None:
    text = ONE_FAMILY + textwrap.dedent(
        """
        orders: {kind: poisson, rate_per_hour: 20}
        stations:
          - {id: fix, buffer: 1, processing: {base: 2}, quality: {defect_probability: 0.5}}
          - id: check
            buffer: 1
            processing: {base: 2}
            inspection: {detection_rate: 1, on_reject: rework, rework_to: fix, max_rework: 3}
        routing: [{station: fix}, {station: check}]
        experiment: {horizon_hours: 100}
        """
    )
    _, _, k = simulate(parse_scenario(text))
    # capacity is 30 units/h at check before rework; even at half of it the line makes well over 500 units
    assert kpi(k, "line.units_finished") > 500


# --- routing with `when` -----------------------------------------------------------------------------------
ENGRAVING = """
name: conditional routing
products:
  - family: plate
    price: 45
    options:
      size: {choices: {small: 0.6, large: 0.4}}
      engraving: {choices: {yes: 0.3, no: 0.7}}
orders: {kind: poisson, rate_per_hour: 6, quantity: 2}
stations:
  - {id: cut, processing: {base: {kind: uniform, low: 3, high: 5}}}
  - {id: engrave, processing: {base: 4}}
  - {id: pack, processing: {base: 2}}
routing:
  - station: cut
  - station: engrave
    when: {engraving: [yes], size: [large]}
  - station: pack
experiment: {horizon_hours: 200, seed: 4}
"""


def test_only_units_with_the_option_visit_the_conditional_station() -> None:
    _, rec, _ = simulate(parse_scenario(ENGRAVING))
    options = {e.order_id: dict(kv.split("=") for kv in e.options.split(";")) for e in rec.of(OrderCreated)}
    wanted = {oid for oid, o in options.items() if o["engraving"] == "yes" and o["size"] == "large"}
    assert 0 < len(wanted) < len(options)
    engraved = [e for e in rec.of(OperationStarted) if e.station == "engrave"]
    assert {e.order_id for e in engraved} <= wanted
    visited = Counter(e.unit_id for e in engraved)
    assert max(visited.values()) == 1
    finished = rec.of(UnitFinished)
    for e in finished:
        assert (e.unit_id in visited) == (e.order_id in wanted), e
    assert sum(e.order_id in wanted for e in finished) == sum(e.unit_id in visited for e in finished)


# --- transport pool ----------------------------------------------------------------------------------------
def transport_scenario(carriers: int) -> Scenario:
    return scenario(
        ONE_FAMILY,
        orders=book({"release_hour": 0, "family": "a", "quantity": 300}),
        stations=[{"id": "a", "processing": {"base": 1}}, {"id": "b", "processing": {"base": 1}}],
        routing=[{"station": "a"}, {"station": "b"}],
        transport={"kind": "pool", "size": carriers, "time": 10},
        experiment={"horizon_hours": 10},
    )


def test_one_carrier_limits_throughput() -> None:
    _, rec, k = simulate(transport_scenario(1))
    throughput = kpi(k, "line.throughput_per_hour")
    assert throughput <= 60 / 10  # one move per unit, ten minutes per move
    assert throughput == pytest.approx(5.9)  # unit k leaves b at 10 k + 2
    assert [e.time for e in rec.of(UnitFinished)][:3] == pytest.approx([12, 22, 32])
    assert kpi(k, "stations.a.state_share.blocked") > 0.8  # a waits for the carrier
    done = {e.unit_id: e.time for e in rec.of(OperationFinished) if e.station == "a"}
    for e in rec.of(OperationStarted):
        if e.station == "b":
            assert e.time - done[e.unit_id] >= 10 - 1e-9


def test_more_carriers_more_throughput() -> None:
    _, _, k1 = simulate(transport_scenario(1))
    _, _, k3 = simulate(transport_scenario(3))
    assert kpi(k3, "line.throughput_per_hour") > 2.5 * kpi(k1, "line.throughput_per_hour")
    assert kpi(k3, "line.throughput_per_hour") <= 3 * 6


# --- order book --------------------------------------------------------------------------------------------
def test_order_book_releases_ids_and_due_dates() -> None:
    rows = [
        {"order_id": "late-1", "release_hour": 0, "due_hour": 0, "family": "a"},
        {"order_id": "ok-2", "release_hour": 1.5, "due_hour": 10, "family": "a", "quantity": 3},
        {"release_hour": 3, "family": "a"},  # no id, no due: due 5 h after release
        {"order_id": "ok-4", "release_hour": 2.25, "due_hour": 20, "family": "a"},
    ]
    sc = scenario(
        ONE_FAMILY,
        orders=book(*rows, due_in_hours=5),
        stations=[{"id": "s", "processing": {"base": 6}}],
        routing=[{"station": "s"}],
        experiment={"horizon_hours": 24},
    )
    _, rec, k = simulate(sc)
    created = rec.of(OrderCreated)
    assert [(e.order_id, e.time, e.due, e.quantity) for e in created] == [
        ("late-1", 0, 0, 1),
        ("ok-2", 90, 600, 3),
        ("ok-4", 135, 1200, 1),
        (created[3].order_id, 180, 480, 1),
    ]
    assert created[3].order_id not in {"late-1", "ok-2", "ok-4"}
    completed = {e.order_id: e for e in rec.of(OrderCompleted)}
    assert set(completed) == {e.order_id for e in created}
    assert not completed["late-1"].on_time
    assert completed["ok-2"].on_time
    assert completed["ok-2"].lead_time == pytest.approx(18)
    assert kpi(k, "line.on_time_delivery") == pytest.approx(3 / 4)
    assert kpi(k, "line.orders_completed") == 4


def test_duplicate_order_ids_are_refused_or_completed() -> None:
    from simline import ScenarioError

    text = ONE_FAMILY + textwrap.dedent(
        """
        orders:
          kind: order_book
          rows:
            - {order_id: X, release_hour: 0, family: a}
            - {order_id: X, release_hour: 0, family: a}
        stations: [{id: s, processing: {base: 5}}]
        routing: [{station: s}]
        experiment: {horizon_hours: 1}
        """
    )
    try:
        sc = parse_scenario(text)
    except ScenarioError:
        return  # refusing duplicate ids is fine
    _, _, k = simulate(sc)
    assert kpi(k, "line.orders_completed") == 2


# --- event log ---------------------------------------------------------------------------------------------
def small_line(horizon_hours: float = 24) -> Scenario:
    sc = parse_scenario(ENGRAVING)
    return sc.model_copy(update={"experiment": sc.experiment.model_copy(update={"horizon_hours": horizon_hours})})


def count_events(sc: Scenario, replication: int) -> Counter[str]:
    _, rec, _ = simulate(sc, replication=replication)
    return Counter(e.kind for e in rec.events)


def test_event_log_csv_has_the_columns_and_a_row_per_event(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    rec = Recorder()
    with EventLog(path, replication=7) as log:
        Line(small_line(), observers=[rec, log]).run()
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == COLUMNS
        rows = list(reader)
    assert len(rows) == len(rec.events) == log.count > 100
    assert [r["event"] for r in rows] == [e.kind for e in rec.events]
    assert {r["replication"] for r in rows} == {"7"}
    assert {"replication", "event", "time", "station", "machine", "unit_id", "order_id", "state"} <= set(COLUMNS)
    first_state = next(r for r, e in zip(rows, rec.events, strict=True) if isinstance(e, StateChanged))
    assert first_state["state"] in {s.label for s in MachineState}


def test_event_log_parquet_has_the_columns_and_a_row_per_event(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "log.parquet"
    rec = Recorder()
    with EventLog(path) as log:
        Line(small_line(), observers=[rec, log]).run()
    table = pq.read_table(path)
    assert table.column_names == COLUMNS
    assert table.num_rows == len(rec.events) > 100
    assert table.column("event").to_pylist() == [e.kind for e in rec.events]
    assert table.column("time").to_pylist() == [e.time for e in rec.events]


@pytest.mark.parametrize(("suffix", "jobs"), [(".csv", 1), (".parquet", 1), (".csv", 2)])
def test_run_experiment_merges_replication_logs(tmp_path: Path, suffix: str, jobs: int) -> None:
    sc = small_line(horizon_hours=12)
    path = tmp_path / f"events{suffix}"
    result = run_experiment(sc, replications=3, jobs=jobs, events=path)
    assert result.replications == 3
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == COLUMNS
            pairs = [(int(r["replication"]), r["event"]) for r in reader]
    else:
        pq = pytest.importorskip("pyarrow.parquet")
        table = pq.read_table(path)
        assert table.column_names == COLUMNS
        pairs = list(zip(table.column("replication").to_pylist(), table.column("event").to_pylist(), strict=True))
    assert sorted({r for r, _ in pairs}) == [0, 1, 2]
    for r in range(3):
        assert Counter(kind for rr, kind in pairs if rr == r) == count_events(sc, r)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # part files removed


def test_results_do_not_depend_on_jobs() -> None:
    sc = small_line(horizon_hours=12)
    one = run_experiment(sc, replications=2, jobs=1)
    two = run_experiment(sc, replications=2, jobs=2)
    assert one.runs == two.runs


# --- commands to a running line ----------------------------------------------------------------------------
@pytest.fixture
def plate_line() -> Line:
    return Line(parse_scenario(ENGRAVING))


@pytest.mark.parametrize(
    ("family", "options", "quantity", "field", "words"),
    [
        ("mug", {"size": "small", "engraving": "no"}, 1, "family", ["'mug'", "plate"]),
        ("plate", {"size": "small", "engraving": "no", "colour": "red"}, 1, "options.colour", ["size", "engraving"]),
        ("plate", {"size": "huge", "engraving": "no"}, 1, "options.size", ["'huge'", "small", "large"]),
        ("plate", {"size": "small"}, 1, "options", ["engraving"]),
        ("plate", {"size": "small", "engraving": "no"}, 0, "quantity", ["0"]),
        ("plate", {"size": "small", "engraving": "no"}, 10_001, "quantity", ["10001"]),
    ],
)
def test_check_order_names_the_field_and_allowed_values(
    plate_line: Line, family: str, options: dict[str, str], quantity: int, field: str, words: list[str]
) -> None:
    with pytest.raises(CommandError) as info:
        plate_line.check_order(family, options, quantity)
    assert info.value.field == field
    for word in words:
        assert word in info.value.reason
    assert str(info.value).startswith(f"{field}: ")


def test_check_order_accepts_a_valid_order(plate_line: Line) -> None:
    plate_line.check_order("plate", {"size": "large", "engraving": "yes"}, 10_000)


def test_place_order_mid_run_completes() -> None:
    rec = Recorder()
    line = Line(parse_scenario(ENGRAVING), observers=[rec])
    line.run(60.0)
    assert line.env.now == 60.0
    options = {"size": "large", "engraving": "yes"}
    line.check_order("plate", options, 3)
    order = line.place_order("plate", options, 3, due=60.0 + 8 * 60, order_id="visitor-1")
    assert order.id == "visitor-1"
    assert [e.time for e in rec.of(OrderCreated) if e.order_id == "visitor-1"] == [60.0]
    line.run()
    done = [e for e in rec.of(OrderCompleted) if e.order_id == "visitor-1"]
    assert len(done) == 1
    assert "visitor-1" not in line.orders
    engraved = {e.unit_id for e in rec.of(OperationStarted) if e.station == "engrave" and e.order_id == "visitor-1"}
    assert len(engraved) == 3
