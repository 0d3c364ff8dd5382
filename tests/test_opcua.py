"""The live line over OPC UA, checked end to end with real clients against a real server.

Every test serves a scenario live (``Line(live=True)`` + ``LiveDriver`` + ``LineServer``, open security profile)
on a free loopback port inside the test's own event loop (``opcua_line`` in conftest.py) and talks to it with
an asyncua ``Client``; the interoperability test uses node-opcua (tests/interop/). What a client sees is
compared with the model itself: its recorded events and its state at sync points (the driver paused).
Waits are conditions with a timeout, never a fixed sleep; the only sleeps check that something does *not*
happen (the paused clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytest.importorskip("asyncua", reason="asyncua is not installed (the OPC UA server needs it)")

from asyncua import Client, Node, ua

from opcua_server.server import item_state, operation_mode
from simline.events import (
    MachineState,
    OrderCompleted,
    OrderCreated,
    Repaired,
    StateChanged,
)

ROOT = Path(__file__).resolve().parents[1]
INTEROP = ROOT / "tests" / "interop"
NAMESPACE = "urn:simline:line"
TEST_TIMEOUT = 45.0  # wall seconds for one test's whole event loop
LABELS = {s.label for s in MachineState}
ITEM_STATES = {"NotAvailable", "OutOfService", "Executing", "NotExecuting"}
OPERATION_MODES = {"None", "Maintenance", "Setup", "Processing"}
MACHINE_COMPONENTS = {
    "Identification",
    "MachineryBuildingBlocks",
    "Monitoring",
    "OperationCounters",
    "CurrentOrder",
    "Setpoints",
}
IDENTIFICATION = {
    "Manufacturer",
    "Model",
    "SerialNumber",
    "ProductInstanceUri",
    "YearOfConstruction",
    "Location",
    "Station",
}
PLATE = '{"size": "large", "engraving": "yes"}'

T = TypeVar("T")


# --- helpers ----------------------------------------------------------------------------------------------
def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a fresh event loop (pytest-asyncio is not a test dependency), with a timeout."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), TEST_TIMEOUT))

    return run


async def until(
    predicate: Callable[[], T | Awaitable[T]], what: str, timeout: float = 15.0, interval: float = 0.05
) -> T:
    """Poll ``predicate`` (sync or async) until it returns something truthy; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


def expected_machines(scenario: Any) -> list[tuple[str, str, int]]:
    """``(machine name, station id, machine index)`` as documented: ``station`` or ``station_<n>`` (n from 1)."""
    out = []
    for st in scenario.stations:
        for i in range(st.machines):
            out.append((st.id if st.machines == 1 else f"{st.id}_{i + 1}", st.id, i))
    return out


def dedup(values: Iterable[T]) -> list[T]:
    """Drop consecutive repeats."""
    out: list[T] = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


def is_subsequence(seen: list[Any], entered: list[Any]) -> bool:
    it = iter(entered)
    return all(any(v == e for e in it) for v in seen)


def text(value: Any) -> Any:
    return value.Text if isinstance(value, ua.LocalizedText) else value


class Collector:
    """Subscription handler: data changes by NodeId string, and events, in arrival order."""

    def __init__(self) -> None:
        self.changes: dict[str, list[Any]] = defaultdict(list)
        self.events: list[Any] = []

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        self.changes[str(node.nodeid.Identifier)].append(text(val))

    def event_notification(self, event: Any) -> None:
        self.events.append(event)

    def status_change_notification(self, status: Any) -> None:
        pass


class Session:
    """A connected asyncua client with shortcuts for simline's string NodeIds."""

    def __init__(self, client: Client, idx: int) -> None:
        self.client = client
        self.idx = idx

    def node(self, path: str) -> Node:
        return self.client.get_node(ua.NodeId(path, self.idx))

    async def read(self, path: str) -> Any:
        return text(await self.node(path).read_value())

    async def write(self, path: str, value: Any, kind: ua.VariantType) -> ua.StatusCode:
        """Write one value; returns the status instead of raising."""
        nodeid = ua.NodeId(path, self.idx)
        [status] = await self.client.uaclient.write_attributes([nodeid], [ua.DataValue(ua.Variant(value, kind))])
        return status

    async def call(self, obj: str, method: str, *args: ua.Variant) -> ua.CallMethodResult:
        """Call a method; returns the raw result (status and per-argument results) instead of raising."""
        request = ua.CallMethodRequest(
            ObjectId=ua.NodeId(obj, self.idx), MethodId=ua.NodeId(method, self.idx), InputArguments=list(args)
        )
        [result] = await self.client.uaclient.call([request])
        return result


@contextlib.asynccontextmanager
async def connect(live: Any) -> AsyncIterator[Session]:
    """An anonymous asyncua client session to a live line."""
    async with Client(live.url, timeout=10) as client:
        yield Session(client, await client.get_namespace_index(NAMESPACE))


def string(value: str) -> ua.Variant:
    return ua.Variant(value, ua.VariantType.String)


def uint32(value: int) -> ua.Variant:
    return ua.Variant(value, ua.VariantType.UInt32)


def double(value: float) -> ua.Variant:
    return ua.Variant(value, ua.VariantType.Double)


def code(status: ua.StatusCode) -> str:
    return str(status.name)


