"""The OPC UA information model of a line, built types-first from the scenario, shaped after OPC 40001-1.

``Objects/Machines/<machine>`` holds one object per physical machine (``<station>`` or ``<station>_<n>`` for
stations with several machines) with Identification, MachineryBuildingBlocks (MachineryItemState,
MachineryOperationMode), Monitoring, OperationCounters, CurrentOrder and Setpoints; ``Objects/Line`` holds the
line's KPIs, clock and orders. NodeIds are strings derived from these browse paths, e.g.
``ns=<simline>;s=Machines.cut.Monitoring.Power``: never hard-coded numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asyncua import Node, Server, ua

from simline.scenario.model import Scenario

__all__ = ["LINE_SPEC", "MACHINE_SPEC", "NAMESPACE", "AddressSpace", "build_address_space", "machine_names"]

NAMESPACE = "urn:simline:line"

V = ua.VariantType
# name -> VariantType for a variable, or a nested dict for a child object. Properties start with "@".
MACHINE_SPEC: dict[str, Any] = {
    "Identification": {
        "@Manufacturer": V.LocalizedText,
        "@Model": V.LocalizedText,
        "@SerialNumber": V.String,
        "@ProductInstanceUri": V.String,
        "@YearOfConstruction": V.UInt16,
        "@Location": V.String,
        "@Station": V.String,
    },
    "MachineryBuildingBlocks": {
        "MachineryItemState": {"CurrentState": V.LocalizedText},
        "MachineryOperationMode": {"CurrentState": V.LocalizedText},
    },
    "Monitoring": {
        "State": V.String,
        "Power": V.Double,
        "Condition": V.Double,
        "Temperature": V.Double,
        "Vibration": V.Double,
        "BufferLevel": V.Int32,
    },
    "OperationCounters": {
        "ProcessedCount": V.Int64,
        "GoodCount": V.Int64,
        "OperatingTime": V.Double,
        "FailureCount": V.Int64,
    },
    "CurrentOrder": {"OrderId": V.String, "Product": V.String, "Options": V.String},
    "Setpoints": {"SpeedOverride": V.Double, "BufferLimit": V.Int32},
}
LINE_SPEC: dict[str, Any] = {
    "KPIs": {
        "OEE": V.Double,
        "Availability": V.Double,
        "Performance": V.Double,
        "Quality": V.Double,
        "ThroughputPerHour": V.Double,
        "WIP": V.Double,
        "OnTimeDelivery": V.Double,
        "LeadTimeMeanHours": V.Double,
        "ScrapRate": V.Double,
        "EnergyPerGoodUnit": V.Double,
        "Bottleneck": V.String,
    },
    "Clock": {
        "SimulatedTime": V.DateTime,
        "SimulatedMinutes": V.Double,
        "Speed": V.Double,
        "LagSeconds": V.Double,
        "Paused": V.Boolean,
    },
    "Orders": {"OpenOrders": V.Int32, "CompletedOrders": V.Int64, "LastOrderId": V.String, "OrderList": V.String},
    "LastCommandResult": V.String,
}
UNITS = {
    "Power": "kW",
    "Condition": "degradation 0 (as new) to 1 (failure limit)",
    "Temperature": "°C",
    "Vibration": "mm/s RMS",
    "OperatingTime": "h",
    "SpeedOverride": "factor 0.25 to 4 on processing speed",
    "BufferLimit": "units; -1 is unlimited",
    "ThroughputPerHour": "good units per hour",
    "LeadTimeMeanHours": "h",
    "EnergyPerGoodUnit": "kWh",
    "SimulatedMinutes": "min since the start of the run",
    "Speed": "simulated seconds per wall second",
    "LagSeconds": "s the simulation trails the wall clock",
    "OrderList": "JSON list of open orders",
}
WRITABLE = {"SpeedOverride", "BufferLimit", "Speed", "Paused"}
DEFAULTS: dict[Any, Any] = {
    V.String: "",
    V.LocalizedText: ua.LocalizedText(""),
    V.Double: 0.0,
    V.Int32: 0,
    V.Int64: 0,
    V.UInt16: 0,
    V.Boolean: False,
}


def machine_names(scenario: Scenario) -> list[tuple[str, int, str]]:
    """``(machine name, machine index, station id)`` for every machine of the line, in line order."""
    out = []
    for st in scenario.stations:
        for i in range(st.machines):
            out.append((st.id if st.machines == 1 else f"{st.id}_{i + 1}", i, st.id))
    return out


@dataclass
class AddressSpace:
    """The nodes the live sync writes to and the methods it serves."""

    idx: int
    machines_folder: Node
    line: Node
    machine_nodes: dict[str, Node] = field(default_factory=dict)
    types: dict[str, Node] = field(default_factory=dict)

    def nodeid(self, path: str) -> ua.NodeId:
        """The NodeId of a variable by its path, e.g. ``Machines.cut.Monitoring.Power`` or ``Line.KPIs.OEE``."""
        return ua.NodeId(path, self.idx)


async def _add_type_children(parent: Node, idx: int, spec: dict[str, Any]) -> None:
    for name, kind in spec.items():
        if isinstance(kind, dict):
            child = await parent.add_object(idx, name)
            await child.set_modelling_rule(True)
            await _add_type_children(child, idx, kind)
            continue
        prop = name.startswith("@")
        bname = name.lstrip("@")
        default = ua.Variant(DEFAULTS.get(kind), kind) if kind in DEFAULTS else ua.Variant(None, kind)
        node = await (parent.add_property if prop else parent.add_variable)(idx, bname, default)
        await node.set_modelling_rule(True)
        if bname in UNITS:
            await node.write_attribute(
                ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(UNITS[bname])))
            )


async def _object_type(server: Server, idx: int, name: str, spec: dict[str, Any]) -> Node:
    base = server.get_node(ua.ObjectIds.BaseObjectType)
    node = await base.add_object_type(ua.NodeId(f"Types.{name}", idx), ua.QualifiedName(name, idx))
    await _add_type_children(node, idx, spec)
    return node


async def _writable(node: Node, spec: dict[str, Any]) -> None:
    for name, kind in spec.items():
        child = await node.get_child(f"{node.nodeid.NamespaceIndex}:{name.lstrip('@')}")
        if isinstance(kind, dict):
            await _writable(child, kind)
        elif name in WRITABLE:
            await child.set_writable(True)


async def build_address_space(server: Server, scenario: Scenario, location: str = "") -> AddressSpace:
    """Create the simline types and one instance per machine and for the line.

    Returns:
        The nodes the live sync needs.
    """
    idx = await server.register_namespace(NAMESPACE)
    machine_type = await _object_type(server, idx, "SimlineMachineType", MACHINE_SPEC)
    line_type = await _object_type(server, idx, "SimlineLineType", LINE_SPEC)
    objects = server.nodes.objects
    folder = await objects.add_folder(ua.NodeId("Machines", idx), ua.QualifiedName("Machines", idx))
    line = await objects.add_object(ua.NodeId("Line", idx), ua.QualifiedName("Line", idx), objecttype=line_type.nodeid)
    await _writable(line, LINE_SPEC)
    space = AddressSpace(idx, folder, line, types={"machine": machine_type, "line": line_type})
    for name, index, sid in machine_names(scenario):
        station = scenario.station(sid)
        node = await folder.add_object(
            ua.NodeId(f"Machines.{name}", idx), ua.QualifiedName(name, idx), objecttype=machine_type.nodeid
        )
        await _writable(node, MACHINE_SPEC)
        space.machine_nodes[name] = node
        ident = {
            "Manufacturer": ua.LocalizedText("simline"),
            "Model": ua.LocalizedText(f"{station.kind} station"),
            "SerialNumber": f"SL-{sid.upper()}-{index + 1:02d}",
            "ProductInstanceUri": f"urn:simline:{sid}:{index + 1}",
            "YearOfConstruction": 2026,
            "Location": location or scenario.name,
            "Station": sid,
        }
        for key, value in ident.items():
            kind = MACHINE_SPEC["Identification"][f"@{key}"]
            await server.write_attribute_value(
                space.nodeid(f"Machines.{name}.Identification.{key}"), ua.DataValue(ua.Variant(value, kind))
            )
        if station.name:
            await node.write_attribute(
                ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(station.name)))
            )
    return space
