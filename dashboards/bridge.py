"""Commands from the web pages to the live line: run on the live loop, between simulation steps.

The web server answers in its own threads; the model belongs to the live loop. A page's order or trainer command
becomes a call scheduled on the loop (``call_soon_threadsafe``) whose result or error the page thread waits for,
so every command lands at the simulated "now", checked by the same rules as OPC UA and MQTT commands.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from dashboards.feed import Feed, OrderView
from simline.errors import CommandError
from simline.live.driver import LiveDriver
from simline.live.orders import TokenBucket, parse_options

__all__ = ["Bridge", "Outcome"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did: ``ok`` with a message, or not ``ok`` with the reason (and the offending field)."""

    ok: bool
    message: str
    order_id: str | None = None
    field: str | None = None


class Bridge:
    """The web pages' way into the live loop.

    Args:
        loop: The live loop.
        driver: The live driver.
        feed: The dashboard feed (orders placed here are marked with their origin).
        timeout: Longest wait for the loop (seconds).
        order_rate: Kiosk orders per second over all visitors; ``order_burst`` saved up.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        driver: LiveDriver,
        feed: Feed,
        timeout: float = 5.0,
        order_rate: float = 2.0,
        order_burst: int = 10,
    ) -> None:
        self.loop = loop
        self.driver = driver
        self.feed = feed
        self.timeout = timeout
        self.bucket = TokenBucket(order_rate, order_burst)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the live loop and return its result (or raise its error).

        Raises:
            CommandError: The live line did not answer within the timeout (it is stopping or stopped).
        """
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)

        try:
            self.loop.call_soon_threadsafe(run)  # RuntimeError: the loop is closed
        except RuntimeError:
            raise CommandError("line", "the live line is not running") from None
        try:
            return future.result(self.timeout)  # fn's own errors, RuntimeError included, pass through
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise CommandError("line", "the live line is not running") from None

    # --- orders --------------------------------------------------------------------------------------
    def place_order(self, family: str | None, options: Mapping[str, Any] | None, origin: str = "kiosk") -> Outcome:
        """Place a visitor's order (one unit). Never raises: a bad order is an outcome with the reason."""
        if not self.bucket.take():
            return Outcome(False, "Many orders at once: please try again in a few seconds.", field="rate")
        if not family or not isinstance(family, str):
            return Outcome(False, "Choose a product.", field="product")
        try:
            chosen = parse_options(dict(options or {}))
            order = self.call(self._place, family, chosen, origin)
        except CommandError as exc:
            return Outcome(False, f"Order not placed: {exc.reason}", field=exc.field)
        return Outcome(True, f"Order {order} placed.", order_id=order)

    def _place(self, family: str, options: dict[str, str], origin: str) -> str:
        order = self.driver.place_order(family, options)
        for lf in self.feed.lines:
            lf.tracker.mark(order.id, origin)
        return order.id

    def order(self, order_id: str) -> tuple[OrderView, ...]:
        """The order in every line (empty when unknown or the line is not running)."""
        try:
            return self.call(self.feed.order, order_id)
        except CommandError:
            return ()

    def telemetry(self, station: str, line_index: int = 0) -> dict[str, Any] | None:
        """The telemetry history of a station (``None`` when the line is not running)."""
        try:
            return self.call(self.feed.telemetry, station, line_index)
        except CommandError:
            return None

    # --- trainer commands ----------------------------------------------------------------------------
    def command(
        self, action: str, station: str | None = None, machine: int | None = None, value: Any = None
    ) -> Outcome:
        """Apply a trainer command: ``pause``, ``resume``, ``speed`` (value: simulated seconds per second),
        ``fault`` (station, machine, value: repair minutes or none) or ``reset`` (station, machine).
        Never raises."""
        try:
            message = self.call(self._command, action, station, machine, value)
        except CommandError as exc:
            return Outcome(False, f"{action}: {exc.reason}", field=exc.field)
        return Outcome(True, message)

    def _command(self, action: str, station: str | None, machine: int | None, value: Any) -> str:
        driver = self.driver
        if action == "pause":
            driver.pause()
            return "Paused."
        if action == "resume":
            driver.resume()
            return "Running."
        if action == "speed":
            speed = _number("speed", value)
            driver.set_speed(speed)
            return f"Speed {speed:g}× (one wall second = {speed:g} simulated seconds)."
        if action in ("fault", "reset"):
            if not station:
                raise CommandError("station", "choose a station")
            target = driver.machine(str(station), _index(machine))
            if action == "reset":
                return f"{station}#{target.index}: {driver.reset_machine(target)}."
            minutes = None if value in (None, "") else _number("repair_minutes", value)
            return f"{station}#{target.index}: {driver.inject_fault(target, minutes)}."
        raise CommandError("action", f"unknown command '{action}' (pause, resume, speed, fault, reset)")


def _index(value: Any) -> int:
    if value is None or value == "":
        return 0
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise CommandError("machine", f"must be a machine number, got {value!r}") from None


def _number(name: str, value: Any) -> float:
    if value is None or value == "":
        raise CommandError(name, "enter a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CommandError(name, f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise CommandError(name, f"must be a finite number, got {value!r}")
    return number