async def sync_point(live: Any, s: Session) -> None:
    """Pause the model and wait until the address space shows its final state (clock, counters, states)."""
    live.driver.pause()
    line = live.line
    env = line.env
    # events due at the paused instant are still processed: wait until none is left, then the model is frozen
    await until(lambda: env.peek() > env.now, "the paused model to settle")

    async def synced() -> bool:
        if await s.read("Line.Clock.SimulatedMinutes") != round(line.env.now, 3):
            return False
        for name, sid, i in expected_machines(live.scenario):
            m = line.by_id[sid].machines[i]
            if await s.read(f"Machines.{name}.Monitoring.State") != m.effective_state.label:
                return False
            if await s.read(f"Machines.{name}.OperationCounters.ProcessedCount") != m.processed:
                return False
        return True

    await until(synced, "the address space to show the paused model")


# --- the information model --------------------------------------------------------------------------------
async def _children(node: Node) -> dict[str, ua.ReferenceDescription]:
    return {d.BrowseName.Name: d for d in await node.get_children_descriptions()}


async def _tree(client: Client, node: Node, prefix: str = "") -> dict[str, ua.NodeClass]:
    """Browse path (dotted) -> node class of everything below ``node`` (hierarchical references)."""
    out: dict[str, ua.NodeClass] = {}
    for name, d in (await _children(node)).items():
        path = prefix + name
        out[path] = d.NodeClass
        if d.NodeClass in (ua.NodeClass.Object, ua.NodeClass.Variable):
            out.update(await _tree(client, client.get_node(d.NodeId), path + "."))
    return out


@async_test
async def test_machines_line_and_types_in_the_address_space(opcua_line: Any) -> None:
    async with opcua_line("quickstart") as live, connect(live) as s:
        objects = await _children(s.client.nodes.objects)
        assert {"Machines", "Line"} <= set(objects)
        assert objects["Machines"].BrowseName.NamespaceIndex == s.idx
        assert objects["Line"].NodeId == ua.NodeId("Line", s.idx)
        machines = await s.client.nodes.objects.get_child(f"{s.idx}:Machines")
        found = [(d.BrowseName.Name, d.NodeId) for d in await machines.get_children_descriptions()]
        names = [name for name, _, _ in expected_machines(live.scenario)]
        assert names == ["cut", "engrave", "pack"]
        assert [name for name, _ in found] == names
        assert all(nodeid == ua.NodeId(f"Machines.{name}", s.idx) for name, nodeid in found)
        line = await _tree(s.client, s.node("Line"))
        for path in ("KPIs.OEE", "Clock.SimulatedMinutes", "Clock.Speed", "Clock.Paused", "Orders.OpenOrders"):
            assert line.get(path) == ua.NodeClass.Variable, path
        assert line.get("PlaceOrder") == ua.NodeClass.Method

        # the types: subtypes of BaseObjectType whose children are all Mandatory
        base = s.client.nodes.base_object_type
        subtypes = {
            d.BrowseName.Name: d.NodeId
            for d in await base.get_children_descriptions(refs=ua.ObjectIds.HasSubtype)
            if d.BrowseName.NamespaceIndex == s.idx
        }
        assert subtypes == {
            "SimlineMachineType": ua.NodeId("Types.SimlineMachineType", s.idx),
            "SimlineLineType": ua.NodeId("Types.SimlineLineType", s.idx),
        }
        mandatory = ua.NodeId(ua.ObjectIds.ModellingRule_Mandatory)
        for type_name in subtypes:
            type_node = s.node(f"Types.{type_name}")
            assert await type_node.read_node_class() == ua.NodeClass.ObjectType

            async def check(node: Node, path: str) -> int:
                count = 0
                for d in await node.get_children_descriptions():
                    child = s.client.get_node(d.NodeId)
                    rules = await child.get_referenced_nodes(refs=ua.ObjectIds.HasModellingRule)
                    assert [r.nodeid for r in rules] == [mandatory], f"{path}{d.BrowseName.Name}"
                    count += 1 + await check(child, f"{path}{d.BrowseName.Name}.")
                return count

            assert await check(type_node, f"{type_name}.") >= 10
        # every instance has (at least) the type's children
        type_tree = await _tree(s.client, s.node("Types.SimlineMachineType"))
        for name, _, _ in expected_machines(live.scenario):
            instance = await _tree(s.client, s.node(f"Machines.{name}"))
            assert {p: c for p, c in instance.items() if p in type_tree} == type_tree, name
        assert await s.node("Line").read_type_definition() == ua.NodeId("Types.SimlineLineType", s.idx)
        line_type = await _tree(s.client, s.node("Types.SimlineLineType"))
        line = await _tree(s.client, s.node("Line"))
        assert {p: c for p, c in line.items() if p in line_type} == line_type


