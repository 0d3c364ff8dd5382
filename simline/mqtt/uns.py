"""The default MQTT profile: the line as an ISA-95 Unified Namespace, one tag per message, JSON payloads.

Every message is ``{"value": …, "timestamp_ms": …, "seq": …, "unit": …}``: ``timestamp_ms`` is the wall-clock time
of the model event or sample (ms since the Unix epoch); ``seq`` counts the messages of its topic from 0 since the
line started, so a subscriber can prove that nothing was lost; ``unit`` is text or null. The topic tree, the
retained tags and the reports are documented in ``docs/mqtt.md``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from typing import Any

from simline.events import (
    Breakdown,
    Event,
    MachineState,
    OperationStarted,
    OrderCompleted,
    OrderCreated,
    Repaired,
    ShiftChanged,
    StateChanged,
    UnitFinished,
    UnitReworked,
    UnitScrapped,
)
from simline.kpis import KPI_UNITS, compute_kpis
from simline.live.driver import LiveDriver
from simline.mqtt.config import BrokerAddress, MqttOptions
from simline.mqtt.delivery import Will
from simline.mqtt.profile import Profile, now_ms, number
from simline.mqtt.publisher import Publisher
from simline.mqtt.topics import UnsTopics

__all__ = ["UNITS", "UnsProfile", "encode"]

log = logging.getLogger("simline.mqtt")

UNITS: dict[str, str | None] = {
    "power": "kW",
    "temperature": "°C",
    "vibration": "mm/s",
    "condition": None,
    "buffer_level": "units",
    "processed_count": "units",
    "good_count": "units",
    "failure_count": None,
    "operating_time": "h",
    "current_order": None,
}
"""Units of the sampled station tags."""
_UNSAFE = re.compile(r"[/+#\x00]")
_MISSING = object()


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_UNIT_JSON: dict[str | None, str] = {None: "null"}


def _value_json(value: Any) -> str:
    kind = type(value)
    if kind is float:
        return repr(value) if math.isfinite(value) else "null"  # repr of a finite float is valid JSON
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    return _dumps(value)


def encode(value: Any, timestamp_ms: int, seq: int, unit: str | None) -> bytes:
    """The JSON payload of one tag message: ``{"value", "timestamp_ms", "seq", "unit"}``."""
    unit_json = _UNIT_JSON.get(unit)
    if unit_json is None:
        unit_json = _UNIT_JSON[unit] = _dumps(unit)
    return f'{{"value":{_value_json(value)},"timestamp_ms":{timestamp_ms},"seq":{seq},"unit":{unit_json}}}'.encode()


class UnsProfile(Profile):
    """Publishes a live line to a Unified Namespace and takes orders and station commands from it.

    Args:
        driver: The live driver.
        address: The broker.
        options: The MQTT options.
        topics: The line's topics.
        client_id: MQTT client id.
    """

    def __init__(
        self, driver: LiveDriver, address: BrokerAddress, options: MqttOptions, topics: UnsTopics, client_id: str
    ) -> None:
        super().__init__(driver, options)
        self.topics = topics
        self._seq: dict[str, int] = {}
        self._last: dict[str, Any] = {}
        self._will_seq: int | None = None
        self._resync = False
        self._status = topics.line_tag("status")
        self._tags = {
            name: {tag: topics.station_tag(name, tag) for tag in (*UNITS, "state", "alarm", "info")}
            for name, _ in self.machines
        }
        self.publisher = Publisher(
            address,
            client_id,
            options,
            keep_offline=True,
            subscriptions=topics.subscriptions,
            on_connect=self._on_connect,
            on_message=self._on_message,
            will=self._will,
            on_drop=self._on_drop,
        )

    # --- lifecycle -----------------------------------------------------------------------------------
    async def stop(self) -> None:
        """Publish what is queued and a retained ``offline`` status, then disconnect cleanly."""
        await self.stop_tasks()
        if self.publisher.connected:
            if self._will_seq is not None:  # a clean disconnect: the will is not sent, so offline takes its seq
                self._seq[self._status] = self._will_seq
                self._will_seq = None
            self._emit(self._status, "offline", retain=True, qos=1)
            self._publish_stats()
        await self.publisher.stop()

    def periodic(self) -> list[tuple[float, Callable[[], None], str]]:
        """Telemetry samples, KPIs and publisher statistics."""
        o = self.options
        return [
            (o.sample_interval / self.groups, self.sample, "sample"),
            (o.kpi_interval, self.kpis, "kpis"),
            (o.stats_interval, self.housekeeping, "stats"),
        ]

    # --- publishing ----------------------------------------------------------------------------------
    def _emit(
        self,
        topic: str,
        value: Any,
        unit: str | None = None,
        *,
        retain: bool = False,
        sample: bool = False,
        ts: int | None = None,
        qos: int | None = None,
    ) -> None:
        seq = self._seq.get(topic, 0)
        self._seq[topic] = seq + 1
        payload = encode(value, now_ms() if ts is None else ts, seq, unit)
        if qos is None:
            qos = self.options.sample_qos if sample else self.options.event_qos
        self.publisher.publish(topic, payload, qos, retain, seq, sample)

    def _changed(self, topic: str, value: Any, unit: str | None, retain: bool = False, ts: int | None = None) -> None:
        """Publish a sampled value when it differs from the last one published (report by exception)."""
        if self._last.get(topic, _MISSING) == value:
            return
        self._last[topic] = value
        self._emit(topic, value, unit, retain=retain, sample=True, ts=ts)

    def publish_event(self, event: Event, ts: int) -> None:
        """Publish one model event."""
        if isinstance(event, StateChanged):
            name = self.names[(event.station, event.machine)]
            self._emit(self._tags[name]["state"], event.state.label, retain=True, ts=ts)
        elif isinstance(event, OperationStarted):
            name = self.names[(event.station, event.machine)]
            self._lifecycle(event.order_id, ts, "started", station=event.station, machine=name, unit=event.unit_id)
        elif isinstance(event, OrderCreated):
            options = dict(p.split("=", 1) for p in event.options.split(";") if "=" in p)
            self._lifecycle(
                event.order_id,
                ts,
                "created",
                product=event.family,
                options=options,
                quantity=event.quantity,
                due=self.simulated_time(event.due),
            )
        elif isinstance(event, UnitFinished):
            self._lifecycle(event.order_id, ts, "unit_finished", unit=event.unit_id, good=event.good)
        elif isinstance(event, UnitScrapped):
            self._lifecycle(event.order_id, ts, "scrapped", station=event.station, unit=event.unit_id)
        elif isinstance(event, UnitReworked):
            self._lifecycle(
                event.order_id, ts, "reworked", station=event.station, to_station=event.to_station, unit=event.unit_id
            )
        elif isinstance(event, OrderCompleted):
            self._lifecycle(
                event.order_id, ts, "finished", lead_time_h=number(event.lead_time / 60.0, 4), on_time=event.on_time
            )
            self._seq.pop(self.topics.lifecycle(_level(event.order_id)), None)  # the stream is complete
        elif isinstance(event, Breakdown | Repaired):
            name = self.names[(event.station, event.machine)]
            alarm: dict[str, Any] = {"active": isinstance(event, Breakdown), "kind": "breakdown"}
            if isinstance(event, Repaired):
                alarm["downtime_min"] = number(event.downtime, 3)
            self._emit(self._tags[name]["alarm"], alarm, retain=True, ts=ts)
        elif isinstance(event, ShiftChanged):
            self._emit(self.topics.line_tag("shift"), "working" if event.working else "off_shift", retain=True, ts=ts)

    def _lifecycle(self, order_id: str, ts: int, kind: str, **fields: Any) -> None:
        self._emit(self.topics.lifecycle(_level(order_id)), {"event": kind, "order_id": order_id, **fields}, ts=ts)

    def sample(self) -> None:
        """Publish the telemetry that changed, of the next group of machines (see :meth:`Profile.next_group`)."""
        ts, changed = now_ms(), self._changed
        for name, _, values in self.machine_values(self.next_group()):
            tags = self._tags[name]
            for tag, value in values.items():
                changed(tags[tag], value, UNITS[tag], ts=ts)

    def kpis(self) -> None:
        """Publish the line's KPIs, clock and order counts (retained, when changed)."""
        line, t, changed = self.line, self.topics, self._changed
        for key, value in compute_kpis(line).items():
            if key.startswith("line."):
                name = key[5:]
                changed(t.line_tag(f"kpi/{name}"), number(value), KPI_UNITS.get(name), retain=True)
        now = line.env.now
        changed(t.line_tag("clock/sim_minutes"), number(now, 3), "min", retain=True)
        changed(t.line_tag("clock/sim_time"), self.simulated_time(now), None, retain=True)
        changed(t.line_tag("clock/speed"), self.driver.speed, None, retain=True)
        changed(t.line_tag("clock/paused"), self.driver.paused, None, retain=True)
        changed(t.line_tag("clock/lag"), number(self.driver.lag.current, 3), "s", retain=True)
        changed(t.line_tag("orders/open"), len(line.orders), "orders", retain=True)
        changed(t.line_tag("orders/completed"), line.stats.orders_completed, "orders", retain=True)

    def housekeeping(self) -> None:
        """Publish the publisher's statistics (QoS 1: also the broker's confirmation marker) and pending gaps."""
        pub = self.publisher
        if not pub.connected:
            return
        self._publish_stats()
        if pub.gaps.pending and len(pub.buffer) < pub.buffer.capacity // 2:
            self._report_gaps("overflow")
        if self._resync and not pub.buffer:
            self._resync = False
            self._snapshot(status=False)

    def _publish_stats(self) -> None:
        stats = self.publisher.stats.as_dict()
        stats["commands"] = {
            "accepted": self.commands.stats.accepted,
            "rejected": self.commands.stats.rejected,
            "rate_limited": self.commands.stats.rate_limited,
        }
        self._emit(self.topics.line_tag("mqtt/stats"), stats, retain=True, qos=1)

    def _report_gaps(self, reason: str) -> None:
        pub = self.publisher
        report: dict[str, Any] = {"reason": reason, **pub.gaps.take()}
        if reason == "reconnect" and pub.last_outage_ms is not None:
            report["outage"] = {"from_ms": pub.last_outage_ms[0], "to_ms": pub.last_outage_ms[1]}
        self._emit(self.topics.line_tag("mqtt/gaps"), report, qos=1)

    # --- connection ----------------------------------------------------------------------------------
    def _will(self) -> Will:
        """The retained ``offline`` status, with the status seq after the coming ``online``."""
        seq = self._seq.get(self._status, 0) + 1
        return Will(self._status, encode("offline", now_ms(), seq, None), qos=1, retain=True)

    def _on_connect(self) -> None:
        pub = self.publisher
        if self._will_seq is not None:  # the last connection broke: the broker may or may not have sent its will
            pub.gaps.add_uncertain(self._status, self._will_seq)
        self._snapshot(status=True)
        self._will_seq = self._seq[self._status]  # the will registered with this connection holds this seq
        self._seq[self._status] += 1
        if pub.gaps.pending or pub.stats.connects > 1:
            self._report_gaps("reconnect")
        self._publish_stats()

    def _snapshot(self, status: bool) -> None:
        """Publish every retained tag afresh (after a (re)connection or after drops): the broker may have lost them."""
        if status:
            self._emit(self._status, "online", retain=True, qos=1)
        t = self.topics
        scenario = self.line.scenario
        info = {
            "name": scenario.name,
            "description": scenario.description,
            "stations": [name for name, _ in self.machines],
            "products": {p.family: {k: list(o.choices) for k, o in p.options.items()} for p in scenario.products},
            "speed": self.driver.speed,
            "simulated_epoch": self.simulated_time(0.0),
            "profile": "uns",
            "schema": 1,
        }
        self._emit(t.line_tag("info"), info, retain=True)
        self._emit(t.line_tag("shift"), "off_shift" if self.line.off_shift else "working", retain=True)
        for name, m in self.machines:
            tags, spec = self._tags[name], m.station.spec
            self._emit(
                tags["info"],
                {
                    "station": spec.id,
                    "name": spec.name,
                    "kind": spec.kind,
                    "machine": m.index + 1,
                    "machines": spec.machines,
                    "buffer_capacity": m.station.buffer.capacity,
                },
                retain=True,
            )
            self._emit(tags["state"], m.effective_state.label, retain=True)
            self._emit(tags["alarm"], {"active": m.state is MachineState.DOWN, "kind": "breakdown"}, retain=True)
        self._last.clear()  # sampled values and KPIs are published in full at their next tick

    def _on_drop(self, _message: Any) -> None:
        self._resync = True

    # --- orders and commands in ----------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        t = self.topics
        if topic == t.orders_new:
            reply = self.commands.place_order(payload)
            if not reply.silent:
                self._emit(t.order_reply(reply.request_id), reply.as_dict(), qos=1)
            return
        parsed = t.parse_command(topic)
        if parsed is None or parsed[1] == "status":  # our own replies match the subscription: ignore them
            return
        machine, command = parsed
        reply = self.commands.station_command(machine, command, payload)
        if not reply.silent:
            self._emit(t.command_reply(machine, reply.request_id), reply.as_dict(), qos=1)


def _level(text: str) -> str:
    """An order id as a topic level (ids from order books may hold characters a topic level cannot)."""
    level = _UNSAFE.sub("_", text)[:64] or "_"
    return "_" + level[1:] if level.startswith("$") else level
