"""MQTT pieces without a broker: URLs, topic names, the buffer's drop policy, gaps, backoff, orders and commands."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from simline import CommandError, load_scenario
from simline.events import MachineState
from simline.live.driver import LiveDriver
from simline.live.orders import TokenBucket, parse_options
from simline.mqtt.buffer import GapLog, Message, OutBuffer
from simline.mqtt.commands import CommandHandler
from simline.mqtt.config import MqttConfigError, MqttOptions, parse_bind, parse_broker_url, simulated_epoch
from simline.mqtt.delivery import backoff_delay
from simline.mqtt.profile import number
from simline.mqtt.topics import SparkplugTopics, UnsTopics, check_level, machine_names, slug
from simline.mqtt.uns import encode
from simline.sim import Line

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


# --- configuration -------------------------------------------------------------------------------------------
def test_broker_urls_give_host_port_tls_and_credentials() -> None:
    a = parse_broker_url("mqtt://broker.example")
    assert (a.host, a.port, a.tls, a.username, a.password) == ("broker.example", 1883, False, None, None)
    b = parse_broker_url("mqtts://line%40plant:p%2Fw@10.0.0.5?client_id=line-1")
    assert (b.host, b.port, b.tls, b.username, b.password, b.client_id) == (
        "10.0.0.5",
        8883,
        True,
        "line@plant",
        "p/w",
        "line-1",
    )
    assert "p/w" not in b.display() and b.display() == "mqtts://line@plant@10.0.0.5:8883"
    c = parse_broker_url("mqtt://u@[::1]:1884", env={"SIMLINE_MQTT_PASSWORD": "secret"})
    assert (c.host, c.port, c.password) == ("::1", 1884, "secret")
    assert parse_broker_url("mqtts://h?insecure=1").insecure


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h", "must start with mqtt://"),
        ("mqtt://", "has no host"),
        ("mqtt://h:99999", "invalid port"),
        ("mqtt://h/path", "must not have a path"),
        ("mqtt://h?tls=1", "unknown broker URL parameter"),
        ("mqtt://h?ca=/etc/hosts", "'ca' needs an mqtts:// URL"),
        ("mqtts://h?ca=/no/such/ca.pem", "CA file not found"),
        ("mqtt://h?client_id=a/b", "client_id must be"),
    ],
)
def test_bad_broker_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(MqttConfigError, match=message):
        parse_broker_url(url)


def test_bind_addresses_default_to_loopback() -> None:
    assert parse_bind("1883") == ("127.0.0.1", 1883)
    assert parse_bind("0.0.0.0:1884") == ("0.0.0.0", 1884)
    assert parse_bind("[::1]:1885") == ("::1", 1885)
    for bad in ("x", "70000", "host:", "-1"):
        with pytest.raises(MqttConfigError):
            parse_bind(bad)


def test_options_are_checked() -> None:
    with pytest.raises(MqttConfigError, match="profile"):
        MqttOptions(profile="json")  # type: ignore[arg-type]
    with pytest.raises(MqttConfigError, match="reconnect_max"):
        MqttOptions(reconnect_min=5, reconnect_max=1)
    with pytest.raises(MqttConfigError, match="QoS"):
        MqttOptions(event_qos=3)


def test_simulated_epoch_is_monday_midnight_utc() -> None:
    epoch = simulated_epoch(datetime(2026, 3, 5, 15, 30, tzinfo=UTC))  # a Thursday
    assert epoch == datetime(2026, 3, 2, tzinfo=UTC) and epoch.weekday() == 0


# --- topics --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("level", ["", "a/b", "a+", "#", "$SYS", "x\x00", " padded", "x" * 65])
def test_invalid_topic_levels_are_refused(level: str) -> None:
    with pytest.raises(MqttConfigError):
        check_level(level)


def test_topic_tree_of_a_line() -> None:
    t = UnsTopics("acme/plant1/assembly", slug("Quickstart line (v2)"))
    assert t.base == "acme/plant1/assembly/quickstart_line_v2"
    assert t.station_tag("cut", "state") == "acme/plant1/assembly/quickstart_line_v2/cut/state"
    assert t.order_reply("r-1") == f"{t.base}/orders/status/r-1" and t.order_reply(None) == f"{t.base}/orders/status"
    assert t.subscriptions == [f"{t.base}/orders/new", f"{t.base}/+/cmd/+"]
    assert t.parse_command(f"{t.base}/cut/cmd/reset") == ("cut", "reset")
    assert t.parse_command(f"{t.base}/cut/state") is None and t.parse_command("other/cut/cmd/reset") is None
    with pytest.raises(MqttConfigError):
        UnsTopics("acme/+/assembly", "line")
    s = SparkplugTopics("simline", "line1")
    assert s.device_topic("DDATA", "cut") == "spBv1.0/simline/DDATA/line1/cut"
    assert s.parse("spBv1.0/simline/DCMD/line1/cut") == ("DCMD", "cut")
    assert s.parse("spBv1.0/simline/NCMD/line1") == ("NCMD", None)
    assert s.parse("spBv1.0/other/NCMD/line1") is None
    with pytest.raises(MqttConfigError):
        SparkplugTopics("a/b", "line")


def test_machine_names_match_the_opcua_names() -> None:
    scenario = load_scenario(SCENARIOS / "valve_blocks.yaml")
    names = machine_names(scenario)
    assert len(names) == sum(st.machines for st in scenario.stations)
    for name, station, index in names:
        spec = scenario.station(station)
        assert name == (station if spec.machines == 1 else f"{station}_{index + 1}")
        check_level(name)


# --- buffer, gaps, backoff ----------------------------------------------------------------------------------
def _msg(i: int, sample: bool) -> Message:
    return Message(f"t/{'s' if sample else 'e'}", b"x", 0, False, i, sample)


def test_full_buffer_drops_oldest_samples_before_events_and_keeps_order() -> None:
    dropped: list[Message] = []
    buf = OutBuffer(4, dropped.append)
    for i, sample in enumerate([False, True, False, True, True, False]):
        buf.push(_msg(i, sample))
    assert [m.seq for m in dropped] == [1, 3]  # the two oldest samples
    assert len(buf) == 4 and buf.high_water == 4
    assert [buf.pop().seq for _ in range(4)] == [0, 2, 4, 5]  # type: ignore[union-attr]
    assert buf.pop() is None
    events_only = OutBuffer(2, dropped.append)
    for i in range(3):
        events_only.push(_msg(i, False))
    assert dropped[-1].seq == 0 and [m.seq for m in events_only.clear()] == [1, 2]


def test_gap_log_merges_ranges_and_reports_in_parts() -> None:
    gaps = GapLog()
    for seq in (3, 4, 5, 9):
        gaps.add_dropped("a", seq)
    gaps.add_uncertain("b", 7)
    gaps.add_dropped("c", 1)
    report = gaps.take(max_topics=1)
    assert report["dropped"] == {"a": [[3, 5], [9, 9]]} and report["dropped_count"] == 4
    assert report["uncertain"] == {"b": [[7, 7]]} and report["uncertain_count"] == 1
    assert report["more"] is True
    rest = gaps.take()
    assert rest["dropped"] == {"c": [[1, 1]]} and rest["more"] is False and not gaps.pending


def test_reconnect_delays_grow_to_the_cap_with_jitter() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        d = min(30.0, 0.5 * 2**attempt)
        values = {backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(50)}
        assert all(d / 2 <= v <= d for v in values)
        assert len(values) > 40  # jittered, not a fixed delay


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 1.0
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_payload_schema_and_non_finite_numbers() -> None:
    data = json.loads(encode({"a": 1}, 1700000000123, 5, "kW"))
    assert data == {"value": {"a": 1}, "timestamp_ms": 1700000000123, "seq": 5, "unit": "kW"}
    assert number(float("nan")) is None and number(float("inf")) is None and number(1.23456789, 3) == 1.235


# --- orders and commands --------------------------------------------------------------------------------------
@pytest.fixture
def handler() -> CommandHandler:
    line = Line(load_scenario(SCENARIOS / "quickstart.yaml"), live=True)
    driver = LiveDriver(line, speed=60)
    line.run(until_minutes=30)
    names = {name: line.by_id[sid].machines[i] for name, sid, i in machine_names(line.scenario)}
    return CommandHandler(driver, names, datetime(2026, 3, 2, tzinfo=UTC), max_bytes=1024, rate=1000, burst=1000)


def _order(h: CommandHandler, **data: object) -> dict[str, object]:
    return h.place_order(json.dumps(data).encode()).as_dict()


def test_a_valid_order_enters_the_model(handler: CommandHandler) -> None:
    line = handler.driver.line
    reply = _order(handler, request_id="kiosk-1", product="plate", options={"size": "large", "engraving": "yes"})
    assert reply["status"] == "accepted" and reply["request_id"] == "kiosk-1"
    order = line.orders[str(reply["order_id"])]
    assert order.variant.options == (("size", "large"), ("engraving", "yes"))
    assert order.due == pytest.approx(line.env.now + 8 * 60)  # the scenario's promised lead time
    text = _order(handler, product="plate", options="size=small;engraving=no", quantity=3, due_in_hours=2)
    assert text["status"] == "accepted" and line.orders[str(text["order_id"])].quantity == 3
    due = handler.epoch + timedelta(minutes=line.env.now + 90)
    dated = _order(handler, product="plate", options={"size": "small", "engraving": "no"}, due=due.isoformat())
    assert line.orders[str(dated["order_id"])].due == pytest.approx(line.env.now + 90)
    assert handler.stats.accepted == 3 and handler.stats.rejected == 0


def test_order_rejections_give_the_field_and_the_shared_reason(handler: CommandHandler) -> None:
    line = handler.driver.line
    before = len(line.orders)
    # the same reason as every other entry point (scenario schema via Line.check_order, OPC UA PlaceOrder)
    with pytest.raises(CommandError) as expected:
        line.check_order("plate", parse_options({"size": "XXL", "engraving": "no"}))
    bad_choice = _order(handler, request_id="r1", product="plate", options={"size": "XXL", "engraving": "no"})
    assert bad_choice == {
        "status": "rejected",
        "request_id": "r1",
        "reason": expected.value.reason,
        "field": "options.size",
    }
    cases = {
        b"{not json": ("", "not valid JSON"),
        b"[1, 2]": ("", "must be a JSON object"),
        b"\xff\xfe": ("", "not UTF-8"),
        b"x" * 1025: ("", "message too large: 1025 bytes (at most 1024)"),
        json.dumps({"product": "bolt"}).encode(): ("family", "'bolt' is not a product family"),
        json.dumps({"options": {}}).encode(): ("product", "required"),
        json.dumps({"product": "plate", "options": {"size": "small"}}).encode(): ("options", "no choice given"),
        json.dumps({"product": "plate", "options": {"size": 3}}).encode(): ("options.size", "must be text"),
        json.dumps({"product": "plate", "quantity": "2"}).encode(): ("quantity", "whole number"),
        json.dumps({"product": "plate", "colour": "red"}).encode(): ("colour", "unknown field 'colour'"),
        json.dumps({"product": "plate", "request_id": "a b"}).encode(): ("request_id", "must be 1 to 64"),
        json.dumps({"product": "plate", "due": "yesterday"}).encode(): ("due", "not an ISO 8601"),
        json.dumps({"product": "plate", "due": "2000-01-01T00:00:00Z"}).encode(): ("due", "not after the simulated"),
        json.dumps({"product": "plate", "due": "2026-03-09T00:00Z", "due_in_hours": 3}).encode(): ("due", "either"),
        json.dumps({"product": "plate", "options": {"size": "small", "engraving": "no"}, "quantity": 0}).encode(): (
            "quantity",
            "between 1 and 10000",
        ),
        json.dumps(
            {"product": "plate", "options": {"size": "small", "engraving": "no"}, "due_in_hours": -1}
        ).encode(): ("due_in_hours", "between 0 and 8760"),
        b"[" * 100_000: ("", "message too large"),
    }
    for payload, (field, reason) in cases.items():
        reply = handler.place_order(payload)
        assert reply.status == "rejected", payload[:60]
        assert reply.field == field and reply.reason is not None and reason in reply.reason, (payload[:60], reply)
    assert len(line.orders) == before  # nothing was placed
    assert handler.stats.rejected == len(cases) + 1


def test_station_commands(handler: CommandHandler) -> None:
    line = handler.driver.line
    cut = line.by_id["cut"].machines[0]
    first = handler.station_command("cut", "inject_fault", b'{"request_id": "f1", "repair_minutes": 7}').as_dict()
    assert first["status"] == "accepted" and first["result"] in ("down", "armed") and first["request_id"] == "f1"
    again = handler.station_command("cut", "inject_fault", b"").as_dict()
    assert again["status"] == "rejected" and "already down" in str(again["reason"])
    assert handler.station_command("cut", "reset", b"{}").as_dict()["result"] in ("repaired", "disarmed")
    line.run(until_minutes=line.env.now + 1)
    assert cut.state is not MachineState.DOWN
    for name, command, payload, field in [
        ("drill", "reset", b"", "station"),
        ("cut", "explode", b"", "command"),
        ("cut", "inject_fault", b'{"repair_minutes": -5}', "repair_minutes"),
        ("cut", "inject_fault", b'{"repair_minutes": "5"}', "repair_minutes"),
        ("cut", "reset", b'{"force": true}', "force"),
    ]:
        reply = handler.station_command(name, command, payload)
        assert reply.status == "rejected" and reply.field == field, (name, command, reply)


def test_rate_limit_rejects_floods_and_mutes_most_of_their_replies(handler: CommandHandler) -> None:
    now = [0.0]
    limited = CommandHandler(handler.driver, handler.machines, handler.epoch, rate=2, burst=3, clock=lambda: now[0])
    body = json.dumps({"product": "plate", "options": {"size": "small", "engraving": "no"}}).encode()
    replies = [limited.place_order(body) for _ in range(20)]
    assert [r.status for r in replies[:3]] == ["accepted"] * 3
    assert all(r.status == "rejected" and "rate limit" in (r.reason or "") for r in replies[3:])
    assert sum(not r.silent for r in replies[3:]) == 5  # the reply budget: 5, then 1 per second
    assert limited.stats.rate_limited == 17
    now[0] += 1.0
    assert limited.place_order(body).status == "accepted"