@async_test
async def test_every_machine_of_a_multi_machine_line_has_the_machinery_components(opcua_line: Any) -> None:
    async with opcua_line("valve_blocks", speed=600) as live, connect(live) as s:
        await sync_point(live, s)  # states cannot change between the reads below
        expected = expected_machines(live.scenario)
        assert "cnc_2" in {name for name, _, _ in expected} and "coating_4" in {name for name, _, _ in expected}
        folder = await s.client.nodes.objects.get_child(f"{s.idx}:Machines")
        assert [d.BrowseName.Name for d in await folder.get_children_descriptions()] == [n for n, _, _ in expected]
        machine_type = ua.NodeId("Types.SimlineMachineType", s.idx)
        serials = set()
        for name, sid, _ in expected:
            node = s.node(f"Machines.{name}")
            assert await node.read_type_definition() == machine_type
            tree = await _tree(s.client, node)
            assert {p for p in tree if "." not in p} >= MACHINE_COMPONENTS | {"InjectFault", "Reset"}, name
            for path in (
                "MachineryBuildingBlocks.MachineryItemState.CurrentState",
                "MachineryBuildingBlocks.MachineryOperationMode.CurrentState",
                "Monitoring.State",
                "Monitoring.Power",
                "OperationCounters.ProcessedCount",
                "CurrentOrder.OrderId",
                "Setpoints.SpeedOverride",
                "Setpoints.BufferLimit",
            ):
                assert tree.get(path) == ua.NodeClass.Variable, f"{name}.{path}"
            ident = await node.get_child(f"{s.idx}:Identification")
            props = {(await p.read_browse_name()).Name: p for p in await ident.get_properties()}
            assert set(props) == IDENTIFICATION, name
            values = {k: text(await p.read_value()) for k, p in props.items()}
            assert values["Station"] == sid
            assert values["Manufacturer"] and values["Model"]
            assert isinstance(values["YearOfConstruction"], int) and values["YearOfConstruction"] > 2000
            serials.add((values["SerialNumber"], values["ProductInstanceUri"]))
            state = await s.read(f"Machines.{name}.Monitoring.State")
            assert state in LABELS
            item = await s.read(f"Machines.{name}.MachineryBuildingBlocks.MachineryItemState.CurrentState")
            assert item == item_state(MachineState[state.upper()])
            for path, kind in (
                ("Monitoring.State", ua.VariantType.String),
                ("Monitoring.Power", ua.VariantType.Double),
                ("OperationCounters.ProcessedCount", ua.VariantType.Int64),
                ("MachineryBuildingBlocks.MachineryItemState.CurrentState", ua.VariantType.LocalizedText),
            ):
                assert await s.node(f"Machines.{name}.{path}").read_data_type_as_variant_type() == kind, path
        assert len({serial for serial, _ in serials}) == len(expected), "serial numbers must be unique"
        assert len({uri for _, uri in serials}) == len(expected), "ProductInstanceUris must be unique"


# --- live values against the model ------------------------------------------------------------------------
@async_test
async def test_states_and_counters_seen_over_opcua_follow_the_model(opcua_line: Any) -> None:
    async with opcua_line("quickstart", speed=2000) as live, connect(live) as s:
        machines = expected_machines(live.scenario)
        handler = Collector()
        sub = await s.client.create_subscription(20, handler)
        paths = {
            name: (
                f"Machines.{name}.Monitoring.State",
                f"Machines.{name}.MachineryBuildingBlocks.MachineryItemState.CurrentState",
                f"Machines.{name}.MachineryBuildingBlocks.MachineryOperationMode.CurrentState",
            )
            for name, _, _ in machines
        }
        counters = ("ProcessedCount", "GoodCount", "FailureCount", "OperatingTime")
        nodes = [s.node(p) for ps in paths.values() for p in ps]
        nodes += [s.node(f"Machines.{n}.OperationCounters.{c}") for n, _, _ in machines for c in counters]
        await sub.subscribe_data_change(nodes, queuesize=1000)

        def entered(sid: str, i: int) -> list[MachineState]:
            """The states the model entered, in order (the initial state emits no event)."""
            states = [live.initial_states[(sid, i)]]
            states += [
                e.state for e in live.events if isinstance(e, StateChanged) and (e.station, e.machine) == (sid, i)
            ]
            return dedup(states)

        cut_state = paths["cut"][0]
        await until(lambda: len(dedup(handler.changes[cut_state])) >= 6, "six state changes of cut over OPC UA")
        await until(lambda: live.line.by_id["pack"].machines[0].processed >= 2, "pack to process two units")
        await sync_point(live, s)
        for name, sid, i in machines:
            m = live.line.by_id[sid].machines[i]
            model = entered(sid, i)
            state_path, item_path, mode_path = paths[name]
            # the final value arrives last: wait for it, then compare the whole sequence
            final = m.effective_state
            await until(
                lambda p=state_path, f=final: handler.changes[p] and handler.changes[p][-1] == f.label,
                f"the final state of {name} by subscription",
            )
            seen = dedup(handler.changes[state_path])
            assert set(seen) <= LABELS
            assert is_subsequence(seen, [st.label for st in model]), (name, seen, [st.label for st in model])
            items = dedup(handler.changes[item_path])
            assert is_subsequence(items, dedup(item_state(st) for st in model)), (name, items)
            modes = dedup(handler.changes[mode_path])
            assert is_subsequence(modes, dedup(operation_mode(st) for st in model)), (name, modes)
            assert set(items) <= ITEM_STATES and set(modes) <= OPERATION_MODES
            # at the sync point the three views of the state agree with the model and the documented mapping
            assert await s.read(state_path) == final.label
            assert await s.read(item_path) == item_state(final)
            assert await s.read(mode_path) == operation_mode(final)

            # counters never decrease and show the model's at the sync point
            counts = {
                "ProcessedCount": m.processed,
                "GoodCount": m.good,
                "FailureCount": m.failures,
                "OperatingTime": round(m.times[MachineState.PROCESSING] / 60.0, 4),
            }
            for counter in counters:
                path = f"Machines.{name}.OperationCounters.{counter}"
                await until(
                    lambda p=path, v=counts[counter]: handler.changes[p] and handler.changes[p][-1] == v,
                    f"{path} = {counts[counter]} by subscription",
                )
                values = handler.changes[path]
                assert values == sorted(values), f"{path} decreased: {values}"
                assert await s.read(path) == counts[counter], path
            assert m.good <= m.processed
        assert len(dedup(handler.changes[cut_state])) >= 6
        assert live.line.by_id["cut"].machines[0].processed >= 2
        await sub.delete()


