"""What both MQTT profiles share: the line's machines by name, the event queue, periodic tasks, value helpers.

The model calls :meth:`Profile.observe` from inside a simulation step; it only appends to a queue and schedules
one flush on the loop (``call_soon``), which runs right after the driver's slice. Nothing here blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from simline.events import Event
from simline.live.driver import LiveDriver
from simline.live.telemetry import MachineSignals, Telemetry
from simline.mqtt.commands import CommandHandler
from simline.mqtt.config import MqttOptions, simulated_epoch
from simline.mqtt.publisher import Publisher
from simline.mqtt.topics import machine_names
from simline.sim.machine import Machine

__all__ = ["Profile", "now_ms", "number"]

log = logging.getLogger("simline.mqtt")
GROUP = 20
"""Machines per telemetry group: a long line's machines are sampled group by group, spread over the interval."""


def now_ms() -> int:
    """Wall-clock time in milliseconds since the Unix epoch."""
    return int(time.time() * 1000)


def number(value: float | None, digits: int = 6) -> float | None:
    """``value`` rounded, or ``None`` when missing or not finite (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


class Profile:
    """Base of the UNS and Sparkplug profiles.

    Args:
        driver: The live driver of the line.
        options: The MQTT options.
    """

    publisher: Publisher  # set by each profile, which chooses its session behaviour

    def __init__(self, driver: LiveDriver, options: MqttOptions) -> None:
        self.driver = driver
        self.line = driver.line
        self.options = options
        self.epoch = options.epoch or simulated_epoch()
        by_station = {st.id: st for st in self.line.stations}
        self.machines: list[tuple[str, Machine]] = [
            (name, by_station[sid].machines[index]) for name, sid, index in machine_names(self.line.scenario)
        ]
        self.names: dict[tuple[str, int], str] = {(m.station.id, m.index): name for name, m in self.machines}
        self.commands = CommandHandler(
            driver,
            dict(self.machines),
            self.epoch,
            max_bytes=options.command_max_bytes,
            rate=options.command_rate,
            burst=options.command_burst,
        )
        self._events: deque[tuple[Event, int]] = deque()
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._failures = 0
        self.groups = max(1, min(10, -(-len(self.machines) // GROUP)))
        size = -(-len(self.machines) // self.groups)
        self._group_machines = [self.machines[g * size : (g + 1) * size] for g in range(self.groups)]
        self._telemetry = [  # one per group: a tick samples only its machines; separate noise streams
            Telemetry([m for _, m in group], seed=self.line.streams.seed + 1 + g)
            for g, group in enumerate(self._group_machines)
        ]
        self._sample_tick = 0

    # --- model events --------------------------------------------------------------------------------
    def observe(self, event: Event) -> None:
        """The observer handed to the model: queue the event with the wall time, schedule one flush."""
        self._events.append((event, now_ms()))
        if not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Publish every queued event (never raises)."""
        self._flush_scheduled = False
        events = self._events
        while events:
            event, ts = events.popleft()
            try:
                self.publish_event(event, ts)
            except Exception:  # a bug must show in the log but never stop the line or the queue
                self._failures += 1
                if self._failures <= 10:
                    log.exception("MQTT: cannot publish %s", event.kind)

    def publish_event(self, event: Event, ts: int) -> None:
        """Publish one model event (wall time ``ts`` in ms)."""
        raise NotImplementedError

    # --- tasks ---------------------------------------------------------------------------------------
    async def start(self, wait: float) -> bool:
        """Observe the model, start the periodic tasks and connect (waiting up to ``wait`` seconds)."""
        self.start_tasks()
        return await self.publisher.start(wait)

    def start_tasks(self) -> None:
        """Attach the observer and start the periodic tasks (call on the running loop)."""
        self._loop = asyncio.get_running_loop()
        self.line.add_observer(self.observe)
        for interval, action, name in self.periodic():
            self._tasks.append(asyncio.create_task(self._every(interval, action), name=f"mqtt-{name}"))

    def periodic(self) -> list[tuple[float, Callable[[], None], str]]:
        """``(interval, action, name)`` of the periodic tasks."""
        return []

    async def stop_tasks(self) -> None:
        """Stop the periodic tasks, detach the observer and publish what is still queued."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        with contextlib.suppress(ValueError):
            self.line.observers.remove(self.observe)
        self.flush()

    async def _every(self, interval: float, action: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                action()
            except Exception:  # same rule as flush: log, keep going
                self._failures += 1
                if self._failures <= 10:
                    log.exception("MQTT periodic task failed")

    # --- helpers -------------------------------------------------------------------------------------
    def simulated_time(self, minutes: float) -> str:
        """Simulated minutes as an ISO 8601 date and time (UTC, milliseconds)."""
        return _iso(self.epoch + timedelta(minutes=minutes))

    def next_group(self) -> list[int]:
        """The groups to sample at the next telemetry tick: the periodic task runs ``groups`` times per interval,
        each time for one group of machines, so a long line's telemetry goes out in small, even bursts (a burst
        delays the events behind it at every subscriber)."""
        group = self._sample_tick % self.groups
        self._sample_tick += 1
        return [group]

    def machine_values(self, groups: list[int] | None = None) -> list[tuple[str, Machine, dict[str, Any]]]:
        """Sampled values of the machines of ``groups`` (default all): ``(name, machine, {tag: value})``."""
        out = []
        orders = self.line.orders
        for g in range(self.groups) if groups is None else groups:
            for (name, m), sig in zip(self._group_machines[g], self._telemetry[g].sample(), strict=True):
                order = orders.get(m.order_id) if m.order_id else None
                out.append((name, m, _values(m, sig, order.id if order else None)))
        return out


def _values(m: Machine, sig: MachineSignals, order_id: str | None) -> dict[str, Any]:
    return {
        "power": number(sig.power_kw, 3),
        "temperature": number(sig.temperature_c, 2),
        "vibration": number(sig.vibration_mm_s, 3),
        "condition": number(sig.condition, 4),
        "buffer_level": m.station.buffer.waiting,
        "processed_count": m.processed,
        "good_count": m.good,
        "failure_count": m.failures,
        "operating_time": number(m.times[0] / 60.0, 4),
        "current_order": order_id,
    }


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
