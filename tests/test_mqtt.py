"""The MQTT interface of a live line against real brokers: Mosquitto (started by the test) and the embedded one.

A recording subscriber checks topic names, payload schema, retained tags and that every topic's sequence is
complete; orders and commands go in over MQTT, bad ones are rejected with reasons while the line runs; a broker
restart mid-run leads to a reconnection, a truthful status and gaps that are reported, not silent.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from mqtt_support import SCENARIOS, Received, Subscriber, free_port, live_mqtt, wait_until

from simline import load_scenario
from simline.events import MachineState
from simline.live.driver import LiveDriver
from simline.mqtt import MqttAdapter, MqttOptions, parse_broker_url
from simline.mqtt.uns import UNITS, UnsProfile
from simline.sim import Line

STATES = {s.label for s in MachineState}


@pytest.fixture(params=["mosquitto", "embedded"])
def broker_url(request: pytest.FixtureRequest) -> str | None:
    """The URL of a running Mosquitto, or ``None`` for the embedded broker the adapter starts."""
    if request.param == "embedded":
        return None
    return str(request.getfixturevalue("mosquitto").url)


def _by_topic(messages: list[Received]) -> dict[str, list[Received]]:
    out: dict[str, list[Received]] = defaultdict(list)
    for m in messages:
        out[m.topic].append(m)
    return out


def _status(messages: list[Received], topic: str) -> list[tuple[str, int]]:
    return [(m.json()["value"], m.json()["seq"]) for m in messages if m.topic == topic]


# --- the default profile: topics, payloads, completeness, retained tags ---------------------------------------
def _topic_pattern(base: str, machines: list[str]) -> re.Pattern[str]:
    station_tags = "|".join([*UNITS, "state", "alarm", "info", r"cmd/status/[\w.:-]+"])
    line_tags = (
        r"status|info|shift|kpi/[a-z0-9_]+|clock/(sim_minutes|sim_time|speed|paused|lag)|orders/(open|completed)"
        r"|orders/status(/[\w.:-]+)?|orders/O\d{6}/lifecycle|mqtt/(stats|gaps)"
    )
    return re.compile(rf"^{re.escape(base)}/(({line_tags})|({'|'.join(machines)})/({station_tags}))$")


def _check_value(topic: str, value: Any, unit: Any) -> None:
    tag = topic.rsplit("/", 1)[-1]
    if "/lifecycle" in topic:
        assert value["event"] in {"created", "started", "unit_finished", "scrapped", "reworked", "finished"}
        assert topic.endswith(f"/orders/{value['order_id']}/lifecycle")
    elif tag == "state":
        assert value in STATES
    elif tag == "status" and "/cmd/" not in topic and "/orders/" not in topic:
        assert value in ("online", "offline")
    elif tag in UNITS:
        assert unit == UNITS[tag], (topic, unit)
        if tag == "current_order":
            assert value is None or isinstance(value, str)
        elif tag in ("buffer_level", "processed_count", "good_count", "failure_count"):
            assert isinstance(value, int) and value >= 0
        else:
            assert isinstance(value, float | int)
    elif "/kpi/" in topic:
        assert value is None or isinstance(value, float | int)


async def _uns_run(url: str | None) -> None:
    async with live_mqtt(url, speed=6000.0) as live:
        base, status = live.base, f"{live.base}/status"
        machines = [name for name, _ in live.profile.machines]
        sub = Subscriber(live.port, [f"{base}/#"])
        await asyncio.to_thread(sub.start)
        await sub.until(lambda: ("online", 0) in _status(sub.snapshot(), status), 5, "the retained online status")
        at_subscribe = dict(live.profile._seq)
        t0 = int(time.time() * 1000)
        live.run()
        finished = f"{base}/orders/O000010/lifecycle"
        await sub.until(
            lambda: any(m.json()["value"]["event"] == "finished" for m in sub.on(finished)), 20, "ten orders to finish"
        )
        # a late subscriber sees the retained tags: machine state, metadata, alarms, line status, KPIs
        late = Subscriber(live.port, [f"{base}/#"])
        await asyncio.to_thread(late.start)
        retained_needed = {f"{base}/{m}/{tag}" for m in machines for tag in ("state", "info", "alarm")}
        retained_needed |= {status, f"{base}/info", f"{base}/shift", f"{base}/kpi/oee", f"{base}/clock/sim_time"}
        await late.until(
            lambda: retained_needed <= {m.topic for m in late.snapshot() if m.retain}, 5, "the retained tags"
        )
        retained = {m.topic for m in late.snapshot() if m.retain}
        late.stop()
        assert not any(t.endswith(("/power", "/temperature", "/lifecycle", "/cmd/status")) for t in retained)
        await live.stop()
        await sub.until(lambda: _status(sub.snapshot(), status)[-1][0] == "offline", 5, "the offline status")
        final = dict(live.profile._seq)
        stats = live.publisher.stats
        t1 = int(time.time() * 1000)
    messages = sub.snapshot()
    sub.stop()
    assert stats.dropped == stats.uncertain == 0 and stats.connects == 1 and stats.published > 400
    pattern = _topic_pattern(base, machines)
    lifecycles = 0
    for topic, msgs in _by_topic(messages).items():
        assert pattern.match(topic), f"undocumented topic {topic}"
        payloads = [m.json() for m in msgs]
        for p in payloads:
            assert set(p) == {"value", "timestamp_ms", "seq", "unit"}, (topic, p)
            assert isinstance(p["seq"], int) and isinstance(p["timestamp_ms"], int)
            assert p["unit"] is None or isinstance(p["unit"], str)
            assert t0 - 60_000 <= p["timestamp_ms"] <= t1, (topic, p)
            _check_value(topic, p["value"], p["unit"])
        # completeness: the retained copy (if any) and then every live message, in order, up to the last one
        live_seqs = [p["seq"] for m, p in zip(msgs, payloads, strict=True) if not m.retain]
        kept = [p["seq"] for m, p in zip(msgs, payloads, strict=True) if m.retain]
        assert len(kept) <= 1, (topic, kept)
        first = kept[0] if kept else (live_seqs[0] if live_seqs else 0)
        seqs = sorted(set(kept + live_seqs))
        assert live_seqs == sorted(live_seqs) and len(set(live_seqs)) == len(live_seqs), (topic, live_seqs)
        assert seqs == list(range(first, first + len(seqs))), f"{topic}: a gap in {seqs}"
        if topic not in at_subscribe:
            assert first == 0, f"{topic}: the first message after the subscription was lost"
        if "/lifecycle" in topic:
            lifecycles += 1
            events = [p["value"]["event"] for p in payloads]
            assert events[0] == "created" and events.count("created") == 1
            assert topic not in final or events[-1] != "finished"  # a finished stream is closed
            if events[-1] == "finished":
                assert "started" in events and "unit_finished" in events
        elif topic in final:
            assert seqs[-1] == final[topic] - 1, f"{topic}: the last message was lost"
    assert lifecycles >= 10
    statuses = _status(messages, status)
    assert statuses[0] == ("online", 0) and statuses[-1] == ("offline", 1)


def test_uns_topics_payloads_retained_tags_and_complete_sequences(broker_url: str | None) -> None:
    asyncio.run(_uns_run(broker_url))


# --- orders and commands in ----------------------------------------------------------------------------------
def _reply(sub: Subscriber, topic: str) -> Callable[[], Any]:
    """The value of the last message on ``topic`` (``None`` before the first)."""

    def get() -> Any:
        msgs = sub.on(topic)
        return msgs[-1].json()["value"] if msgs else None

    return get


async def _orders_and_commands(url: str | None) -> None:
    async with live_mqtt(url, speed=1200.0) as live:
        base = live.base
        sub = Subscriber(live.port, [f"{base}/#"])
        await asyncio.to_thread(sub.start)
        live.run()
        new = f"{base}/orders/new"
        shared = f"{base}/orders/status"

        async def send(topic: str, payload: bytes | str) -> None:
            await asyncio.to_thread(sub.publish, topic, payload)

        async def reply(topic: str) -> dict[str, Any]:
            get = _reply(sub, topic)
            await sub.until(lambda: get() is not None, 5, f"a reply on {topic}")
            value = get()
            assert value is not None
            return value

        good = {"request_id": "ok-1", "product": "plate", "options": {"size": "large", "engraving": "yes"}}
        await send(new, json.dumps(good))
        accepted = await reply(f"{base}/orders/status/ok-1")
        assert accepted["status"] == "accepted" and re.fullmatch(r"O\d{6}", accepted["order_id"])
        lifecycle = f"{base}/orders/{accepted['order_id']}/lifecycle"
        await sub.until(lambda: len(sub.on(lifecycle)) >= 2, 10, "the new order to start")
        created = sub.on(lifecycle)[0].json()
        assert created["seq"] == 0 and created["value"]["event"] == "created"
        assert created["value"]["options"] == {"size": "large", "engraving": "yes"}
        accepted_before = live.profile.commands.stats.accepted
        now_before = live.line.env.now
        bad: list[tuple[str, bytes | str, str, str, str]] = [
            (new, "{not json", shared, "", "not valid JSON"),
            (new, b"\x00\xff" * 10, shared, "", "not UTF-8"),
            (new, "x" * 9000, shared, "", "message too large: 9000 bytes"),
            (new, json.dumps({"request_id": "b1", "product": "bolt"}), f"{shared}/b1", "family", "not a product"),
            (
                new,
                json.dumps({**good, "request_id": "b2", "options": {"size": "XXL", "engraving": "no"}}),
                f"{shared}/b2",
                "options.size",
                "'XXL' is not a choice of size",
            ),
            (new, json.dumps({**good, "request_id": "b3", "quantity": 10**6}), f"{shared}/b3", "quantity", "between"),
            (new, json.dumps({**good, "request_id": "bad id!"}), shared, "request_id", "must be 1 to 64"),
            (new, json.dumps([good]), shared, "", "must be a JSON object"),
            (
                f"{base}/drill/cmd/reset",
                '{"request_id": "c1"}',
                f"{base}/drill/cmd/status/c1",
                "station",
                "'drill' is not a station",
            ),
            (f"{base}/cut/cmd/explode", '{"request_id": "c2"}', f"{base}/cut/cmd/status/c2", "command", "unknown"),
            (
                f"{base}/cut/cmd/inject_fault",
                '{"request_id": "c3", "repair_minutes": -1}',
                f"{base}/cut/cmd/status/c3",
                "repair_minutes",
                "between 0 and 10000",
            ),
        ]
        for topic, payload, reply_topic, field, reason in bad:
            seen = len(sub.on(reply_topic))
            await send(topic, payload)
            await sub.until(lambda t=reply_topic, n=seen: len(sub.on(t)) > n, 5, f"a rejection on {reply_topic}")
            rejection = sub.on(reply_topic)[-1].json()["value"]
            assert rejection["status"] == "rejected" and rejection["field"] == field, rejection
            assert reason in rejection["reason"], (reason, rejection)
        assert live.profile.commands.stats.accepted == accepted_before  # no bad order or command got in
        # station commands: a fault, then a reset
        await send(f"{base}/cut/cmd/inject_fault", '{"request_id": "f1", "repair_minutes": 600}')
        fault = await reply(f"{base}/cut/cmd/status/f1")
        assert fault["status"] == "accepted" and fault["result"] in ("down", "armed")
        state = _reply(sub, f"{base}/cut/state")
        alarm = _reply(sub, f"{base}/cut/alarm")
        await sub.until(lambda: state() == "down" and (alarm() or {}).get("active") is True, 10, "cut down")
        await send(f"{base}/cut/cmd/reset", '{"request_id": "f2"}')
        assert (await reply(f"{base}/cut/cmd/status/f2"))["result"] == "repaired"
        await sub.until(lambda: state() != "down" and (alarm() or {}).get("active") is False, 10, "cut repaired")
        # a flood is rate-limited; the line keeps running throughout
        flood = json.dumps({"product": "plate", "options": {"size": "small", "engraving": "no"}})
        commands = live.profile.commands.stats
        assert commands.accepted == 3
        flood_started = time.monotonic()
        for _ in range(150):
            sub.client.publish(new, flood, 0)
        await wait_until(lambda: commands.accepted + commands.rate_limited == 3 + 150, 10, "the flood to be handled")
        flood_seconds = time.monotonic() - flood_started
        assert commands.accepted - 3 <= 40 + 20 * flood_seconds + 1  # at most the burst, then 20 per second
        assert commands.rate_limited >= 150 - 41 - 20 * flood_seconds
        await sub.until(
            lambda: any("rate limit" in m.json()["value"].get("reason", "") for m in sub.on(shared)),
            5,
            "a rate-limit rejection",
        )
        await wait_until(lambda: live.line.env.now > now_before + 30, 10, "the line to keep running")
        assert live.publisher.connected and live.driver.lag.quantile(0.99) < 1.0
        assert commands.rejected == len(bad)
    sub.stop()


def test_orders_and_commands_are_checked_and_answered_while_the_run_goes_on(broker_url: str | None) -> None:
    asyncio.run(_orders_and_commands(broker_url))


# --- reliability ---------------------------------------------------------------------------------------------
def _reported(reports: list[dict[str, Any]]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = defaultdict(set)
    for report in reports:
        for kind in ("dropped", "uncertain"):
            for topic, spans in report[kind].items():
                for first, last in spans:
                    out[topic].update(range(first, last + 1))
    return out


async def _broker_restart(mosquitto: Any) -> None:
    options = {"buffer_messages": 150, "sample_interval": 0.02, "event_qos": 1, "sample_qos": 1, "stats_interval": 0.1}
    async with live_mqtt(mosquitto.url, speed=3000.0, **options) as live:
        base, status, pub = live.base, f"{live.base}/status", live.publisher
        sub = Subscriber(mosquitto.port, [f"{base}/#"], client_id="restart-test", clean=False)
        await asyncio.to_thread(sub.start)
        await sub.until(lambda: bool(_status(sub.snapshot(), status)), 5, "the status")
        at_subscribe = dict(live.profile._seq)
        live.run()
        await sub.until(lambda: len(sub.snapshot()) > 300, 10, "traffic before the restart")
        await asyncio.to_thread(mosquitto.stop)
        await wait_until(lambda: not pub.connected, 5, "the publisher to notice the broker is gone")
        await wait_until(
            lambda: pub.stats.dropped > 50 and pub.stats.connect_failures >= 2,
            10,
            "drops and failed reconnection attempts",
        )
        sim_during_outage = live.line.env.now
        await asyncio.to_thread(mosquitto.start)
        await wait_until(lambda: pub.connected, 10, "the reconnection")
        assert live.line.env.now > sim_during_outage  # the line never waited for the broker
        gaps = f"{base}/mqtt/gaps"
        await sub.until(
            lambda: any(m.json()["value"]["reason"] == "reconnect" for m in sub.on(gaps)), 10, "the gap report"
        )
        await sub.until(lambda: _status(sub.snapshot(), status)[-1][0] == "online", 5, "online after the restart")
        received = len(sub.snapshot())
        await sub.until(lambda: len(sub.snapshot()) > received + 300, 10, "traffic after the restart")
        await live.stop()
        await sub.until(lambda: _status(sub.snapshot(), status)[-1][0] == "offline", 5, "offline at the end")
        final = dict(live.profile._seq)
        stats = pub.stats
    messages = sub.snapshot()
    sub.stop()
    assert stats.connects == 2 and stats.disconnects == 1 and stats.dropped > 50
    reports = [m.json()["value"] for m in messages if m.topic == f"{base}/mqtt/gaps"]
    outage = [r["outage"] for r in reports if r["reason"] == "reconnect"]
    assert len(outage) == 1 and outage[0]["from_ms"] < outage[0]["to_ms"]
    reported = _reported(reports)
    assert sum(r["dropped_count"] for r in reports) == stats.dropped
    seen: dict[str, set[int]] = defaultdict(set)
    for m in messages:
        seen[m.topic].add(m.json()["seq"])
    silent: dict[str, list[int]] = {}
    observed_gaps = 0
    for topic, final_seq in final.items():
        first = at_subscribe.get(topic, 0) if topic in at_subscribe else 0
        if topic in at_subscribe and seen[topic]:
            first = min(min(seen[topic]), final_seq - 1)
        missing = set(range(first, final_seq)) - seen[topic]
        observed_gaps += len(missing)
        if missing - reported[topic]:
            silent[topic] = sorted(missing - reported[topic])[:10]
    assert observed_gaps > 0, "the outage should have cost messages"
    assert not silent, f"gaps nobody reported: {silent}"
    statuses = _status(messages, status)
    assert statuses[0] == ("online", 0) and statuses[-1][0] == "offline"
    assert [s for s in statuses if s[0] == "online"][-1][1] >= 2  # a new online, after the will's reserved seq
    assert 1 in reported[status]  # the will may or may not have been sent: reported as uncertain


def test_broker_restart_reconnects_with_a_truthful_status_and_reported_gaps(mosquitto: Any) -> None:
    asyncio.run(_broker_restart(mosquitto))


async def _will(mosquitto: Any) -> None:
    async with live_mqtt(mosquitto.url) as live:
        status = f"{live.base}/status"
        sub = Subscriber(mosquitto.port, [status])
        await asyncio.to_thread(sub.start)
        await sub.until(lambda: _status(sub.snapshot(), status) == [("online", 0)], 5, "online")
        live.run()
        client = live.publisher._client
        assert client is not None
        client.socket().shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]  # the connection dies
        await sub.until(lambda: ("offline", 1) in _status(sub.snapshot(), status), 5, "the will")
        await sub.until(lambda: ("online", 2) in _status(sub.snapshot(), status), 5, "online again")
        assert live.publisher.stats.connects == 2
    assert _status(sub.snapshot(), status) == [("online", 0), ("offline", 1), ("online", 2), ("offline", 3)]
    sub.stop()


def test_a_dead_connection_publishes_the_offline_will_then_reconnects(mosquitto: Any) -> None:
    asyncio.run(_will(mosquitto))


async def _unreachable() -> None:
    silent = socket.socket()  # accepts TCP connections (the kernel's backlog) but never speaks MQTT
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    line = Line(load_scenario(SCENARIOS / "quickstart.yaml"), live=True)
    driver = LiveDriver(line, speed=3000.0)
    options = MqttOptions(
        broker=parse_broker_url(f"mqtt://127.0.0.1:{port}"),
        buffer_messages=50,
        sample_interval=0.02,
        connect_timeout=0.3,
        reconnect_min=0.05,
        reconnect_max=0.2,
    )
    adapter = MqttAdapter(driver, options)
    try:
        started = time.monotonic()
        await adapter.start(wait=0.2)
        assert time.monotonic() - started < 1.0
        profile = adapter.profile
        assert isinstance(profile, UnsProfile) and not profile.publisher.connected
        await driver.run(duration_seconds=2.0)
        stats = profile.publisher.stats
        assert stats.connect_failures >= 2 and "CONNACK" in stats.last_error
        assert stats.buffered == 50 and stats.dropped > 0 and stats.published == 0
        assert line.env.now > 80 and driver.lag.quantile(0.99) < 0.5  # ~100 simulated minutes, on time
    finally:
        await adapter.stop()
        silent.close()


def test_an_unreachable_broker_never_holds_up_the_line() -> None:
    asyncio.run(_unreachable())


# --- CLI -----------------------------------------------------------------------------------------------------
@dataclass
class _Seen:
    values: list[str] = field(default_factory=list)


def test_simline_live_publishes_to_a_named_broker_and_to_the_embedded_one(mosquitto: Any) -> None:
    from typer.testing import CliRunner

    from simline.cli import app

    sub = Subscriber(mosquitto.port, ["simline/demo/production/quickstart_line/status"]).start()
    runner = CliRunner()
    quickstart = str(SCENARIOS / "quickstart.yaml")
    result = runner.invoke(
        app, ["live", quickstart, "--no-opcua", "--no-dashboard", "--duration", "1", "--mqtt", mosquitto.url]
    )
    assert result.exit_code == 0, result.output
    assert f"MQTT       {mosquitto.url}  topics simline/demo/production/quickstart_line/#" in result.output
    sub.wait(lambda: [m.json()["value"] for m in sub.snapshot()] == ["online", "offline"], 5, "online, offline")
    sub.stop()
    port = free_port()
    result = runner.invoke(
        app,
        [
            "live",
            quickstart,
            "--no-opcua",
            "--no-dashboard",
            "--duration",
            "1",
            "--mqtt-port",
            str(port),
            "--mqtt-profile",
            "sparkplug",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"mqtt://127.0.0.1:{port} (embedded broker)  Sparkplug B group simline" in result.output
    for args, hint in [
        (["--mqtt", "http://x"], "--mqtt"),
        (["--mqtt-port", "99999"], "--mqtt-port"),
        (["--mqtt-root", "a/#"], "--mqtt-root"),
        (["--mqtt-profile", "sparkplug", "--mqtt-root", "a/b"], "--mqtt-root"),
        (["--mqtt-profile", "json"], "--mqtt-profile"),
    ]:
        result = runner.invoke(app, ["live", quickstart, "--no-opcua", *args])
        assert result.exit_code == 2 and hint in result.output, (args, result.output)