def test_documented_state_mapping() -> None:
    """MachineryItemState and MachineryOperationMode of every state (OPC 40001-1 annex C, as documented)."""
    S = MachineState
    assert {st: item_state(st) for st in S} == {
        S.PROCESSING: "Executing",
        S.SETUP: "NotExecuting",
        S.IDLE: "NotExecuting",
        S.BLOCKED: "NotExecuting",
        S.STANDBY: "NotExecuting",
        S.DOWN: "OutOfService",
        S.MAINTENANCE: "OutOfService",
        S.OFF_SHIFT: "NotAvailable",
    }
    assert {st: operation_mode(st) for st in S} == {
        S.PROCESSING: "Processing",
        S.SETUP: "Setup",
        S.IDLE: "Processing",
        S.BLOCKED: "Processing",
        S.STANDBY: "Processing",
        S.DOWN: "Processing",
        S.MAINTENANCE: "Maintenance",
        S.OFF_SHIFT: "None",
    }


# --- orders -----------------------------------------------------------------------------------------------
@async_test
async def test_place_order_is_served_and_completes_with_an_event(opcua_line: Any) -> None:
    async with opcua_line("quickstart", speed=600) as live, connect(live) as s:
        line = live.line
        handler = Collector()
        sub = await s.client.create_subscription(20, handler)
        await sub.subscribe_events(s.node("Line"))
        result = await s.call("Line", "Line.PlaceOrder", string("plate"), string(PLATE), uint32(2))
        assert result.StatusCode.is_good(), code(result.StatusCode)
        [oid] = [v.Value for v in result.OutputArguments]
        live.driver.pause()  # hold the order open until the address space shows it
        assert isinstance(oid, str) and oid in line.orders
        order = line.orders[oid]
        assert (order.variant.family, dict(order.variant.options), order.quantity) == (
            "plate",
            {"size": "large", "engraving": "yes"},
            2,
        )
        created = [e for e in live.events if isinstance(e, OrderCreated) and e.order_id == oid]
        assert len(created) == 1 and created[0].quantity == 2
        assert await s.read("Line.LastCommandResult") == f"PlaceOrder accepted: {oid}"

        async def last_order_is(order_id: str) -> bool:
            return await s.read("Line.Orders.LastOrderId") == order_id

        await until(lambda: last_order_is(oid), f"Line.Orders.LastOrderId = {oid}", timeout=3)

        async def listed() -> bool:
            orders = json.loads(await s.read("Line.Orders.OrderList") or "[]")
            return any(o["order_id"] == oid and o["quantity"] == 2 and o["product"] == "plate" for o in orders)

        await until(listed, f"{oid} in Line.Orders.OrderList")
        assert await s.read("Line.Orders.OpenOrders") == len(line.orders) >= 1
        completed_before = await s.read("Line.Orders.CompletedOrders")

        # with the high-level API the same call returns the id
        other = await s.node("Line").call_method(
            ua.NodeId("Line.PlaceOrder", s.idx), "plate", "size=small;engraving=no", uint32(1)
        )
        assert other in line.orders and other != oid
        await until(lambda: last_order_is(other), f"Line.Orders.LastOrderId = {other}", timeout=3)

        live.driver.set_speed(3000)
        live.driver.resume()
        await until(lambda: oid not in line.orders, f"{oid} to complete", timeout=25)
        [done] = [e for e in live.events if isinstance(e, OrderCompleted) and e.order_id == oid]
        message = re.compile(rf"order {oid} completed in \d+\.\d\d h \((on time|late)\)$")
        event = await until(
            lambda: next((e for e in handler.events if message.match(text(e.Message))), None),
            f"the order-completed event of {oid}",
        )
        assert text(event.Message).endswith("(on time)" if done.on_time else "(late)")
        assert event.SourceNode == ua.NodeId("Line", s.idx)
        assert event.Severity == 100
        assert isinstance(event.Time, datetime)

        async def counted() -> bool:
            return await s.read("Line.Orders.CompletedOrders") >= completed_before + 1

        await until(counted, "Line.Orders.CompletedOrders to count the order")
        await sub.delete()


INVALID_ORDERS = [
    ("unknown family", "widget", '{"size": "small", "engraving": "no"}', 1, 0),
    ("unknown choice", "plate", '{"size": "huge", "engraving": "no"}', 1, 1),
    ("unknown option", "plate", "size=small;engraving=no;colour=red", 1, 1),
    ("missing option", "plate", '{"size": "small"}', 1, 1),
    ("options not JSON", "plate", '{"size": ', 1, 1),
    ("choice not text", "plate", '{"size": 3, "engraving": "no"}', 1, 1),
    ("quantity 0", "plate", '{"size": "small", "engraving": "no"}', 0, 2),
    ("quantity too large", "plate", '{"size": "small", "engraving": "no"}', 10_001, 2),
]


