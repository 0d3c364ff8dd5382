"""The dashboard feed: a live adapter that turns the running line(s) into immutable snapshots for the web pages.

It runs on the live loop, like the OPC UA server and the MQTT publisher. Every ``period`` wall seconds it reads
the model (machine states, buffers, KPIs, orders, telemetry) into a :class:`Snapshot` of plain, frozen data and
swaps it in; the web server's threads only ever read the latest snapshot, so they never touch the model. The
cost is bounded by the line's size, not by the number of browsers watching.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from dashboards.tracker import OrderTrack, OrderTracker
from simline.business import RunningDifference, running_difference, window_contribution
from simline.distributions import mean_of
from simline.events import Breakdown, Event, MachineState
from simline.kpis import compute_kpis
from simline.live.driver import LiveDriver
from simline.live.telemetry import Telemetry
from simline.overlays import Alternative
from simline.sim.line import Line

__all__ = ["TILES", "Feed", "LineView", "MoneyView", "OrderView", "Snapshot", "StationView"]

log = logging.getLogger("simline.dashboard")

TILES: tuple[tuple[str, str, str, str], ...] = (
    ("oee", "OEE", "line.oee", "%"),
    ("throughput", "Throughput", "line.throughput_per_hour", "units/h"),
    ("wip", "WIP", "line.wip_now", "units"),
    ("otd", "On-time delivery", "line.on_time_delivery", "%"),
    ("energy", "Energy per unit", "line.energy_per_good_unit_kwh", "kWh"),
    ("scrap", "Scrap", "line.scrap_rate", "%"),
)
"""KPI tiles: (key, title, KPI name, unit); ``%`` values are shares shown as percentages."""

TREND_POINTS = 240
TELEMETRY_POINTS = 720
TELEMETRY_SHOWN = 240  # points per signal sent to a chart (every k-th of the history)
ORDERS_SHOWN = 25
VISITORS_DONE_SHOWN = 5


@dataclass(frozen=True, slots=True)
class StationView:
    """A station as the line view draws it."""

    id: str
    name: str
    state: str  # the state of the station: the worst of its machines' states
    machines: tuple[str, ...]
    waiting: int
    capacity: int | None
    in_process: int
    down: bool


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as the order list shows it (times in simulated minutes)."""

    id: str
    product: str
    quantity: int
    progress: float
    stations_now: tuple[str, ...]
    status: str  # waiting, in progress, done, late
    created: float
    due: float
    eta: float | None
    origin: str
    route: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LineView:
    """One line at one moment."""

    label: str
    stations: tuple[StationView, ...]
    kpis: dict[str, float | None]
    trend: dict[str, tuple[float | None, ...]]
    trend_minutes: tuple[float, ...]
    orders: tuple[OrderView, ...]
    open_orders: int
    alarms: tuple[str, ...]
    contribution: float  # the line's contribution margin so far (EUR)


