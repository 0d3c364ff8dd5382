"""Tools for the MQTT tests: a recording subscriber, waiting on conditions, and an independent Sparkplug B codec.

The Sparkplug codec does not use simline's schema module nor the protobuf library: it reads the protobuf wire
format by hand, with the field numbers and types written down here from the Sparkplug 3.0.0 specification
(chapter 6.4). So a test decodes what simline encodes with code that shares nothing with the encoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simline import load_scenario
from simline.live.driver import LiveDriver
from simline.mqtt import MqttAdapter, MqttOptions, parse_broker_url
from simline.mqtt.publisher import Publisher
from simline.sim import Line

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- a live line with its MQTT adapter ---------------------------------------------------------------------
LINE = "test_line"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Live:
    """A line running live with its MQTT adapter, in the test's event loop."""

    line: Line
    driver: LiveDriver
    adapter: MqttAdapter
    port: int
    log: _Records
    task: asyncio.Task[None] | None = None
    stopped: bool = False

    @property
    def profile(self) -> Any:
        return self.adapter.profile

    @property
    def publisher(self) -> Publisher:
        assert self.adapter.profile is not None
        return self.adapter.profile.publisher

    @property
    def base(self) -> str:
        return self.adapter.topics.base  # type: ignore[union-attr]

    def run(self) -> None:
        """Start advancing the model."""
        self.task = asyncio.create_task(self.driver.run(), name="live-driver")

    async def stop(self) -> None:
        """Stop the model, then the adapter (status offline / NDEATH, clean disconnect)."""
        if self.stopped:
            return
        self.stopped = True
        self.driver.stop()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)
        await self.adapter.stop()

    def errors(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.log.records if r.levelno >= logging.ERROR or r.exc_info]


@contextlib.asynccontextmanager
async def live_mqtt(
    url: str | None, *, scenario: str = "quickstart", speed: float = 3000.0, **options: Any
) -> AsyncIterator[Live]:
    """A live line publishing to ``url`` (``None``: the embedded broker on a free port), with fast intervals."""
    line = Line(load_scenario(SCENARIOS / f"{scenario}.yaml"), live=True)
    driver = LiveDriver(line, speed=speed)
    settings: dict[str, Any] = {
        "line_id": LINE,
        "sample_interval": 0.1,
        "kpi_interval": 0.25,
        "stats_interval": 0.25,
        "reconnect_min": 0.05,
        "reconnect_max": 0.5,
        "connect_timeout": 3.0,
        **options,
    }
    port = free_port() if url is None else parse_broker_url(url).port
    adapter = MqttAdapter(
        driver, MqttOptions(broker=parse_broker_url(url) if url else None, embedded_port=port, **settings)
    )
    log = _Records()
    logging.getLogger("simline").addHandler(log)
    live = Live(line, driver, adapter, port, log)
    try:
        await adapter.start(wait=5.0)
        assert live.publisher.connected, live.publisher.stats.last_error
        yield live
        assert live.stopped or live.task is None or not live.task.done(), "the live driver stopped early"
    finally:
        await live.stop()
        logging.getLogger("simline").removeHandler(log)
    assert not live.errors(), live.errors()


