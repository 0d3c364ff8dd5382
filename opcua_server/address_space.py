"""The OPC UA information model of a line, built types-first from the scenario, shaped after OPC 40001-1.

``Objects/Machines/<machine>`` holds one object per physical machine (``<station>`` or ``<station>_<n>`` for
stations with several machines) with Identification, MachineryBuildingBlocks (MachineryItemState,
MachineryOperationMode), Monitoring, OperationCounters, CurrentOrder and Setpoints; ``Objects/Line`` holds the
line's KPIs, clock and orders. NodeIds are strings derived from these browse paths, e.g.
``ns=<simline>;s=Machines.cut.Monitoring.Power``: never hard-coded numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import Node, Server, ua
from asyncua.common.instantiate_util import instantiate

from simline.errors import SimlineError
from simline.scenario.model import Scenario

__all__ = [
    "DI_NAMESPACE",
    "LINE_SPEC",
    "MACHINERY_NAMESPACE",
    "MACHINE_SPEC",
    "NAMESPACE",
    "AddressSpace",
    "NodesetError",
    "build_address_space",
    "machine_names",
]

NAMESPACE = "urn:simline:line"
DI_NAMESPACE = "http://opcfoundation.org/UA/DI/"
MACHINERY_NAMESPACE = "http://opcfoundation.org/UA/Machinery/"
NODESET_FILES = ("Opc.Ua.Di.NodeSet2.xml", "Opc.Ua.Machinery.NodeSet2.xml")
# Machinery 1.03 NodeIds (numeric ids of the companion specification, in its own namespace)
_MACHINES_FOLDER = 1001
_IDENTIFICATION_TYPE = 1012
_ITEM_STATE_TYPE = 1002
_OPERATION_MODE_TYPE = 1008
_STATE_IDS = {
    "NotAvailable": 5005,
    "OutOfService": 5004,
    "Executing": 5006,
    "NotExecuting": 5007,
    "None": 5024,
    "Maintenance": 5025,
    "Processing": 5026,
    "Setup": 5027,
}


class NodesetError(SimlineError):
    """The folder given for the official NodeSets lacks a file or a file does not load."""


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
    official: bool = False
    state_ids: dict[str, ua.NodeId] = field(default_factory=dict)
    """NodeIds of the official state objects (with NodeSets), for ``CurrentState.Id``."""

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


async def _import_nodesets(server: Server, folder: Path) -> tuple[int, int]:
    files = {p.name.lower(): p for p in folder.glob("*.xml")} if folder.is_dir() else {}
    for name in NODESET_FILES:
        path = files.get(name.lower())
        if path is None:
            raise NodesetError(f"{folder}: {name} not found (needs {' and '.join(NODESET_FILES)})")
        try:
            await server.import_xml(str(path))
        except Exception as exc:
            raise NodesetError(f"{path}: cannot import: {exc}") from exc
    return await server.get_namespace_index(DI_NAMESPACE), await server.get_namespace_index(MACHINERY_NAMESPACE)


async def _official_building_blocks(server: Server, node: Node, path: str, idx: int, di: int, mach: int) -> None:
    ident_type = server.get_node(ua.NodeId(_IDENTIFICATION_TYPE, mach))
    await instantiate(
        node, ident_type, ua.NodeId(f"{path}.Identification", idx), ua.QualifiedName("Identification", di)
    )
    ident = server.get_node(ua.NodeId(f"{path}.Identification", idx))
    await ident.add_property(ua.NodeId(f"{path}.Identification.Station", idx), ua.QualifiedName("Station", idx), "")
    blocks = await node.add_folder(
        ua.NodeId(f"{path}.MachineryBuildingBlocks", idx), ua.QualifiedName("MachineryBuildingBlocks", di)
    )
    for name, type_id in (("MachineryItemState", _ITEM_STATE_TYPE), ("MachineryOperationMode", _OPERATION_MODE_TYPE)):
        await instantiate(
            blocks,
            server.get_node(ua.NodeId(type_id, mach)),
            ua.NodeId(f"{path}.MachineryBuildingBlocks.{name}", idx),
            ua.QualifiedName(name, mach),
            instantiate_optional=False,
        )


async def build_address_space(
    server: Server, scenario: Scenario, location: str = "", nodesets: Path | None = None
) -> AddressSpace:
    """Create the simline types and one instance per machine and for the line.

    With ``nodesets`` (a folder with the official DI and Machinery NodeSet2 files), machines live in the
    Machinery ``Machines`` folder and their Identification, MachineryItemState and MachineryOperationMode are
    instances of the official types; without, the same structure is built in simline's own namespace.

    Raises:
        NodesetError: A NodeSet file is missing or does not load.
    """
    official = nodesets is not None
    di = mach = 0
    if nodesets is not None:
        di, mach = await _import_nodesets(server, nodesets)
    idx = await server.register_namespace(NAMESPACE)
    spec = {
        k: v for k, v in MACHINE_SPEC.items() if not official or k not in ("Identification", "MachineryBuildingBlocks")
    }
    machine_type = await _object_type(server, idx, "SimlineMachineType", spec)
    line_type = await _object_type(server, idx, "SimlineLineType", LINE_SPEC)
    objects = server.nodes.objects
    if official:
        folder = server.get_node(ua.NodeId(_MACHINES_FOLDER, mach))
    else:
        folder = await objects.add_folder(ua.NodeId("Machines", idx), ua.QualifiedName("Machines", idx))
    line = await objects.add_object(ua.NodeId("Line", idx), ua.QualifiedName("Line", idx), objecttype=line_type.nodeid)
    await _writable(line, LINE_SPEC)
    space = AddressSpace(idx, folder, line, types={"machine": machine_type, "line": line_type}, official=official)
    if official:
        space.state_ids = {name: ua.NodeId(i, mach) for name, i in _STATE_IDS.items()}
    for name, index, sid in machine_names(scenario):
        station = scenario.station(sid)
        path = f"Machines.{name}"
        node = await folder.add_object(
            ua.NodeId(path, idx), ua.QualifiedName(name, idx), objecttype=machine_type.nodeid
        )
        await _writable(node, spec)
        if official:
            await _official_building_blocks(server, node, path, idx, di, mach)
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
                space.nodeid(f"{path}.Identification.{key}"), ua.DataValue(ua.Variant(value, kind))
            )
        if station.name:
            await node.write_attribute(
                ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(station.name)))
            )
    return space
