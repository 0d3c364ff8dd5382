"""The OPC UA server of a live line: the address space, its sync with the model, methods, setpoints, alarms.

Everything runs on the live driver's asyncio loop. Model events arrive through an observer that only queues
them; a sync task writes changed values through asyncua's fast attribute path and fires events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.server.address_space import AttributeService

from opcua_server.address_space import AddressSpace, build_address_space, machine_names
from opcua_server.security import SecurityConfig, apply_security
from simline.errors import CommandError
from simline.events import Breakdown, Event, MachineState, OrderCompleted, Repaired
from simline.kpis import LIVE_KPIS, compute_kpis
from simline.live.driver import LiveDriver
from simline.live.orders import parse_options
from simline.live.telemetry import Telemetry
from simline.sim.machine import Machine

__all__ = ["LineServer", "item_state", "operation_mode"]

log = logging.getLogger("simline.opcua")
S = MachineState


def item_state(state: MachineState) -> str:
    """MachineryItemState for a simulated state (OPC 40001-1 annex C)."""
    if state is S.OFF_SHIFT:
        return "NotAvailable"
    if state in (S.DOWN, S.MAINTENANCE):
        return "OutOfService"
    if state is S.PROCESSING:
        return "Executing"
    return "NotExecuting"


def operation_mode(state: MachineState) -> str:
    """MachineryOperationMode for a simulated state (OPC 40001-1 annex C)."""
    if state is S.OFF_SHIFT:
        return "None"
    if state is S.MAINTENANCE:
        return "Maintenance"
    if state is S.SETUP:
        return "Setup"
    return "Processing"


class LineServer:
    """Serves a live line over OPC UA.

    Args:
        driver: The live driver of the line.
        endpoint: e.g. ``opc.tcp://0.0.0.0:4840/simline``.
        security: Security profile; ``None`` means the open demo profile.
        publish_interval: Wall seconds between syncs of the address space.
        history_count: Values kept per historized variable.
    """

    def __init__(
        self,
        driver: LiveDriver,
        endpoint: str = "opc.tcp://0.0.0.0:4840/simline",
        security: SecurityConfig | None = None,
        publish_interval: float = 0.2,
        history_count: int = 2000,
        epoch: datetime | None = None,
        nodesets: Path | None = None,
    ) -> None:
        self.nodesets = nodesets
        self.driver = driver
        self.line = driver.line
        self.endpoint = endpoint
        self.security = security
        self.publish_interval = publish_interval
        self.history_count = history_count
        now = datetime.now(UTC)
        self.epoch = epoch or (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        self.server = Server()
        self.space: AddressSpace | None = None
        self.telemetry = Telemetry(self.line.machines, seed=self.line.streams.seed)
        self._machines: list[tuple[str, Machine]] = []
        self._last: dict[ua.NodeId, Any] = {}
        self._ids: dict[str, ua.NodeId] = {}
        self._pending: list[tuple[ua.NodeId, Any, ua.VariantType]] = []
        self._historized: set[ua.NodeId] = set()
        self._last_order: dict[str, str] = {}
        self._events: deque[Event] = deque(maxlen=10_000)
        self._alarms: dict[str, Any] = {}
        self._alarm_ids: dict[bytes, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._setpoints: dict[ua.NodeId, Callable[[Any], Callable[[], None]]] = {}
        self.writes = 0

    # --- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Build the address space and start serving."""
        server = self.server
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"simline — {self.line.scenario.name}")
        await apply_security(server, self.security)
        self.space = space = await build_address_space(server, self.line.scenario, nodesets=self.nodesets)
        by_station = {st.id: st for st in self.line.stations}
        for name, index, sid in machine_names(self.line.scenario):
            self._machines.append((name, by_station[sid].machines[index]))
        await self._add_methods(space)
        self._wrap_writes()
        for name, _ in self._machines:
            for var in ("Power", "Condition", "Temperature", "Vibration"):
                await self._historize(space.nodeid(f"Machines.{name}.Monitoring.{var}"))
            self._alarms[name] = await server.get_event_generator(
                ua.ObjectIds.OffNormalAlarmType, space.machine_nodes[name]
            )
        for var in ("OEE", "ThroughputPerHour", "WIP", "OnTimeDelivery"):
            await self._historize(space.nodeid(f"Line.KPIs.{var}"))
        self._orders_gen = await server.get_event_generator(ua.ObjectIds.BaseEventType, space.line)
        server.link_method(server.get_node(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge), self._acknowledge)
        self.line.add_observer(self._on_event)
        await self.sync(kpis=True)
        await server.start()
        self._task = asyncio.create_task(self._sync_loop(), name="opcua-sync")

    async def stop(self) -> None:
        """Stop syncing and serving."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.server.stop()

    # --- sync ----------------------------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        if isinstance(event, Breakdown | Repaired | OrderCompleted):
            self._events.append(event)

    async def _historize(self, nodeid: ua.NodeId) -> None:
        """Keep the last values of a variable for HistoryRead; values are stored as they are written (no internal
        subscription, which would copy every value once more)."""
        node = self.server.get_node(nodeid)
        await node.write_attribute(ua.AttributeIds.Historizing, ua.DataValue(True))
        await node.set_attr_bit(ua.AttributeIds.AccessLevel, ua.AccessLevel.HistoryRead)
        await node.set_attr_bit(ua.AttributeIds.UserAccessLevel, ua.AccessLevel.HistoryRead)
        await self.server.iserver.history_manager.storage.new_historized_node(nodeid, None, self.history_count)
        self._historized.add(nodeid)

    async def _sync_loop(self) -> None:
        loop = asyncio.get_running_loop()
        ticks = 0
        due = loop.time()
        per_kpis = max(1, round(1.0 / self.publish_interval))
        while True:
            due += self.publish_interval
            now = loop.time()
            if due < now:  # a sync overran: skip the missed ticks rather than bunching them
                due = now
            await asyncio.sleep(due - now)
            ticks += 1
            try:
                await self.sync(kpis=ticks % per_kpis == 0)
            except Exception:  # a bug in the sync must show, but never stop the line
                log.exception("OPC UA sync failed")

    def _w(self, path: str, value: Any, kind: ua.VariantType, deadband: float = 0.0) -> None:
        """Queue ``value`` for the variable at ``path`` if it changed (by more than ``deadband``)."""
        nodeid = self._ids.get(path)
        if nodeid is None:
            assert self.space is not None
            nodeid = self._ids[path] = self.space.nodeid(path)
        last = self._last.get(nodeid, _MISSING)
        if last == value or (deadband and last is not _MISSING and abs(value - last) < deadband):
            return
        self._last[nodeid] = value
        self._pending.append((nodeid, value, kind))

    async def _flush(self) -> None:
        """Write the queued values with one timestamp, yielding the loop every few milliseconds."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        stamp = datetime.now(UTC)
        write = self.server.write_attribute_value
        history = self.server.iserver.history_manager.storage
        historized = self._historized
        budget = time.perf_counter() + 0.005
        for nodeid, value, kind in pending:
            dv = _SharedDataValue(ua.Variant(value, kind), SourceTimestamp=stamp, ServerTimestamp=stamp)
            await write(nodeid, dv)
            if nodeid in historized:
                await history.save_node_value(nodeid, dv)
            if time.perf_counter() > budget:
                await asyncio.sleep(0)
                budget = time.perf_counter() + 0.005
        self.writes += len(pending)

    async def _write(self, path: str, value: Any, kind: ua.VariantType) -> None:
        self._w(path, value, kind)
        await self._flush()

    async def sync(self, kpis: bool = False) -> None:
        """Write every changed value, fire queued events; with ``kpis`` also the line's KPIs.

        The values are taken in one synchronous snapshot (consistent with one simulated instant), then written.
        """
        V = ua.VariantType
        w = self._w
        assert self.space is not None
        state_ids = self.space.state_ids
        orders = self.line.orders
        for (name, m), sig in zip(self._machines, self.telemetry.sample(), strict=True):
            base = f"Machines.{name}."
            state = sig.state
            item, mode = item_state(state), operation_mode(state)
            blocks = base + "MachineryBuildingBlocks."
            w(blocks + "MachineryItemState.CurrentState", ua.LocalizedText(item), V.LocalizedText)
            w(blocks + "MachineryOperationMode.CurrentState", ua.LocalizedText(mode), V.LocalizedText)
            if state_ids:
                w(blocks + "MachineryItemState.CurrentState.Id", state_ids[item], V.NodeId)
                w(blocks + "MachineryOperationMode.CurrentState.Id", state_ids[mode], V.NodeId)
            w(base + "Monitoring.State", state.label, V.String)
            w(base + "Monitoring.Power", sig.power_kw, V.Double)
            w(base + "Monitoring.Condition", round(sig.condition, 4), V.Double, 0.001)
            w(base + "Monitoring.Temperature", sig.temperature_c, V.Double, 0.2)
            w(base + "Monitoring.Vibration", sig.vibration_mm_s, V.Double, 0.05)
            w(base + "Monitoring.BufferLevel", m.station.buffer.waiting, V.Int32)
            w(base + "OperationCounters.ProcessedCount", m.processed, V.Int64)
            w(base + "OperationCounters.GoodCount", m.good, V.Int64)
            w(base + "OperationCounters.OperatingTime", round(m.times[S.PROCESSING] / 60.0, 4), V.Double)
            w(base + "OperationCounters.FailureCount", m.failures, V.Int64)
            order_id = m.order_id
            if self._last_order.get(name, "") != (order_id or ""):
                self._last_order[name] = order_id or ""
                order = orders.get(order_id) if order_id else None
                w(base + "CurrentOrder.OrderId", order_id or "", V.String)
                w(base + "CurrentOrder.Product", order.variant.family if order else "", V.String)
                w(base + "CurrentOrder.Options", order.variant.options_text() if order else "", V.String)
            w(base + "Setpoints.SpeedOverride", m.station.speed, V.Double)
            cap = m.station.buffer.capacity
            w(base + "Setpoints.BufferLimit", -1 if cap is None else cap, V.Int32)
        env_now = self.line.env.now
        w("Line.Clock.SimulatedMinutes", round(env_now, 3), V.Double)
        w("Line.Clock.SimulatedTime", self.epoch + timedelta(minutes=env_now), V.DateTime)
        w("Line.Clock.Speed", self.driver.speed, V.Double)
        w("Line.Clock.Paused", self.driver.paused, V.Boolean)
        w("Line.Clock.LagSeconds", round(self.driver.lag.current, 3), V.Double)
        w("Line.Orders.OpenOrders", len(orders), V.Int32)
        w("Line.Orders.CompletedOrders", self.line.stats.orders_completed, V.Int64)
        if kpis:
            self._sync_kpis()
        await self._flush()
        while self._events:
            await self._fire(self._events.popleft())

    def _sync_kpis(self) -> None:
        V = ua.VariantType
        k = compute_kpis(self.line)
        names = LIVE_KPIS
        for node, key in names.items():
            value = k.get(key)
            self._w(f"Line.KPIs.{node}", round(value, 6) if value is not None else 0.0, V.Double)
        shares = {st.id: k.get(f"stations.{st.id}.active_share") or 0.0 for st in self.line.stations}
        self._w("Line.KPIs.Bottleneck", max(shares, key=lambda s: shares[s]), V.String)
        orders = [
            {
                "order_id": o.id,
                "product": o.variant.family,
                "options": o.variant.options_text(),
                "done": o.done,
                "quantity": o.quantity,
                "due_minutes": round(o.due, 1),
            }
            for o in list(self.line.orders.values())[:200]
        ]
        self._w("Line.Orders.OrderList", json.dumps(orders), V.String)

    async def _fire(self, event: Event) -> None:
        if isinstance(event, OrderCompleted):
            gen = self._orders_gen
            gen.event.Message = ua.LocalizedText(
                f"order {event.order_id} completed in {event.lead_time / 60:.2f} h"
                f" ({'on time' if event.on_time else 'late'})"
            )
            gen.event.Severity = 100
            await gen.trigger()
            return
        name = self._machine_name(event.station, event.machine)  # type: ignore[attr-defined]
        gen = self._alarms[name]
        active = isinstance(event, Breakdown)
        ev = gen.event
        ev.NodeId = self.space.machine_nodes[name].nodeid if self.space else None  # the ConditionId
        ev.ConditionName = "Breakdown"
        ev.SourceName = name
        ev.Severity = 800 if active else 100
        ev.Message = ua.LocalizedText(
            f"{name} broke down" if active else f"{name} repaired after {event.downtime:.0f} min"  # type: ignore[attr-defined]
        )
        ev.ActiveState = ua.LocalizedText("Active" if active else "Inactive")
        setattr(ev, "ActiveState/Id", active)
        if active:
            ev.AckedState = ua.LocalizedText("Unacknowledged")
            setattr(ev, "AckedState/Id", False)
        ev.Retain = active
        await gen.trigger()
        self._alarm_ids[_event_id(ev.EventId)] = name

    def _machine_name(self, station: str, index: int) -> str:
        st = self.line.by_id[station]
        return station if st.spec.machines == 1 else f"{station}_{index + 1}"

    async def _acknowledge(self, parent: ua.NodeId, event_id: ua.Variant, comment: ua.Variant) -> Any:
        name = self._alarm_ids.get(_event_id(event_id))
        if name is None:
            return ua.StatusCode(ua.StatusCodes.BadEventIdUnknown)
        ev = self._alarms[name].event
        ev.AckedState = ua.LocalizedText("Acknowledged")
        setattr(ev, "AckedState/Id", True)
        await self._alarms[name].trigger()
        return []

    # --- methods -------------------------------------------------------------------------------------
    async def _add_methods(self, space: AddressSpace) -> None:
        idx = space.idx
        V = ua.VariantType

        def arg(name: str, kind: ua.VariantType, text: str) -> ua.Argument:
            a = ua.Argument()
            a.Name = name
            a.DataType = ua.NodeId(kind.value)
            a.ValueRank = -1
            a.Description = ua.LocalizedText(text)
            return a

        await space.line.add_method(
            ua.NodeId("Line.PlaceOrder", idx),
            ua.QualifiedName("PlaceOrder", idx),
            self._place_order,
            [
                arg("Family", V.String, "product family id"),
                arg("Options", V.String, 'option choices: JSON object {"size": "L"} or size=L;seal=FKM'),
                arg("Quantity", V.UInt32, "units, 1 for lot size 1"),
            ],
            [arg("OrderId", V.String, "the new order's id")],
        )
        for name, machine in self._machines:
            node = space.machine_nodes[name]
            await node.add_method(
                ua.NodeId(f"Machines.{name}.InjectFault", idx),
                ua.QualifiedName("InjectFault", idx),
                self._fault_handler(machine),
                [arg("RepairMinutes", V.Double, "repair duration in simulated minutes; 0 for the station's mean")],
                [arg("Result", V.String, "down (at once) or armed (at the next work)")],
            )
            await node.add_method(
                ua.NodeId(f"Machines.{name}.Reset", idx),
                ua.QualifiedName("Reset", idx),
                self._reset_handler(machine),
                [],
                [arg("Result", V.String, "repaired, disarmed or running")],
            )

    async def _report(self, text: str) -> None:
        await self._write("Line.LastCommandResult", text, ua.VariantType.String)

    async def _place_order(self, parent: ua.NodeId, *args: ua.Variant) -> Any:
        values = [a.Value if isinstance(a, ua.Variant) else a for a in args]
        if len(values) != 3:
            return _failure(ua.StatusCodes.BadArgumentsMissing, 3)
        for i in (0, 1):
            if not isinstance(values[i], str):
                return _failure(ua.StatusCodes.BadInvalidArgument, 3, i)
        family, options, quantity = values
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            await self._report(f"PlaceOrder rejected: Quantity must be a whole number, got {quantity!r}")
            return _failure(ua.StatusCodes.BadInvalidArgument, 3, 2)
        try:
            chosen = parse_options(options)
            order = self.driver.place_order(family, chosen, int(quantity))
        except (CommandError, TypeError, ValueError) as exc:
            await self._report(f"PlaceOrder rejected: {exc}")
            bad = {"family": 0, "options": 1, "quantity": 2}
            field = exc.field.split(".")[0] if isinstance(exc, CommandError) else "quantity"
            return _failure(ua.StatusCodes.BadInvalidArgument, 3, bad.get(field))
        self._w("Line.Orders.LastOrderId", order.id, ua.VariantType.String)
        await self._report(f"PlaceOrder accepted: {order.id}")
        return [ua.Variant(order.id, ua.VariantType.String)]

    def _fault_handler(self, machine: Machine) -> Callable[..., Any]:
        async def inject(parent: ua.NodeId, *args: ua.Variant) -> Any:
            values = [a.Value if isinstance(a, ua.Variant) else a for a in args]
            if len(values) != 1 or isinstance(values[0], bool) or not isinstance(values[0], int | float):
                return _failure(ua.StatusCodes.BadInvalidArgument, 1, 0)
            minutes = float(values[0])
            if minutes < 0:
                await self._report(f"InjectFault rejected: RepairMinutes must not be negative, got {minutes:g}")
                return _failure(ua.StatusCodes.BadOutOfRange, 1, 0)
            try:
                result = self.driver.inject_fault(machine, minutes if minutes > 0 else None)
            except CommandError as exc:
                await self._report(f"InjectFault rejected: {exc}")
                if exc.field == "repair_minutes":
                    return _failure(ua.StatusCodes.BadOutOfRange, 1, 0)
                return _failure(ua.StatusCodes.BadInvalidState, 1)
            await self._report(f"InjectFault {machine.station.id}#{machine.index}: {result}")
            return [ua.Variant(result, ua.VariantType.String)]

        return inject

    def _reset_handler(self, machine: Machine) -> Callable[..., Any]:
        async def reset(parent: ua.NodeId, *args: ua.Variant) -> Any:
            result = self.driver.reset_machine(machine)
            await self._report(f"Reset {machine.station.id}#{machine.index}: {result}")
            return [ua.Variant(result, ua.VariantType.String)]

        return reset

    # --- setpoints -----------------------------------------------------------------------------------
    def _wrap_writes(self) -> None:
        """Check setpoint writes: an out-of-range value gets BadOutOfRange and changes nothing; an accepted write
        is applied to the model after the server has stored it (so access rights are checked first)."""
        assert self.space is not None
        for name, machine in self._machines:
            st = machine.station
            self._setpoints[self.space.nodeid(f"Machines.{name}.Setpoints.SpeedOverride")] = partial(
                _speed_override, st
            )
            self._setpoints[self.space.nodeid(f"Machines.{name}.Setpoints.BufferLimit")] = partial(_buffer_limit, st)
        self._setpoints[self.space.nodeid("Line.Clock.Speed")] = self._line_speed
        self._setpoints[self.space.nodeid("Line.Clock.Paused")] = self._paused
        service: AttributeService = self.server.iserver.attribute_service
        original = service.write
        setpoints = self._setpoints

        async def write(params: ua.WriteParameters, *args: Any, **kwargs: Any) -> list[ua.StatusCode]:
            results: list[ua.StatusCode | None] = []
            passed = []
            pending: list[Callable[[], None] | None] = []
            for wv in params.NodesToWrite:
                check = setpoints.get(wv.NodeId)
                if check is None or wv.AttributeId != ua.AttributeIds.Value:
                    results.append(None)
                    passed.append(wv)
                    pending.append(None)
                    continue
                try:
                    value = wv.Value.Value.Value if wv.Value is not None and wv.Value.Value is not None else None
                    apply = check(value)
                except (CommandError, TypeError, ValueError) as exc:
                    log.info("setpoint write rejected: %s", exc)
                    results.append(ua.StatusCode(ua.StatusCodes.BadOutOfRange))
                    continue
                results.append(None)
                passed.append(wv)
                pending.append(apply)
            done = await original(ua.WriteParameters(NodesToWrite=passed), *args, **kwargs)
            for status, apply in zip(done, pending, strict=True):
                if apply is not None and status.is_good():
                    apply()
            it = iter(done)
            return [r if r is not None else next(it) for r in results]

        service.write = write  # type: ignore[method-assign]

    def _line_speed(self, value: Any) -> Callable[[], None]:
        speed = float(value)
        self.driver._check_speed(speed)
        return lambda: self.driver.set_speed(speed)

    def _paused(self, value: Any) -> Callable[[], None]:
        if not isinstance(value, bool):
            raise TypeError("Paused is a Boolean")
        return self.driver.pause if value else self.driver.resume