@async_test
async def test_invalid_orders_are_rejected_with_the_argument_marked_and_the_run_goes_on(opcua_line: Any) -> None:
    async with opcua_line("quickstart", speed=1200) as live, connect(live) as s:
        line = live.line
        bad = ua.StatusCodes.BadInvalidArgument
        live.driver.pause()  # no scenario orders arrive meanwhile: any new order would be one of ours
        open_before = dict(line.orders)
        created_before = sum(isinstance(e, OrderCreated) for e in live.events)
        for label, family, options, quantity, index in INVALID_ORDERS:
            result = await s.call("Line", "Line.PlaceOrder", string(family), string(options), uint32(quantity))
            assert result.StatusCode.value == bad, (label, code(result.StatusCode))
            assert [r.value for r in result.InputArgumentResults] == [
                bad if i == index else ua.StatusCodes.Good for i in range(3)
            ], label
            assert not result.OutputArguments, label
            assert (await s.read("Line.LastCommandResult")).startswith("PlaceOrder rejected: "), label
        # wrong argument types: rejected as a whole
        result = await s.call("Line", "Line.PlaceOrder", ua.Variant(7, ua.VariantType.Int32), string(""), uint32(1))
        assert result.StatusCode.value == bad
        with pytest.raises(ua.UaStatusCodeError) as raised:
            await s.node("Line").call_method(ua.NodeId("Line.PlaceOrder", s.idx), "widget", "", uint32(1))
        assert raised.value.code == bad
        assert line.orders == open_before
        assert sum(isinstance(e, OrderCreated) for e in live.events) == created_before
        # the run goes on: the simulated clock advances, the driver runs, the server answers and logs no error
        now = line.env.now
        live.driver.resume()
        await until(lambda: line.env.now > now + 30, "30 more simulated minutes")

        async def clock_moves() -> bool:
            return await s.read("Line.Clock.SimulatedMinutes") > now + 30

        await until(clock_moves, "Line.Clock.SimulatedMinutes to advance")
        assert not live.run_task.done()
        assert not live.server_errors()
        oid = await s.node("Line").call_method(ua.NodeId("Line.PlaceOrder", s.idx), "plate", PLATE, uint32(1))
        assert oid in line.orders or any(isinstance(e, OrderCompleted) and e.order_id == oid for e in live.events)


@async_test
async def test_method_arguments_of_the_wrong_type_are_rejected(opcua_line: Any) -> None:
    async with opcua_line("quickstart", speed=600) as live, connect(live) as s:
        live.driver.pause()
        created = sum(isinstance(e, OrderCreated) for e in live.events)
        type_errors = (ua.StatusCodes.BadTypeMismatch, ua.StatusCodes.BadInvalidArgument)
        for quantity in (
            ua.Variant(1.7, ua.VariantType.Double),
            ua.Variant("2", ua.VariantType.String),
            ua.Variant(True, ua.VariantType.Boolean),
        ):
            result = await s.call("Line", "Line.PlaceOrder", string("plate"), string(PLATE), quantity)
            assert result.StatusCode.value in type_errors, (quantity, code(result.StatusCode))
            assert result.InputArgumentResults[2].value in type_errors, quantity
        assert sum(isinstance(e, OrderCreated) for e in live.events) == created
        pack = live.line.by_id["pack"].machines[0]
        result = await s.call("Machines.pack", "Machines.pack.InjectFault", ua.Variant(True, ua.VariantType.Boolean))
        assert result.StatusCode.value in type_errors, code(result.StatusCode)
        result = await s.call("Machines.pack", "Machines.pack.InjectFault", double(-5.0))
        assert result.StatusCode.value == ua.StatusCodes.BadOutOfRange, code(result.StatusCode)
        assert pack.reset() == "running", "no fault may be armed"