# --- waiting -----------------------------------------------------------------------------------------------
async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` on the running loop (letting the line run) until it holds; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.01)


# --- subscriber --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    """One message as the subscriber got it."""

    topic: str
    payload: bytes
    retain: bool
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        """The payload as JSON."""
        return json.loads(self.payload)


@dataclass
class Subscriber:
    """A paho client on its own network thread that records every message of its subscriptions.

    Args:
        port: Broker port on 127.0.0.1.
        topics: Topic filters (QoS 1).
        client_id: Client id (required for a persistent session).
        clean: Clean session; ``False`` keeps the session (and queued messages) across a broker restart.
    """

    port: int
    topics: list[str]
    client_id: str = ""
    clean: bool = True
    ca: Path | None = None  # connect with TLS, trusting this CA
    username: str | None = None
    password: str | None = None
    messages: list[Received] = field(default_factory=list)
    connects: int = 0
    sessions: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._subscribed = False
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=self.clean)
        self.client.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]  # paho takes seconds as float
        if self.ca is not None:
            self.client.tls_set(ca_certs=str(self.ca))
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        with self._cond:
            self.connects += 1
            self.sessions.append(bool(flags.session_present))
            self._cond.notify_all()
        if not flags.session_present:
            client.subscribe([(t, 1) for t in self.topics])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        with self._cond:
            self._subscribed = True
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(
                Received(message.topic, bytes(message.payload), bool(message.retain), time.monotonic())
            )
            self._cond.notify_all()

    def start(self, timeout: float = 10.0) -> Subscriber:
        """Connect and wait until the subscriptions are acknowledged."""
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        self.wait(lambda: self._subscribed, timeout, "the subscription to be acknowledged")
        return self

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Block (this thread) until ``predicate`` holds (checked on every message); fail after ``timeout`` s."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")

    async def until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Like :meth:`wait`, from a coroutine: the event loop (and an embedded broker on it) keeps running."""
        await wait_until(predicate, timeout, what)

    def snapshot(self) -> list[Received]:
        """The messages so far."""
        with self._cond:
            return list(self.messages)

    def on(self, topic: str) -> list[Received]:
        """The messages of one topic so far."""
        return [m for m in self.snapshot() if m.topic == topic]

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        """Publish and wait until the broker has it."""
        self.client.publish(topic, payload, qos).wait_for_publish(5)


# --- independent Sparkplug B codec -------------------------------------------------------------------------
def proto_schema() -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]], dict[str, int]]:
    """``(Payload fields, Metric fields, DataType values)`` as the Sparkplug 3.0.0 specification defines them."""
    payload = {
        "timestamp": (1, "uint64"),
        "metrics": (2, "Metric"),
        "seq": (3, "uint64"),
        "uuid": (4, "string"),
        "body": (5, "bytes"),
    }
    metric = {
        "name": (1, "string"),
        "alias": (2, "uint64"),
        "timestamp": (3, "uint64"),
        "datatype": (4, "uint32"),
        "is_historical": (5, "bool"),
        "is_transient": (6, "bool"),
        "is_null": (7, "bool"),
        "metadata": (8, "MetaData"),
        "properties": (9, "PropertySet"),
        "int_value": (10, "uint32"),
        "long_value": (11, "uint64"),
        "float_value": (12, "float"),
        "double_value": (13, "double"),
        "boolean_value": (14, "bool"),
        "string_value": (15, "string"),
        "bytes_value": (16, "bytes"),
        "dataset_value": (17, "DataSet"),
        "template_value": (18, "Template"),
        "extension_value": (19, "MetricValueExtension"),
    }
    datatypes = {
        "Unknown": 0,
        "Int8": 1,
        "Int16": 2,
        "Int32": 3,
        "Int64": 4,
        "UInt8": 5,
        "UInt16": 6,
        "UInt32": 7,
        "UInt64": 8,
        "Float": 9,
        "Double": 10,
        "Boolean": 11,
        "String": 12,
        "DateTime": 13,
        "Text": 14,
        "UUID": 15,
        "DataSet": 16,
        "Bytes": 17,
        "File": 18,
        "Template": 19,
        "PropertySet": 20,
        "PropertySetList": 21,
    }
    return payload, metric, datatypes


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def wire_fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """``(field number, wire type, raw value)`` of every field of a protobuf message, in order."""
    out: list[tuple[int, int, Any]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = buf[i : i + length], i + length
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


_SCALAR = {
    "uint64": lambda v: v,
    "uint32": lambda v: v,
    "bool": bool,
    "string": lambda v: bytes(v).decode("utf-8"),
    "bytes": bytes,
    "double": lambda v: struct.unpack("<d", v)[0],
    "float": lambda v: struct.unpack("<f", v)[0],
}


def decode_sparkplug(buf: bytes) -> dict[str, Any]:
    """A Sparkplug B payload as ``{"timestamp", "seq", "metrics": [{"name", "alias", …, "value"}]}``.

    Only the fields named in the official schema are accepted; any other field number fails the decoding.
    """
    payload_fields, metric_fields, _ = proto_schema()
    by_number = {number: (name, kind) for name, (number, kind) in payload_fields.items()}
    metric_by_number = {number: (name, kind) for name, (number, kind) in metric_fields.items()}
    out: dict[str, Any] = {"metrics": []}
    for number, _, raw in wire_fields(buf):
        name, kind = by_number[number]
        if name == "metrics":
            metric: dict[str, Any] = {}
            for n, _, r in wire_fields(raw):
                mname, mkind = metric_by_number[n]
                value = _SCALAR[mkind](r) if mkind in _SCALAR else r
                if mname.endswith("_value"):
                    metric["value_field"] = mname
                    metric["value"] = value
                else:
                    metric[mname] = value
            out["metrics"].append(metric)
        else:
            out[name] = _SCALAR[kind](raw)
    return out


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)


def encode_sparkplug(timestamp: int, metrics: list[tuple[str, str, Any]]) -> bytes:
    """A Sparkplug B command payload: ``metrics`` are ``(name, DataType name, value)`` (Boolean, Double, String)."""
    payload_fields, metric_fields, datatypes = proto_schema()
    body = bytearray(_key(payload_fields["timestamp"][0], 0) + _encode_varint(timestamp))
    for name, datatype, value in metrics:
        encoded = name.encode("utf-8")
        m = bytearray(_key(metric_fields["name"][0], 2) + _encode_varint(len(encoded)) + encoded)
        m += _key(metric_fields["datatype"][0], 0) + _encode_varint(datatypes[datatype])
        if datatype == "Boolean":
            m += _key(metric_fields["boolean_value"][0], 0) + _encode_varint(int(bool(value)))
        elif datatype == "Double":
            m += _key(metric_fields["double_value"][0], 1) + struct.pack("<d", float(value))
        else:
            text = str(value).encode("utf-8")
            m += _key(metric_fields["string_value"][0], 2) + _encode_varint(len(text)) + text
        body += _key(payload_fields["metrics"][0], 2) + _encode_varint(len(m)) + m
    return bytes(body)
