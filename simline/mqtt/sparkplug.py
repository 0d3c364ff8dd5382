"""The Sparkplug B 3.0 profile: the line is an edge node, each machine a device; protobuf payloads.

Session rules this module keeps (Sparkplug 3.0, chapters 5 and 6):

* Every connection registers ``NDEATH`` as its will (QoS 1), carrying the connection's ``bdSeq`` (0 … 255, one more
  per connection attempt); the ``NBIRTH`` that follows carries the same ``bdSeq``. A clean stop publishes the
  ``NDEATH`` itself before disconnecting.
* ``NBIRTH`` has ``seq`` 0; every later message of the node (``DBIRTH``, ``NDATA``, ``DDATA``) adds one, wrapping
  after 255. ``NDEATH`` has no ``seq``. A sequence number is taken only when a message is handed to a live
  connection, so a host never sees a gap that is not a real loss.
* Births list every metric with name, alias and datatype; data messages carry aliases only (no name, no datatype).
* Messages are never kept across connections: after a reconnection, or after a message was dropped from a full
  buffer (a real gap), the node publishes new births. An ``NCMD`` with ``Node Control/Rebirth`` = true does the same
  (``bdSeq`` unchanged, as the MQTT session is the same).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from simline.events import Breakdown, Event, MachineState, Repaired, ShiftChanged, StateChanged
from simline.kpis import LIVE_KPIS, compute_kpis
from simline.live.driver import LiveDriver
from simline.mqtt import sparkplug_schema as pb
from simline.mqtt.commands import Reply
from simline.mqtt.config import BrokerAddress, MqttOptions
from simline.mqtt.delivery import Will
from simline.mqtt.profile import Profile, now_ms, number
from simline.mqtt.publisher import Publisher
from simline.mqtt.topics import SparkplugTopics

__all__ = ["DEVICE_METRICS", "NODE_METRICS", "MetricDef", "SparkplugProfile"]

log = logging.getLogger("simline.mqtt")

INT32, INT64, DOUBLE, BOOLEAN, STRING = 3, 4, 10, 11, 12
"""Sparkplug DataType values used here."""

KPIS = LIVE_KPIS
"""Node metric ``KPIs/<name>`` → KPI (the OPC UA names)."""
NODE_METRICS: list[tuple[str, int]] = [
    ("Node Control/Rebirth", BOOLEAN),
    ("Line/Name", STRING),
    ("Line/Shift", STRING),
    ("Clock/SimulatedMinutes", DOUBLE),
    ("Clock/Speed", DOUBLE),
    ("Clock/Paused", BOOLEAN),
    ("Clock/LagSeconds", DOUBLE),
    *((f"KPIs/{name}", DOUBLE) for name in KPIS),
    ("Orders/Open", INT64),
    ("Orders/Completed", INT64),
    ("Orders/New", STRING),
    ("Orders/LastResult", STRING),
]
"""Metrics of the edge node (the line), in birth order."""
_SAMPLED = {
    "Power": "power",
    "Temperature": "temperature",
    "Vibration": "vibration",
    "Condition": "condition",
    "BufferLevel": "buffer_level",
    "ProcessedCount": "processed_count",
    "GoodCount": "good_count",
    "FailureCount": "failure_count",
    "OperatingTime": "operating_time",
    "CurrentOrder": "current_order",
}
DEVICE_METRICS: list[tuple[str, int]] = [
    ("Properties/Station", STRING),
    ("Properties/Name", STRING),
    ("Properties/Kind", STRING),
    ("State", STRING),
    ("Alarm/Breakdown", BOOLEAN),
    ("Power", DOUBLE),
    ("Temperature", DOUBLE),
    ("Vibration", DOUBLE),
    ("Condition", DOUBLE),
    ("BufferLevel", INT32),
    ("ProcessedCount", INT64),
    ("GoodCount", INT64),
    ("FailureCount", INT64),
    ("OperatingTime", DOUBLE),
    ("CurrentOrder", STRING),
    ("Commands/InjectFault", DOUBLE),
    ("Commands/Reset", BOOLEAN),
    ("Commands/LastResult", STRING),
]
"""Metrics of each device (machine), in birth order."""


@dataclass(frozen=True, slots=True)
class MetricDef:
    """A metric with its alias (unique over the node and all its devices) and datatype."""

    name: str
    datatype: int
    alias: int


def _set_value(metric: pb.Payload.Metric, datatype: int, value: Any) -> None:
    if value is None:
        metric.is_null = True
    elif datatype == INT32:
        metric.int_value = int(value) & 0xFFFFFFFF
    elif datatype == INT64:
        metric.long_value = int(value) & 0xFFFFFFFFFFFFFFFF
    elif datatype == DOUBLE:
        metric.double_value = float(value)
    elif datatype == BOOLEAN:
        metric.boolean_value = bool(value)
    else:
        metric.string_value = str(value)


class SparkplugProfile(Profile):
    """Publishes a live line as a Sparkplug B edge node and takes commands from NCMD and DCMD.

    Args:
        driver: The live driver.
        address: The broker.
        options: The MQTT options.
        topics: The node's topics.
        client_id: MQTT client id.
    """

    def __init__(
        self, driver: LiveDriver, address: BrokerAddress, options: MqttOptions, topics: SparkplugTopics, client_id: str
    ) -> None:
        super().__init__(driver, options)
        self.topics = topics
        alias = iter(range(1, 1_000_000))
        self.node_defs = {name: MetricDef(name, dt, next(alias)) for name, dt in NODE_METRICS}
        self.device_defs = {
            device: {name: MetricDef(name, dt, next(alias)) for name, dt in DEVICE_METRICS}
            for device, _ in self.machines
        }
        self._by_alias: dict[tuple[str | None, int], str] = {(None, d.alias): d.name for d in self.node_defs.values()}
        for device, defs in self.device_defs.items():
            self._by_alias.update({(device, d.alias): d.name for d in defs.values()})
        self.bd_seq = -1  # the first will takes 0
        self.seq = 0
        self.births = 0
        self._last: dict[tuple[str | None, str], Any] = {}
        self._order_result = ""
        self._command_results = {device: "" for device, _ in self.machines}
        self._rebirth_pending = False
        self.publisher = Publisher(
            address,
            client_id,
            options,
            keep_offline=False,
            subscriptions=topics.subscriptions,
            on_connect=self.birth,
            on_message=self._on_message,
            will=self._will,
            on_drop=self._on_drop,
        )

    # --- lifecycle -----------------------------------------------------------------------------------
    async def stop(self) -> None:
        """Publish the NDEATH of this session and disconnect cleanly."""
        await self.stop_tasks()
        if self.publisher.connected:
            self.publisher.publish(self.topics.node_topic("NDEATH"), self._death_payload(), qos=1)
        await self.publisher.stop()

    def periodic(self) -> list[tuple[float, Callable[[], None], str]]:
        """Device telemetry (DDATA), node KPIs (NDATA) and rebirths after drops."""
        o = self.options
        return [
            (o.sample_interval / self.groups, self.sample, "sample"),
            (o.kpi_interval, self.kpis, "kpis"),
            (o.stats_interval, self.housekeeping, "stats"),
        ]

    # --- payloads ------------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        seq = self.seq
        self.seq = (seq + 1) % 256
        return seq

    def _will(self) -> Will:
        self.bd_seq = (self.bd_seq + 1) % 256
        return Will(self.topics.node_topic("NDEATH"), self._death_payload(), qos=1, retain=False)

    def _death_payload(self) -> bytes:
        p = pb.Payload(timestamp=now_ms())
        m = p.metrics.add()
        m.name, m.datatype, m.long_value = "bdSeq", INT64, self.bd_seq
        return bytes(p.SerializeToString())

    def _send(
        self,
        topic: str,
        defs: dict[str, MetricDef],
        values: Iterable[tuple[str, Any]],
        birth: bool,
        ts: int | None = None,
        sample: bool = False,
        bd_seq: bool = False,
    ) -> None:
        """Build and publish one message (only while connected: a sequence number is taken here)."""
        if not self.publisher.connected:
            return
        now = now_ms()
        p = pb.Payload(timestamp=now, seq=self._next_seq())
        if bd_seq:
            m = p.metrics.add()
            m.name, m.datatype, m.timestamp, m.long_value = "bdSeq", INT64, now, self.bd_seq
        for name, value in values:
            d = defs[name]
            m = p.metrics.add()
            if birth:
                m.name, m.datatype = d.name, d.datatype
            m.alias = d.alias
            m.timestamp = now if ts is None else ts
            _set_value(m, d.datatype, value)
        self.publisher.publish(topic, p.SerializeToString(), 0, False, -1, sample)

    def _node_data(self, values: dict[str, Any], ts: int | None = None, sample: bool = False) -> None:
        changed = [(k, v) for k, v in values.items() if self._last.get((None, k), _NONE) != v]
        if changed:
            self._last.update({(None, k): v for k, v in changed})
            self._send(self.topics.node_topic("NDATA"), self.node_defs, changed, False, ts, sample)

    def _device_data(self, device: str, values: dict[str, Any], ts: int | None = None, sample: bool = False) -> None:
        changed = [(k, v) for k, v in values.items() if self._last.get((device, k), _NONE) != v]
        if changed:
            self._last.update({(device, k): v for k, v in changed})
            self._send(self.topics.device_topic("DDATA", device), self.device_defs[device], changed, False, ts, sample)

    # --- births --------------------------------------------------------------------------------------
    def birth(self) -> None:
        """Publish NBIRTH (seq 0, this connection's bdSeq) and a DBIRTH per device, with current values."""
        if not self.publisher.connected:
            return
        self.seq = 0
        self.births += 1
        self._rebirth_pending = False
        node = {
            "Node Control/Rebirth": False,
            "Line/Name": self.line.scenario.name,
            "Line/Shift": "off_shift" if self.line.off_shift else "working",
            **self._node_values(),
            "Orders/New": "",
            "Orders/LastResult": self._order_result,
        }
        self._send(self.topics.node_topic("NBIRTH"), self.node_defs, node.items(), True, bd_seq=True)
        self._last = {(None, k): v for k, v in node.items()}
        for device, m, values in self.machine_values():
            spec = m.station.spec
            dev: dict[str, Any] = {
                "Properties/Station": spec.id,
                "Properties/Name": spec.name,
                "Properties/Kind": spec.kind,
                "State": m.effective_state.label,
                "Alarm/Breakdown": m.state is MachineState.DOWN,
                **{name: values[tag] for name, tag in _SAMPLED.items()},
                "Commands/InjectFault": 0.0,
                "Commands/Reset": False,
                "Commands/LastResult": self._command_results[device],
            }
            self._send(self.topics.device_topic("DBIRTH", device), self.device_defs[device], dev.items(), True)
            self._last.update({(device, k): v for k, v in dev.items()})

    def _node_values(self) -> dict[str, Any]:
        k = compute_kpis(self.line)
        return {
            "Clock/SimulatedMinutes": number(self.line.env.now, 3),
            "Clock/Speed": self.driver.speed,
            "Clock/Paused": self.driver.paused,
            "Clock/LagSeconds": number(self.driver.lag.current, 3),
            **{f"KPIs/{name}": number(k.get(key)) for name, key in KPIS.items()},
            "Orders/Open": len(self.line.orders),
            "Orders/Completed": self.line.stats.orders_completed,
        }

    def _on_drop(self, _message: Any) -> None:
        self._rebirth_pending = True  # the host saw (or will see) a seq gap: give it fresh births

    # --- data ----------------------------------------------------------------------------------------
    def publish_event(self, event: Event, ts: int) -> None:
        """Publish a state change, breakdown or repair (DDATA) or a shift change (NDATA)."""
        if isinstance(event, StateChanged):
            self._device_data(self.names[(event.station, event.machine)], {"State": event.state.label}, ts)
        elif isinstance(event, Breakdown | Repaired):
            device = self.names[(event.station, event.machine)]
            self._device_data(device, {"Alarm/Breakdown": isinstance(event, Breakdown)}, ts)
        elif isinstance(event, ShiftChanged):
            self._node_data({"Line/Shift": "working" if event.working else "off_shift"}, ts)

    def sample(self) -> None:
        """DDATA with the changed telemetry of each device of the next group (see :meth:`Profile.next_group`)."""
        if not self.publisher.connected:
            return
        ts = now_ms()
        for device, _, values in self.machine_values(self.next_group()):
            self._device_data(device, {name: values[tag] for name, tag in _SAMPLED.items()}, ts, sample=True)

    def kpis(self) -> None:
        """NDATA with the changed clock, KPI and order metrics."""
        if self.publisher.connected:
            self._node_data(self._node_values(), sample=True)

    def housekeeping(self) -> None:
        """Rebirth once the buffer has drained after a drop."""
        if self._rebirth_pending and self.publisher.connected and not self.publisher.buffer:
            log.info("Sparkplug: rebirth after dropped messages")
            self.birth()

    # --- commands ------------------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        parsed = self.topics.parse(topic)
        if parsed is None:
            return
        kind, device = parsed
        if len(payload) > self.options.command_max_bytes:
            self.commands.stats.rejected += 1
            log.info("Sparkplug %s ignored: %d bytes (at most %d)", kind, len(payload), self.options.command_max_bytes)
            return
        try:
            message = pb.Payload.FromString(payload)
        except (DecodeError, RuntimeWarning, ValueError) as exc:
            self.commands.stats.rejected += 1
            log.info("Sparkplug %s ignored: not a Sparkplug B payload (%s)", kind, exc)
            return
        for metric in message.metrics:
            name = metric.name or self._by_alias.get((device, metric.alias), "")
            if kind == "NCMD" and device is None:
                self._node_command(name, metric)
            elif kind == "DCMD" and device in self.device_defs:
                self._device_command(device, name, metric)
            else:
                log.info("Sparkplug %s for unknown device %r ignored", kind, device)
                return

    def _node_command(self, name: str, metric: pb.Payload.Metric) -> None:
        if name == "Node Control/Rebirth":
            if metric.WhichOneof("value") == "boolean_value" and metric.boolean_value:
                if self.commands.bucket.take():
                    self.birth()
                else:
                    self.commands.stats.rate_limited += 1
            return
        if name == "Orders/New" and metric.WhichOneof("value") == "string_value":
            reply = self.commands.place_order(metric.string_value.encode("utf-8"))
            if not reply.silent:
                self._order_result = json.dumps(reply.as_dict(), separators=(",", ":"))
                self._node_data({"Orders/LastResult": self._order_result})
            return
        log.info("Sparkplug NCMD metric %r ignored (writable: Node Control/Rebirth, Orders/New)", name)

    def _device_command(self, device: str, name: str, metric: pb.Payload.Metric) -> None:
        kind = metric.WhichOneof("value")
        if name == "Commands/InjectFault":
            if kind not in ("double_value", "float_value", "int_value", "long_value"):
                reply = Reply("rejected", reason="Commands/InjectFault takes a number of repair minutes", field="value")
            else:
                minutes = float(getattr(metric, kind or "double_value"))
                body = {"repair_minutes": minutes} if minutes > 0 else {}
                reply = self.commands.station_command(device, "inject_fault", json.dumps(body).encode())
        elif name == "Commands/Reset":
            if kind != "boolean_value" or not metric.boolean_value:
                return
            reply = self.commands.station_command(device, "reset", b"")
        else:
            log.info("Sparkplug DCMD metric %r ignored (writable: Commands/InjectFault, Commands/Reset)", name)
            return
        if not reply.silent:
            self._command_results[device] = json.dumps(reply.as_dict(), separators=(",", ":"))
            self._device_data(device, {"Commands/LastResult": self._command_results[device]})


_NONE = object()