# --- faults and alarms ------------------------------------------------------------------------------------
@async_test
async def test_inject_fault_raises_an_alarm_and_reset_repairs(opcua_line: Any) -> None:
    # pack has no failures of its own in the quickstart: every breakdown of it is ours
    async with contextlib.AsyncExitStack() as stack:
        live = await stack.enter_async_context(opcua_line("quickstart", speed=600))
        live.driver.pause()  # at once: the first unit reaches pack after at least five simulated minutes
        s = await stack.enter_async_context(connect(live))
        pack = live.line.by_id["pack"].machines[0]
        obj = "Machines.pack"
        handler = Collector()
        sub = await s.client.create_subscription(20, handler)
        state = "Machines.pack.Monitoring.State"
        await sub.subscribe_data_change([s.node(state), s.node("Machines.pack.OperationCounters.FailureCount")])
        await sub.subscribe_events(s.node(obj), evtypes=ua.ObjectIds.OffNormalAlarmType)

        # before the first unit reaches pack, a fault is armed for its next work and Reset disarms it
        assert pack.state in (MachineState.IDLE, MachineState.STANDBY), pack.state
        result = await s.call(obj, f"{obj}.InjectFault", double(5.0))
        assert result.StatusCode.is_good() and result.OutputArguments[0].Value == "armed"
        again = await s.call(obj, f"{obj}.InjectFault", double(5.0))
        assert again.StatusCode.value == ua.StatusCodes.BadInvalidState, code(again.StatusCode)
        result = await s.call(obj, f"{obj}.Reset")
        assert result.StatusCode.is_good() and result.OutputArguments[0].Value == "disarmed"
        result = await s.call(obj, f"{obj}.Reset")
        assert result.OutputArguments[0].Value == "running"
        # out of range repair time: the argument is marked
        result = await s.call(obj, f"{obj}.InjectFault", double(20_000.0))
        assert result.StatusCode.value == ua.StatusCodes.BadOutOfRange, code(result.StatusCode)
        assert [r.value for r in result.InputArgumentResults] == [ua.StatusCodes.BadOutOfRange]
        result = await s.call(obj, f"{obj}.InjectFault", string("soon"))
        assert result.StatusCode.value == ua.StatusCodes.BadInvalidArgument
        assert pack.failures == 0
        live.driver.set_speed(3000)
        live.driver.resume()

        # a long fault: down (at once or at the next work), the alarm goes active
        result = await s.call(obj, f"{obj}.InjectFault", double(5000.0))
        assert result.StatusCode.is_good() and result.OutputArguments[0].Value in ("down", "armed")
        await until(lambda: "down" in handler.changes[state], "state 'down' by subscription")
        assert pack.state is MachineState.DOWN
        active = await until(
            lambda: next((e for e in handler.events if text(e.ActiveState) == "Active"), None), "an active alarm"
        )
        assert text(active.Message) == "pack broke down"
        assert active.Severity >= 700
        assert active.SourceNode == ua.NodeId(obj, s.idx)
        assert active.SourceName == "pack"
        assert active.EventType == ua.NodeId(ua.ObjectIds.OffNormalAlarmType)
        assert active.Retain is True
        assert active.ConditionName == "Breakdown"
        assert getattr(active, "ActiveState/Id") is True
        assert text(active.AckedState) == "Unacknowledged"
        assert getattr(active, "AckedState/Id") is False
        result = await s.call(obj, f"{obj}.InjectFault", double(5.0))
        assert result.StatusCode.value == ua.StatusCodes.BadInvalidState, "a down machine cannot break again"
        assert [r.value for r in result.InputArgumentResults] == [ua.StatusCodes.Good]

        # acknowledging the alarm by its EventId
        ack = ua.CallMethodRequest(
            ObjectId=ua.NodeId(obj, s.idx),
            MethodId=ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge),
            InputArguments=[
                ua.Variant(active.EventId, ua.VariantType.ByteString),
                ua.Variant(ua.LocalizedText("seen"), ua.VariantType.LocalizedText),
            ],
        )
        [acked] = await s.client.uaclient.call([ack])
        assert acked.StatusCode.is_good(), code(acked.StatusCode)
        acked_event = await until(
            lambda: next((e for e in handler.events if text(e.AckedState) == "Acknowledged"), None),
            "the acknowledged alarm",
        )
        assert getattr(acked_event, "AckedState/Id") is True
        ack.InputArguments[0] = ua.Variant(b"no such event", ua.VariantType.ByteString)
        [unknown] = await s.client.uaclient.call([ack])
        assert unknown.StatusCode.value == ua.StatusCodes.BadEventIdUnknown

        # Reset ends the repair at once: the machine runs again and the alarm goes inactive
        result = await s.call(obj, f"{obj}.Reset")
        assert result.StatusCode.is_good() and result.OutputArguments[0].Value == "repaired"
        assert (await s.read("Line.LastCommandResult")).endswith("repaired")
        await until(
            lambda: handler.changes[state][-1] != "down" and "down" in handler.changes[state],
            "a state after 'down' by subscription",
        )
        [repaired] = [e for e in live.events if isinstance(e, Repaired) and e.station == "pack"]
        assert repaired.downtime < 5000
        inactive = await until(
            lambda: next((e for e in handler.events if text(e.ActiveState) == "Inactive"), None), "the inactive alarm"
        )
        assert text(inactive.Message) == f"pack repaired after {repaired.downtime:.0f} min"
        assert getattr(inactive, "ActiveState/Id") is False
        assert inactive.Retain is False
        assert pack.failures == 1
        failures = "Machines.pack.OperationCounters.FailureCount"
        await until(lambda: handler.changes[failures] and handler.changes[failures][-1] == 1, "FailureCount = 1")
        await sub.delete()


@async_test
async def test_alarms_carry_a_condition_id_to_acknowledge_by(opcua_line: Any) -> None:
    async with opcua_line("quickstart", speed=1200) as live, connect(live) as s:
        handler = Collector()
        sub = await s.client.create_subscription(20, handler)
        await sub.subscribe_events(s.node("Machines.cut"), evtypes=ua.ObjectIds.OffNormalAlarmType)
        result = await s.call("Machines.cut", "Machines.cut.InjectFault", double(60.0))
        assert result.StatusCode.is_good()
        active = await until(
            lambda: next((e for e in handler.events if text(e.ActiveState) == "Active"), None), "an active alarm"
        )
        live.driver.pause()
        condition = getattr(active, "NodeId", None)
        assert isinstance(condition, ua.NodeId) and not condition.is_null(), condition
        ack = ua.CallMethodRequest(
            ObjectId=condition,
            MethodId=ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge),
            InputArguments=[
                ua.Variant(active.EventId, ua.VariantType.ByteString),
                ua.Variant(ua.LocalizedText("seen"), ua.VariantType.LocalizedText),
            ],
        )
        [acked] = await s.client.uaclient.call([ack])
        assert acked.StatusCode.is_good(), code(acked.StatusCode)