@dataclass(frozen=True, slots=True)
class MoneyView:
    """The running money difference of the twin, with its history (simulated minutes)."""

    now: RunningDifference
    minutes: tuple[float, ...]
    net: tuple[float, ...]
    net_funded: tuple[float, ...]
    investment: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the pages show, at one moment. ``seq`` grows with every new snapshot."""

    seq: int
    sim_minutes: float
    speed: float
    paused: bool
    working: bool
    lag_seconds: float
    lines: tuple[LineView, ...]
    money: MoneyView | None
    stations: tuple[tuple[str, str, int], ...]  # (id, name, machines) of the main line, for the controls


# Worst first: the colour of a station with several machines is the most urgent of their states.
_URGENCY = [
    MachineState.DOWN,
    MachineState.MAINTENANCE,
    MachineState.BLOCKED,
    MachineState.SETUP,
    MachineState.PROCESSING,
    MachineState.IDLE,
    MachineState.STANDBY,
    MachineState.OFF_SHIFT,
]
_RANK = {s: i for i, s in enumerate(_URGENCY)}


class _LineFeed:
    """What the feed keeps of one line: its orders, KPI trends and telemetry history."""

    def __init__(self, line: Line, label: str, seed: int) -> None:
        self.line = line
        self.label = label
        self.tracker = OrderTracker(line)
        self.telemetry = Telemetry(line.machines, seed=seed)
        self.trend_minutes: deque[float] = deque(maxlen=TREND_POINTS)
        self.trend: dict[str, deque[float | None]] = {key: deque(maxlen=TREND_POINTS) for key, *_ in TILES}
        self.signals: list[deque[tuple[float, float, float, float, float]]] = [
            deque(maxlen=TELEMETRY_POINTS) for _ in line.machines
        ]
        self.breakdowns: list[deque[float]] = [deque(maxlen=50) for _ in line.machines]
        self._machine_index = {(m.station.id, m.index): i for i, m in enumerate(line.machines)}
        self._sampled_at = -1.0
        self.families = {p.family: p.name or p.family for p in line.scenario.products}
        self.names = {st.id: st.spec.name or st.id for st in line.stations}

    def observe(self, event: Event) -> None:
        self.tracker.observe(event)
        if isinstance(event, Breakdown):
            i = self._machine_index.get((event.station, event.machine))
            if i is not None:
                self.breakdowns[i].append(event.time)

    def sample_telemetry(self) -> None:
        now = self.line.env.now
        if now - self._sampled_at < 1.0:  # at most one sample per simulated minute
            return
        self._sampled_at = now
        for i, s in enumerate(self.telemetry.sample()):
            self.signals[i].append((now, s.power_kw, s.condition, s.temperature_c, s.vibration_mm_s))

    def view(self, kpis: dict[str, float | None], contribution: float) -> LineView:
        line = self.line
        now = line.env.now
        stations = []
        alarms = []
        for st in line.stations:
            states = [m.effective_state for m in st.machines]
            worst = min(states, key=_RANK.__getitem__)
            down = [m.index for m in st.machines if m.state is MachineState.DOWN]
            for index in down:
                label = self.names[st.id]
                alarms.append(f"{label}: machine {index} down" if len(st.machines) > 1 else f"{label}: down")
            waiting = st.buffer.waiting
            stations.append(
                StationView(
                    id=st.id,
                    name=self.names[st.id],
                    state=worst.label,
                    machines=tuple(s.label for s in states),
                    waiting=waiting,
                    capacity=st.buffer.capacity,
                    in_process=max(0, int(st.stats.wip.level) - waiting),
                    down=bool(down),
                )
            )
        self.trend_minutes.append(now)
        for key, _, name, _ in TILES:
            self.trend[key].append(kpis.get(name))
        minutes_at = self._minutes_at()
        tracker = self.tracker
        # Visitors' orders first (open, then the last few completed), then the line's own: open, then completed.
        open_orders = sorted(tracker.open.values(), key=lambda t: (t.origin == "scenario", t.created))
        visitors = [t for t in open_orders if t.origin != "scenario"]
        shown = visitors + list(reversed(tracker.visitors.values()))[:VISITORS_DONE_SHOWN]
        shown += open_orders[len(visitors) :] + list(reversed(tracker.completed.values()))
        shown = shown[:ORDERS_SHOWN]
        return LineView(
            label=self.label,
            stations=tuple(stations),
            kpis=kpis,
            trend={k: tuple(v) for k, v in self.trend.items()},
            trend_minutes=tuple(self.trend_minutes),
            orders=tuple(self.order_view(t, minutes_at) for t in shown),
            open_orders=len(tracker.open),
            alarms=tuple(alarms),
            contribution=contribution,
        )

    def _minutes_at(self) -> dict[str, float]:
        """Mean time a unit spends at each station: observed, or the planned processing time before any unit left."""
        out = {}
        for st in self.line.stations:
            sojourn = st.stats.sojourn
            out[st.id] = sojourn.mean if sojourn.count else mean_of(st.spec.processing.base) / len(st.machines)
        return out

    def order_view(self, track: OrderTrack, minutes_at: dict[str, float] | None = None) -> OrderView:
        names = self.names
        if track.completed is not None:
            status = "done" if track.on_time else "late"
        elif track.position or track.finished:
            status = "in progress"
        else:
            status = "waiting"
        eta = self.tracker.eta(track, minutes_at if minutes_at is not None else self._minutes_at())
        return OrderView(
            id=track.id,
            product=f"{self.families.get(track.family, track.family)} {track.options.replace(';', ', ')}".strip(),
            quantity=track.quantity,
            progress=track.progress,
            stations_now=tuple(names.get(s, s) for s in track.stations_now),
            status=status,
            created=track.created,
            due=track.due,
            eta=eta,
            origin=track.origin,
            route=tuple(names.get(s, s) for s in track.route),
        )


class Feed:
    """Snapshots of the live line(s) for the dashboard.

    Args:
        driver: The live driver; its lines are shown (the first is the baseline, a second one the twin).
        alternative: The investment of the twin (``None`` without a twin).
        period: Wall seconds between snapshots.
    """

    def __init__(self, driver: LiveDriver, alternative: Alternative | None = None, period: float = 0.5) -> None:
        self.driver = driver
        self.alternative = alternative
        self.period = period
        labels = ["Baseline", f"With {alternative.label}"] if alternative is not None else ["Line"]
        seed = driver.line.streams.seed + 0xDA5
        self.lines = [_LineFeed(line, label, seed) for line, label in zip(driver.lines, labels, strict=False)]
        self._money: deque[tuple[float, float, float]] = deque(maxlen=TREND_POINTS)
        self._seq = 0
        self._task: asyncio.Task[None] | None = None
        self.build_seconds: deque[float] = deque(maxlen=500)
        self.latest: Snapshot = self.build()

    @property
    def tracker(self) -> OrderTracker:
        """The order tracker of the main line."""
        return self.lines[0].tracker

    async def start(self) -> None:
        """Observe the lines and refresh the snapshot every period (call on the running loop)."""
        for lf in self.lines:
            lf.line.add_observer(lf.observe)
        self._task = asyncio.create_task(self._loop(), name="dashboard-feed")

    async def stop(self) -> None:
        """Stop refreshing and detach the observers."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for lf in self.lines:
            with contextlib.suppress(ValueError):
                lf.line.observers.remove(lf.observe)

    async def _loop(self) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self.period)
            started = time.perf_counter()
            try:
                self.latest = self.build()
            except Exception:  # a display bug must never stop the line
                failures += 1
                if failures <= 10:
                    log.exception("dashboard: cannot build a snapshot")
            self.build_seconds.append(time.perf_counter() - started)

    def build(self) -> Snapshot:
        """A new snapshot of the lines now (call on the loop)."""
        self._seq += 1
        driver = self.driver
        econ = driver.line.scenario.economics
        views = []
        all_kpis = []
        for lf in self.lines:
            k = compute_kpis(lf.line)
            k["line.wip_now"] = float(lf.line.wip)
            all_kpis.append(k)
            lf.sample_telemetry()
            views.append(lf.view(k, window_contribution(k, econ)))
        money = None
        if self.alternative is not None and len(all_kpis) == 2:
            scenario = driver.line.scenario
            diff = running_difference(all_kpis[0], all_kpis[1], self.alternative, econ, scenario.funding)
            self._money.append((driver.env.now, diff.net, diff.net_funded))
            m, n, f = zip(*self._money, strict=True)
            money = MoneyView(diff, m, n, f, self.alternative.label)
        line = driver.line
        return Snapshot(
            seq=self._seq,
            sim_minutes=line.env.now,
            speed=driver.speed,
            paused=driver.paused,
            working=not line.off_shift,
            lag_seconds=driver.lag.current,
            lines=tuple(views),
            money=money,
            stations=tuple((st.id, st.spec.name or st.id, len(st.machines)) for st in line.stations),
        )

    def telemetry(self, station: str, line_index: int = 0) -> dict[str, Any]:
        """The telemetry history of ``station``'s machines (call on the loop): per machine, columns of simulated
        minutes, power, condition, temperature and vibration, and the minutes of its breakdowns."""
        lf = self.lines[line_index]
        out: dict[str, Any] = {"station": station, "machines": []}
        for i, m in enumerate(lf.line.machines):
            if m.station.id != station:
                continue
            rows = list(lf.signals[i])
            rows = rows[:: -(-len(rows) // TELEMETRY_SHOWN)] if len(rows) > TELEMETRY_SHOWN else rows
            columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
            out["machines"].append(
                {
                    "index": m.index,
                    "minutes": columns[0],
                    "power_kw": columns[1],
                    "condition": columns[2],
                    "temperature_c": columns[3],
                    "vibration_mm_s": columns[4],
                    "breakdowns": tuple(lf.breakdowns[i]),
                }
            )
        return out

    def order(self, order_id: str) -> tuple[OrderView, ...]:
        """The order ``order_id`` in every line (call on the loop); empty when no line knows it."""
        out = []
        for lf in self.lines:
            track = lf.tracker.get(order_id)
            if track is not None:
                out.append(lf.order_view(track))
        return tuple(out)