_MISSING = object()


class _SharedDataValue(ua.DataValue):
    """A DataValue that asyncua may hand to every monitored item without copying: simline never mutates a
    value once written (each change is a new object), so the defensive deepcopy per subscriber is not needed."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _SharedDataValue:
        return self


def _event_id(value: Any) -> bytes:
    while isinstance(value, ua.Variant):
        value = value.Value
    return bytes(value or b"")


def _failure(code: int, n_inputs: int, bad_input: int | None = None) -> ua.CallMethodResult:
    """A method result with a bad status, marking the offending input argument."""
    result = ua.CallMethodResult()
    result.StatusCode = ua.StatusCode(code)
    result.InputArgumentResults = [
        ua.StatusCode(code if i == bad_input else ua.StatusCodes.Good) for i in range(n_inputs)
    ]
    return result


def _speed_override(station: Any, value: Any) -> Callable[[], None]:
    v = float(value)
    if not 0.25 <= v <= 4.0:
        raise CommandError("SpeedOverride", f"must be between 0.25 and 4, got {v:g}")

    def apply() -> None:
        station.speed = v

    return apply


def _buffer_limit(station: Any, value: Any) -> Callable[[], None]:
    v = int(value)
    if not -1 <= v <= 1_000_000:
        raise CommandError("BufferLimit", f"must be -1 (unlimited) or 0 to 1000000, got {v}")
    return lambda: station.buffer.set_capacity(None if v == -1 else v)