# --- setpoints and the clock ------------------------------------------------------------------------------
@async_test
async def test_setpoint_writes_change_the_model_or_are_rejected_whole(opcua_line: Any) -> None:
    async with opcua_line("quickstart", speed=1200) as live, connect(live) as s:
        cut = live.line.by_id["cut"]
        V = ua.VariantType
        speed = "Machines.cut.Setpoints.SpeedOverride"
        limit = "Machines.cut.Setpoints.BufferLimit"
        assert await s.read(speed) == 1.0 and cut.speed == 1.0
        assert await s.read(limit) == 20 and cut.buffer.capacity == 20

        assert (await s.write(speed, 1.5, V.Double)).is_good()
        assert cut.speed == 1.5
        assert await s.read(speed) == 1.5
        await s.node(speed).write_value(ua.Variant(0.25, V.Double))  # the high-level API, lower bound
        assert cut.speed == 0.25
        for wrong in (9.0, 0.1, -1.0, math.nan, math.inf):
            status = await s.write(speed, wrong, V.Double)
            assert status.value == ua.StatusCodes.BadOutOfRange, (wrong, code(status))
        assert not (await s.write(speed, "fast", V.String)).is_good()
        with pytest.raises(ua.UaStatusCodeError):
            await s.node(speed).write_value(ua.Variant(4.5, V.Double))
        assert cut.speed == 0.25
        assert await s.read(speed) == 0.25

        assert (await s.write(limit, -1, V.Int32)).is_good()
        assert cut.buffer.capacity is None
        assert (await s.write(limit, 5, V.Int32)).is_good()
        assert cut.buffer.capacity == 5
        for wrong in (-2, 2_000_000):
            status = await s.write(limit, wrong, V.Int32)
            assert status.value == ua.StatusCodes.BadOutOfRange, (wrong, code(status))
        assert cut.buffer.capacity == 5
        assert await s.read(limit) == 5

        # one request, a valid and an invalid setpoint: each gets its own status, only the valid one applies
        engrave = live.line.by_id["engrave"]
        ids = [ua.NodeId("Machines.engrave.Setpoints.SpeedOverride", s.idx)]
        ids.append(ua.NodeId("Machines.engrave.Setpoints.BufferLimit", s.idx))
        values = [ua.DataValue(ua.Variant(2.0, V.Double)), ua.DataValue(ua.Variant(-7, V.Int32))]
        statuses = await s.client.uaclient.write_attributes(ids, values)
        assert [st.value for st in statuses] == [ua.StatusCodes.Good, ua.StatusCodes.BadOutOfRange]
        assert engrave.speed == 2.0 and engrave.buffer.capacity == 10

        # monitoring values are read-only
        status = await s.write("Machines.cut.Monitoring.Power", 1.0, V.Double)
        assert status.value in (ua.StatusCodes.BadNotWritable, ua.StatusCodes.BadUserAccessDenied), code(status)

        # the sync keeps the setpoints showing the model (also after the server's own writes)
        async def shown() -> bool:
            return (await s.read(speed), await s.read(limit)) == (0.25, 5)

        await until(shown, "the setpoints after a sync")
        assert not live.server_errors()


@async_test
async def test_clock_speed_and_pause_drive_the_live_driver(opcua_line: Any) -> None:
    async with opcua_line("quickstart", speed=1200) as live, connect(live) as s:
        driver, env = live.driver, live.line.env
        V = ua.VariantType
        assert await s.read("Line.Clock.Speed") == 1200.0
        assert (await s.write("Line.Clock.Speed", 2400.0, V.Double)).is_good()
        assert driver.speed == 2400.0
        for wrong in (0.01, 1e6, -5.0, math.nan):
            status = await s.write("Line.Clock.Speed", wrong, V.Double)
            assert status.value == ua.StatusCodes.BadOutOfRange, (wrong, code(status))
        assert driver.speed == 2400.0

        async def speed_shown() -> bool:
            return await s.read("Line.Clock.Speed") == 2400.0

        await until(speed_shown, "Line.Clock.Speed = 2400")

        assert (await s.write("Line.Clock.Paused", True, V.Boolean)).is_good()
        assert driver.paused
        assert not (await s.write("Line.Clock.Paused", 0, V.Int32)).is_good()
        assert driver.paused
        frozen = env.now

        async def paused_shown() -> bool:
            return await s.read("Line.Clock.Paused") is True and await s.read("Line.Clock.SimulatedMinutes") == round(
                frozen, 3
            )

        await until(paused_shown, "the paused clock in the address space")
        await asyncio.sleep(0.6)  # 12 simulated minutes at this speed, if the clock did not stop
        assert env.now == frozen
        assert await s.read("Line.Clock.SimulatedMinutes") == round(frozen, 3)

        assert (await s.write("Line.Clock.Paused", False, V.Boolean)).is_good()
        assert not driver.paused
        await until(lambda: env.now > frozen + 10, "the simulated clock to run again")

        async def running_shown() -> bool:
            return await s.read("Line.Clock.Paused") is False and await s.read("Line.Clock.SimulatedMinutes") > frozen

        await until(running_shown, "the running clock in the address space")
        # the pace follows the new speed: 2400 simulated s per wall s = 40 simulated minutes per wall second
        loop = asyncio.get_running_loop()
        t0, m0 = loop.time(), env.now
        await until(lambda: env.now > m0 + 40, "40 simulated minutes")
        assert loop.time() - t0 > 0.5


