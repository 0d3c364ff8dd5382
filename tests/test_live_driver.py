"""The live driver: pacing to a (fake) wall clock, pause/resume, speed changes, commands between steps."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simline import CommandError, load_scenario
from simline.events import MachineState
from simline.live.driver import LiveDriver
from simline.live.orders import parse_options
from simline.sim import Line

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(speed: float = 60.0) -> tuple[LiveDriver, FakeClock]:
    clock = FakeClock()
    line = Line(load_scenario(QUICKSTART), live=True)
    return LiveDriver(line, speed=speed, clock=clock, slice_seconds=10.0), clock


def test_simulated_time_follows_the_wall_clock_times_speed() -> None:
    driver, clock = make(speed=120.0)  # two simulated minutes per wall second
    clock.t += 30.0
    driver.advance()
    assert driver.env.now == pytest.approx(60.0)
    clock.t += 0.5
    driver.advance()
    assert driver.env.now == pytest.approx(61.0)
    assert driver.lag.current == 0.0


def test_pause_holds_the_clock_and_resume_continues_from_there() -> None:
    driver, clock = make(speed=60.0)
    clock.t += 10
    driver.advance()
    driver.pause()
    clock.t += 100
    driver.advance()
    assert driver.env.now == pytest.approx(10.0)
    driver.resume()
    clock.t += 5
    driver.advance()
    assert driver.env.now == pytest.approx(15.0)


def test_speed_change_applies_from_now_on() -> None:
    driver, clock = make(speed=60.0)
    clock.t += 10
    driver.advance()
    driver.set_speed(600.0)
    clock.t += 1
    driver.advance()
    assert driver.env.now == pytest.approx(20.0)
    with pytest.raises(CommandError, match="speed"):
        driver.set_speed(0.0)
    assert driver.speed == 600.0


def test_a_slice_never_runs_past_its_budget_and_lag_is_reported() -> None:
    driver, clock = make(speed=100_000.0)
    driver.slice_seconds = 0.0  # one batch of steps per advance
    clock.t += 3600  # far ahead: the model cannot catch up in one slice
    driver.advance()
    assert driver.env.now < driver.target()
    assert driver.lag.current > 0
    assert driver.lag.quantile(0.99) >= driver.lag.current


def test_orders_are_checked_and_placed_at_the_simulated_now() -> None:
    driver, clock = make()
    clock.t += 30
    driver.advance()
    order = driver.place_order("plate", {"size": "large", "engraving": "no"}, 2, due_in_hours=1.5)
    assert order.created == pytest.approx(30.0)
    assert order.due == pytest.approx(30.0 + 90.0)
    assert order.id in driver.line.orders
    before = driver.line.released_total
    with pytest.raises(CommandError, match="not a choice"):
        driver.place_order("plate", {"size": "huge", "engraving": "no"})
    with pytest.raises(CommandError, match="due_in_hours"):
        driver.place_order("plate", {"size": "large", "engraving": "no"}, due_in_hours=-1)
    assert driver.line.released_total == before  # a rejected order places nothing


def test_an_order_placed_live_completes() -> None:
    driver, clock = make(speed=3600.0)
    order = driver.place_order("plate", {"size": "small", "engraving": "yes"})
    for _ in range(100):
        clock.t += 1
        driver.advance()
        if order.id not in driver.line.orders:
            break
    assert order.id not in driver.line.orders
    assert order.done == order.quantity


def test_fault_injection_breaks_a_working_machine_at_once_and_reset_repairs_it() -> None:
    driver, clock = make(speed=60.0)
    cut = driver.line.by_id["cut"].machines[0]
    for _ in range(600):  # until the cutter works on a unit
        clock.t += 1
        driver.advance()
        if cut.state is MachineState.PROCESSING:
            break
    assert cut.state is MachineState.PROCESSING
    assert cut.inject_fault(repair_minutes=120.0) == "down"
    clock.t += 0.01
    driver.advance()
    assert cut.state is MachineState.DOWN
    with pytest.raises(CommandError, match="already down"):
        cut.inject_fault()
    assert cut.reset() == "repaired"
    clock.t += 0.01
    driver.advance()
    assert cut.state is not MachineState.DOWN
    assert cut.reset() == "running"


def test_a_fault_on_an_idle_machine_is_armed_for_its_next_work() -> None:
    driver, clock = make(speed=60.0)
    engrave = driver.line.by_id["engrave"].machines[0]
    assert engrave.state is MachineState.IDLE
    assert engrave.inject_fault(repair_minutes=5.0) == "armed"
    for _ in range(3000):
        clock.t += 1
        driver.advance()
        if engrave.state is MachineState.DOWN:
            break
    assert engrave.state is MachineState.DOWN


def test_run_returns_after_its_duration_and_flushes() -> None:
    line = Line(load_scenario(QUICKSTART), live=True)
    driver = LiveDriver(line, speed=6000.0, tick_seconds=0.01)
    asyncio.run(driver.run(duration_seconds=0.3))
    assert driver.finished
    assert line.env.now > 0
    assert sum(line.machines[0].times) == pytest.approx(line.env.now)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"size": "L", "seal": "FKM"}', {"size": "L", "seal": "FKM"}),
        ("size=L; seal=FKM", {"size": "L", "seal": "FKM"}),
        ("", {}),
    ],
)
def test_options_are_parsed_from_json_or_pairs(text: str, expected: dict[str, str]) -> None:
    assert parse_options(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [("{bad json", "not valid JSON"), ("size", "name=value"), ('{"size": 3}', "must be text"), ("x" * 5000, "longer")],
)
def test_bad_options_are_rejected_with_a_reason(text: str, match: str) -> None:
    with pytest.raises(CommandError, match=match):
        parse_options(text)
