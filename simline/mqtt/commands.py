"""Orders and station commands arriving over MQTT: size cap, rate limit, validation, and the reply.

The checks are the ones every entry point shares: :func:`simline.live.orders.parse_options` for the options and
:meth:`simline.live.driver.LiveDriver.place_order` (which calls ``Line.check_order`` against the scenario's
product families) for the order itself; :meth:`Machine.inject_fault` and :meth:`Machine.reset` for commands. This
module only adds what is particular to MQTT: the message's size, its JSON shape and a token bucket over all clients.
Nothing here raises: every outcome is a :class:`Reply`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from simline.errors import CommandError
from simline.live.driver import LiveDriver
from simline.live.orders import TokenBucket, parse_options
from simline.mqtt.topics import REQUEST_ID
from simline.sim.machine import Machine

__all__ = ["COMMANDS", "CommandHandler", "Reply"]

log = logging.getLogger("simline.mqtt")

COMMANDS = ("inject_fault", "reset")
"""Station commands (the last level of ``…/<station>/cmd/<command>``)."""
_ORDER_FIELDS = ("request_id", "product", "options", "quantity", "due", "due_in_hours")
_COMMAND_FIELDS = {"inject_fault": ("request_id", "repair_minutes"), "reset": ("request_id",)}


@dataclass(frozen=True, slots=True)
class Reply:
    """The outcome of an order or command.

    Attributes:
        status: ``accepted`` or ``rejected``.
        request_id: The client's request id, when it sent a valid one.
        order_id: The new order's id (accepted orders).
        result: What a station command did (``down``, ``armed``, ``repaired``, ``disarmed``, ``running``).
        reason: Why it was rejected, in words a visitor can act on.
        field: The offending field of the request (rejections), e.g. ``options.size``.
        silent: No reply should be sent (rate-limited replies beyond their own budget).
    """

    status: str
    request_id: str | None = None
    order_id: str | None = None
    result: str | None = None
    reason: str | None = None
    field: str | None = None
    silent: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The reply as a JSON-ready mapping (without empty fields)."""
        out: dict[str, Any] = {"status": self.status}
        for key in ("request_id", "order_id", "result", "reason", "field"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


class _Rejected(Exception):
    def __init__(self, field: str, reason: str, request_id: str | None = None) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.request_id = request_id


@dataclass(slots=True)
class CommandStats:
    """Counters of orders and commands received."""

    accepted: int = 0
    rejected: int = 0
    rate_limited: int = 0


class CommandHandler:
    """Checks and applies orders and station commands from MQTT messages.

    Args:
        driver: The live driver (orders are placed at the simulated now).
        machines: Machine name → machine.
        epoch: Wall-clock date of simulated minute 0 (for ``due`` dates).
        max_bytes: Longest accepted message.
        rate: Orders and commands per second over all clients.
        burst: Burst size.
        clock: Monotonic clock (seconds); injectable for tests.
    """

    def __init__(
        self,
        driver: LiveDriver,
        machines: Mapping[str, Machine],
        epoch: datetime,
        max_bytes: int = 8192,
        rate: float = 20.0,
        burst: int = 40,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.driver = driver
        self.machines = machines
        self.epoch = epoch
        self.max_bytes = max_bytes
        self.rate = rate
        self.bucket = TokenBucket(rate, burst, clock)
        self.reply_bucket = TokenBucket(1.0, 5, clock)  # replies to rate-limited messages
        self.stats = CommandStats()

    # --- entry points --------------------------------------------------------------------------------
    def place_order(self, payload: bytes) -> Reply:
        """Handle a message of ``…/orders/new``."""
        return self._guard(payload, self._order)

    def station_command(self, machine: str, command: str, payload: bytes) -> Reply:
        """Handle a message of ``…/<machine>/cmd/<command>``."""
        return self._guard(payload, lambda data: self._command(machine, command, data))

    def _guard(self, payload: bytes, handle: Callable[[dict[str, Any]], Reply]) -> Reply:
        if not self.bucket.take():
            self.stats.rate_limited += 1
            return Reply(
                "rejected",
                reason=f"rate limit exceeded: at most {self.rate:g} orders and commands per second",
                field="",
                silent=not self.reply_bucket.take(),
            )
        request_id: str | None = None
        try:
            data = self._decode(payload)
            request_id = _request_id(data)
            reply = handle(data)
        except _Rejected as exc:
            reply = Reply("rejected", request_id=exc.request_id or request_id, reason=exc.reason, field=exc.field)
        except CommandError as exc:
            reply = Reply("rejected", request_id=request_id, reason=exc.reason, field=exc.field)
        except Exception:  # a bug must not reach the MQTT client or the loop: log it and tell the sender
            log.exception("MQTT order or command failed")
            reply = Reply("rejected", request_id=request_id, reason="internal error (logged by the line)", field="")
        if reply.status == "accepted":
            self.stats.accepted += 1
        else:
            self.stats.rejected += 1
            log.info("MQTT request rejected: %s", reply.reason)
        return reply

    def _decode(self, payload: bytes) -> dict[str, Any]:
        if len(payload) > self.max_bytes:
            raise _Rejected("", f"message too large: {len(payload)} bytes (at most {self.max_bytes})")
        if not payload.strip():
            return {}
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise _Rejected("", "message is not UTF-8 text") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _Rejected("", f"not valid JSON: {exc.msg} at character {exc.pos}") from None
        except RecursionError:
            raise _Rejected("", "not valid JSON: nested too deeply") from None
        if not isinstance(data, dict):
            raise _Rejected("", "must be a JSON object")
        return data

    # --- orders --------------------------------------------------------------------------------------
    def _order(self, data: dict[str, Any]) -> Reply:
        request_id = _request_id(data)
        _known_fields(data, _ORDER_FIELDS, request_id)
        product = data.get("product")
        if not isinstance(product, str) or not product:
            raise _Rejected("product", "required: the product family (text)", request_id)
        options = data.get("options")
        if options is not None and not isinstance(options, dict | str):
            raise _Rejected("options", 'must be an object such as {"size": "large"} or text size=large', request_id)
        if isinstance(options, dict) and len(json.dumps(options)) > 4096:
            raise _Rejected("options", "longer than 4096 bytes", request_id)
        quantity = data.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise _Rejected("quantity", f"must be a whole number, got {quantity!r}", request_id)
        due_in_hours = self._due_in_hours(data, request_id)
        chosen = parse_options(options)
        order = self.driver.place_order(product, chosen, quantity, due_in_hours)
        return Reply("accepted", request_id=request_id, order_id=order.id)

    def _due_in_hours(self, data: dict[str, Any], request_id: str | None) -> float | None:
        if "due" in data and "due_in_hours" in data:
            raise _Rejected("due", "give either due or due_in_hours, not both", request_id)
        if "due_in_hours" in data:
            hours = data["due_in_hours"]
            if isinstance(hours, bool) or not isinstance(hours, int | float) or not math.isfinite(hours):
                raise _Rejected("due_in_hours", f"must be a number of hours, got {hours!r}", request_id)
            return float(hours)
        if "due" not in data:
            return None
        text = data["due"]
        if not isinstance(text, str) or len(text) > 64:
            raise _Rejected("due", "must be an ISO 8601 date and time, e.g. 2026-03-02T14:00:00Z", request_id)
        try:
            due = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise _Rejected("due", f"not an ISO 8601 date and time: {text!r}", request_id) from None
        if due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        due_minutes = (due - self.epoch).total_seconds() / 60.0
        hours = (due_minutes - self.driver.env.now) / 60.0
        if hours <= 0:
            raise _Rejected("due", f"{text} is not after the simulated now", request_id)
        return hours

    # --- station commands ----------------------------------------------------------------------------
    def _command(self, name: str, command: str, data: dict[str, Any]) -> Reply:
        request_id = _request_id(data)
        machine = self.machines.get(name)
        if machine is None:
            known = ", ".join(self.machines)
            raise _Rejected("station", f"'{name}' is not a station of this line (stations: {known})", request_id)
        if command not in _COMMAND_FIELDS:
            raise _Rejected("command", f"unknown command '{command}' (commands: {', '.join(COMMANDS)})", request_id)
        _known_fields(data, _COMMAND_FIELDS[command], request_id)
        if command == "reset":
            return Reply("accepted", request_id=request_id, result=self.driver.reset_machine(machine))
        minutes = data.get("repair_minutes")
        if minutes is not None and (
            isinstance(minutes, bool) or not isinstance(minutes, int | float) or not math.isfinite(minutes)
        ):
            raise _Rejected("repair_minutes", f"must be a number of minutes, got {minutes!r}", request_id)
        result = self.driver.inject_fault(machine, float(minutes) if minutes is not None else None)
        return Reply("accepted", request_id=request_id, result=result)


def _request_id(data: Mapping[str, Any]) -> str | None:
    value = data.get("request_id")
    if value is None:
        return None
    if not isinstance(value, str) or not REQUEST_ID.match(value):
        raise _Rejected("request_id", "must be 1 to 64 characters of A-Z a-z 0-9 _ . : -")
    return value


def _known_fields(data: Mapping[str, Any], allowed: tuple[str, ...], request_id: str | None) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise _Rejected(unknown[0], f"unknown field '{unknown[0]}' (fields: {', '.join(allowed)})", request_id)
