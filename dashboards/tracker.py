"""Where every open order is: an observer of one line's events that follows each order's units along their route.

The model keeps only counters; the dashboard needs to show an order's progress, the stations its units are at,
and an estimate of when it will be done. This observer keeps that for the open orders and the last completed
ones only, so memory stays bounded by the line's work in progress.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from simline.events import (
    Event,
    OperationFinished,
    OperationStarted,
    OrderCompleted,
    OrderCreated,
    UnitFinished,
    UnitReworked,
    UnitScrapped,
)
from simline.sim.line import Line

__all__ = ["OrderTrack", "OrderTracker"]


@dataclass(slots=True)
class OrderTrack:
    """One order as the dashboard follows it.

    Attributes:
        route: Station ids the order's units visit, in order.
        position: Unit id → operations of the route done (for units still in the line).
        at: Unit id → the station processing it now (absent while it waits or moves).
        finished: Units that left the line.
        scrapped: Units scrapped (each replaced by a new unit).
        completed: Simulated minute the order was completed, if it was.
        on_time: Whether it was completed by its due time.
        origin: Who placed it: ``scenario`` (the order source) or the entry point (``kiosk``, ...).
    """

    id: str
    family: str
    options: str
    quantity: int
    created: float
    due: float
    route: tuple[str, ...]
    position: dict[int, int] = field(default_factory=dict)
    at: dict[int, str] = field(default_factory=dict)
    finished: int = 0
    scrapped: int = 0
    completed: float | None = None
    on_time: bool | None = None
    origin: str = "scenario"

    @property
    def progress(self) -> float:
        """Share of the order's operations done (0..1)."""
        total = self.quantity * len(self.route)
        if total == 0:
            return 1.0 if self.completed is not None else 0.0
        done = self.finished * len(self.route) + sum(self.position.values())
        return 1.0 if self.completed is not None else min(1.0, done / total)

    @property
    def stations_now(self) -> list[str]:
        """Stations processing the order's units now, in route order."""
        here = set(self.at.values())
        return [s for s in dict.fromkeys(self.route) if s in here]


class OrderTracker:
    """Follows the orders of ``line``; attach :meth:`observe` as an observer of the line.

    Args:
        line: The line (its open orders give each new order's route).
        keep_completed: Completed orders kept for display, of the scenario's and of visitors' orders each (a
            visitor's order stays in the list after completion even on a busy line).
    """

    def __init__(self, line: Line, keep_completed: int = 30) -> None:
        self.line = line
        self.keep_completed = keep_completed
        self.open: dict[str, OrderTrack] = {}
        self.completed: OrderedDict[str, OrderTrack] = OrderedDict()
        self.visitors: OrderedDict[str, OrderTrack] = OrderedDict()  # completed orders placed from outside
        self.origins: dict[str, str] = {}  # order id → entry point, set by whoever placed it

    def get(self, order_id: str) -> OrderTrack | None:
        """The order, open or recently completed."""
        return self.open.get(order_id) or self.completed.get(order_id) or self.visitors.get(order_id)

    def observe(self, event: Event) -> None:
        """The observer: update the order the event is about."""
        if isinstance(event, OrderCreated):
            self._created(event)
            return
        order_id = getattr(event, "order_id", None)
        track = self.open.get(order_id) if order_id is not None else None
        if track is None:
            return
        if isinstance(event, OperationStarted):
            track.at[event.unit_id] = event.station
            track.position.setdefault(event.unit_id, _index(track.route, event.station))
        elif isinstance(event, OperationFinished):
            track.at.pop(event.unit_id, None)
            track.position[event.unit_id] = _index(track.route, event.station) + 1
        elif isinstance(event, UnitReworked):
            track.position[event.unit_id] = _index(track.route, event.to_station)
        elif isinstance(event, UnitScrapped):
            track.position.pop(event.unit_id, None)
            track.at.pop(event.unit_id, None)
            track.scrapped += 1
        elif isinstance(event, UnitFinished):
            track.position.pop(event.unit_id, None)
            track.at.pop(event.unit_id, None)
            track.finished += 1
        elif isinstance(event, OrderCompleted):
            track.completed = event.time
            track.on_time = event.on_time
            track.at.clear()
            track.position.clear()
            del self.open[event.order_id]
            kept = self.completed if track.origin == "scenario" else self.visitors
            kept[event.order_id] = track
            while len(kept) > self.keep_completed:
                kept.popitem(last=False)

    def _created(self, event: OrderCreated) -> None:
        order = self.line.orders.get(event.order_id)
        route = tuple(st.id for st in order.variant.route) if order is not None else ()
        self.open[event.order_id] = OrderTrack(
            id=event.order_id,
            family=event.family,
            options=event.options,
            quantity=event.quantity,
            created=event.time,
            due=event.due,
            route=route,
            origin=self.origins.pop(event.order_id, "scenario"),
        )

    def mark(self, order_id: str, origin: str) -> None:
        """Record who placed ``order_id`` (call right after placing it)."""
        track = self.open.get(order_id)
        if track is not None:
            track.origin = origin
        else:
            self.origins[order_id] = origin

    def eta(self, track: OrderTrack, minutes_at: dict[str, float]) -> float | None:
        """Estimated simulated minute the order completes: now plus the longest remaining route of its units,
        each remaining station counted at ``minutes_at[station]`` (its observed mean time in the station)."""
        if track.completed is not None:
            return track.completed
        now = self.line.env.now
        route = track.route
        remaining = [sum(minutes_at.get(s, 0.0) for s in route[p:]) for p in track.position.values()]
        waiting = track.quantity - track.finished - len(track.position)
        if waiting > 0:
            remaining.append(sum(minutes_at.get(s, 0.0) for s in route))
        return now + max(remaining, default=0.0)


def _index(route: tuple[str, ...], station: str) -> int:
    try:
        return route.index(station)
    except ValueError:
        return 0