# --- history ----------------------------------------------------------------------------------------------
@async_test
async def test_history_read_returns_bounded_time_ordered_values(opcua_line: Any) -> None:
    start = datetime.now(UTC)
    async with opcua_line("quickstart", speed=3000, history_count=6) as live, connect(live) as s:
        power = s.node("Machines.cut.Monitoring.Power")
        oee = s.node("Line.KPIs.OEE")
        for node in (power, oee):
            assert (await node.read_attribute(ua.AttributeIds.Historizing)).Value.Value is True
            access = (await node.read_attribute(ua.AttributeIds.UserAccessLevel)).Value.Value
            assert access & ua.AccessLevel.HistoryRead.mask
        value = await power.read_data_value()
        assert value.SourceTimestamp is not None and value.SourceTimestamp >= start, value
        handler = Collector()
        sub = await s.client.create_subscription(20, handler)
        await sub.subscribe_data_change([power, oee], queuesize=1000)
        await until(lambda: len(handler.changes["Machines.cut.Monitoring.Power"]) >= 8, "8 values of cut's power")
        await until(lambda: len(handler.changes["Line.KPIs.OEE"]) >= 2, "2 values of the OEE")
        live.driver.pause()
        end = datetime.now(UTC)
        allowed_power = {6.0, 1.5, 0.3}  # processing, idle, down (scenario)
        for node, check in ((power, lambda v: v in allowed_power), (oee, lambda v: 0.0 <= v <= 1.0)):
            history = await node.read_raw_history(starttime=start, endtime=end)
            assert 2 <= len(history) <= 6, len(history)
            stamps = [dv.SourceTimestamp for dv in history]
            assert all(start <= a < b <= end for a, b in itertools.pairwise(stamps)), stamps
            assert all(check(dv.Value.Value) for dv in history)
            assert len(await node.read_raw_history(starttime=start, endtime=end, numvalues=2)) == 2
        assert len(await power.read_raw_history(starttime=start, endtime=end)) == 6  # the newest 6 of >= 8
        await sub.delete()


# --- interoperability: node-opcua -------------------------------------------------------------------------
def _node_client() -> list[str]:
    """The command that runs the node-opcua client; skips (or fails in CI) when node or the packages are missing."""
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "node (Node.js >= 20) is not on PATH"
    elif not (INTEROP / "node_modules" / "node-opcua").is_dir():
        missing = "tests/interop/node_modules is missing"
    if missing:
        if os.environ.get("SIMLINE_REQUIRE_EXTERNAL") == "1":
            pytest.fail(
                f"{missing}; SIMLINE_REQUIRE_EXTERNAL=1 requires it. Install the pinned client with: "
                "npm ci --prefix tests/interop",
                pytrace=False,
            )
        pytest.skip(f"{missing} (npm ci --prefix tests/interop)")
    assert node is not None
    return [node, str(INTEROP / "read_machines.js")]


@async_test
async def test_node_opcua_client_reads_the_machines(opcua_line: Any) -> None:
    command = _node_client()
    async with opcua_line("valve_blocks", speed=20_000) as live, connect(live) as s:
        # into the first shift (06:00 Monday, minute 360) so that the machines are not all off shift
        await until(lambda: live.line.env.now > 400, "the first shift of the valve-block line")
        await sync_point(live, s)  # paused: the states cannot change while node reads them
        proc = await asyncio.create_subprocess_exec(
            *command, live.url, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=40)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            pytest.fail("node tests/interop/read_machines.js did not finish within 40 s")
        assert proc.returncode == 0, f"exit {proc.returncode}\n{err.decode(errors='replace')}"
        # the probe prints one JSON object; anything a library logged before it is not part of the answer
        lines = [line for line in out.decode(errors="replace").splitlines() if line.lstrip().startswith("{")]
        assert lines, f"no JSON from the node-opcua probe: {out!r}"
        data = json.loads(lines[-1])
        assert data["namespaceUri"] == NAMESPACE
        assert data["namespaceIndex"] == s.idx
        expected = expected_machines(live.scenario)
        assert [m["name"] for m in data["machines"]] == [name for name, _, _ in expected]
        states = set()
        for m, (name, sid, i) in zip(data["machines"], expected, strict=True):
            model = live.line.by_id[sid].machines[i].effective_state
            assert m["namespaceIndex"] == s.idx
            assert m["nodeId"] == f"ns={s.idx};s=Machines.{name}"
            assert m["state"] in LABELS and m["itemState"] in ITEM_STATES and m["operationMode"] in OPERATION_MODES
            assert (m["state"], m["itemState"], m["operationMode"]) == (
                model.label,
                item_state(model),
                operation_mode(model),
            ), name
            states.add(m["state"])
        assert states != {"off_shift"}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
