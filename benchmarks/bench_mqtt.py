"""Live MQTT throughput and latency: how many messages a live line publishes, and how fast they reach a subscriber.

For each line length (10, 50, 200 stations) a busy tandem line is generated (single-machine stations, exponential
processing of 0.5 to 0.8 min, failures, finite buffers, one part per simulated minute) and pre-filled so every
station has work. Each case runs three processes:

* **publisher**: ``Line(live=True)`` + ``LiveDriver`` + ``MqttAdapter`` (default UNS profile) on one asyncio loop, as
  ``simline live`` runs them; with ``--broker embedded`` the amqtt broker runs on that loop too. A benchmark observer
  (attached after the adapter's) notes the monotonic time of every machine state change, and a probe task
  measures how late a 10 ms sleep wakes up (event-loop lag).
* **subscriber**: a paho client subscribed to ``<root>/<line>/#`` that counts messages and notes the arrival time
  of every ``…/<station>/state`` message. A state message with sequence number *k* is the *k*-th state change of
  its machine (0 is the snapshot at connection), so its latency is arrival − model event, on the shared
  monotonic clock.
* **broker**: Mosquitto 2 (``/usr/sbin/mosquitto``, loopback, a free port, no queue limits), unless embedded.

Modes:

* **demo**: speed 60 and the default intervals (telemetry every 1 s, KPIs every 2 s): what ``simline live`` sends;
  latency from a model event to the subscriber (p50/p99).
* **flat**: speed 1800 and telemetry every 0.05 s: the highest sustained rate. *Published/s* is what the adapter
  handed to the client (written to the socket within the backlog limit), *delivered/s* what the subscriber got.

``--ceiling`` first measures a bare paho client publishing 200,000 small QoS 0 messages flat out through the same
event-loop integration (the ~37k msgs/s reference of the issue). After a warm-up (3 s) both processes measure the
same window (8 s). Run ``python benchmarks/bench_mqtt.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

UTILISATIONS = (0.5, 0.6, 0.7, 0.55, 0.65, 0.75)
MODES = {"demo": (60.0, 1.0, 2.0), "flat": (1800.0, 0.0, 1.0)}  # speed, telemetry interval (0: flat), KPI interval
FLAT_SAMPLES_PER_S = 8000.0  # flat mode: telemetry samples of all machines per second (demand ~ 5 changes each)
ROOT, LINE = "bench/site/area", "line"


def tandem_yaml(n: int, seed: int = 1) -> str:
    """A busy tandem line of ``n`` single-machine stations (one part per simulated minute)."""
    lines = [
        f"name: MQTT benchmark line, {n} stations",
        "products:",
        "  - family: part",
        "    price: 1",
        "orders:",
        "  kind: poisson",
        "  rate_per_hour: 60.0",
        "  quantity: 1",
        "  due_in_hours: 24",
        "stations:",
    ]
    for i in range(n):
        rho = 0.8 if i == n // 2 else UTILISATIONS[i % len(UTILISATIONS)]
        lines += [
            f"  - id: s{i + 1:03d}",
            "    kind: machining",
            f"    processing: {{base: {{kind: exponential, mean: {rho!r}}}}}",
            "    failures:",
            "      time_between: {kind: exponential, mean: 30.0}",
            "      repair_time: {kind: lognormal, mean: 3.0, sd: 1.0}",
            "    power_kw: {processing: 5.0, idle: 1.2, down: 0.3}",
            *(["    buffer: 5"] if i else []),
        ]
    lines += ["routing:", *(f"  - station: s{i + 1:03d}" for i in range(n))]
    lines += ["experiment:", "  horizon_hours: 24", "  warmup_hours: 0", "  replications: 1", f"  seed: {seed}"]
    return "\n".join(lines) + "\n"


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def free_port() -> int:
    """A loopback port that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds() -> float:
    """CPU time of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass(frozen=True)
class Case:
    """One measurement."""

    broker: str
    stations: int
    mode: str
    warmup: float
    window: float
    profile: str = "uns"
    subscribe: str = "all"  # all: the line's whole tree; states: only the state tags; none: no subscriber
    event_qos: int = 0


@dataclass
class Result:
    """The figures of one case."""

    broker: str
    stations: int
    mode: str
    subscribe: str
    speed: float
    published_per_s: float
    delivered_per_s: float
    dropped_per_s: float
    sim_x: float
    lag_p50_s: float
    lag_p99_s: float
    loop_lag_p99_ms: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_samples: int
    publisher_cpu_pct: float
    subscriber_cpu_pct: float


# --- processes -----------------------------------------------------------------------------------------
def publisher_main(case: Case, port: int, out: Any, ready: Any, start: Any, t0: Any) -> None:
    """The live line with its MQTT adapter."""
    asyncio.run(_publish(case, port, out, ready, start, t0))


async def _publish(case: Case, port: int, out: Any, ready: Any, start: Any, t0: Any) -> None:
    from simline import parse_scenario
    from simline.events import StateChanged
    from simline.live.driver import LiveDriver
    from simline.mqtt import MqttAdapter, MqttOptions, parse_broker_url
    from simline.sim import Line

    speed, sample, kpis = MODES[case.mode]
    sample = sample or case.stations / FLAT_SAMPLES_PER_S
    line = Line(parse_scenario(tandem_yaml(case.stations)), live=True)
    line.env.run(until=60.0 + 3.0 * case.stations)  # pre-fill, untimed
    driver = LiveDriver(line, speed=speed)
    broker = None if case.broker == "embedded" else parse_broker_url(f"mqtt://127.0.0.1:{port}")
    options = MqttOptions(
        broker=broker,
        embedded_port=port,
        profile=case.profile,
        root=ROOT if case.profile == "uns" else None,
        line_id=LINE,
        sample_interval=sample,
        kpi_interval=kpis,
        event_qos=case.event_qos,
    )
    adapter = MqttAdapter(driver, options)
    await adapter.start(wait=10.0)
    assert adapter.profile is not None
    names = dict(adapter.profile.names)
    counts = dict.fromkeys(names.values(), 0)
    emitted: list[tuple[str, int, float]] = []
    record = [False]

    def observe(event: Any) -> None:
        if type(event) is StateChanged:
            name = names[(event.station, event.machine)]
            counts[name] += 1
            if record[0]:
                emitted.append((name, counts[name], time.monotonic()))

    line.add_observer(observe)
    ready.set()
    await asyncio.to_thread(start.wait)
    loop_lags: list[float] = []

    async def probe() -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            loop_lags.append(time.perf_counter() - t - 0.01)

    task = asyncio.create_task(driver.run())
    probe_task = asyncio.create_task(probe())
    begin = t0.value + case.warmup
    await asyncio.sleep(max(0.0, begin - time.monotonic()))
    stats = adapter.profile.publisher.stats
    record[0] = True
    driver.lag.samples.clear()
    loop_lags.clear()
    p0, d0, sim0, cpu0, w0 = stats.published, stats.dropped, line.env.now, cpu_seconds(), time.monotonic()
    await asyncio.sleep(max(0.0, begin + case.window - time.monotonic()))
    elapsed = time.monotonic() - w0
    record[0] = False
    figures = {
        "published_per_s": (stats.published - p0) / elapsed,
        "dropped_per_s": (stats.dropped - d0) / elapsed,
        "sim_x": (line.env.now - sim0) * 60.0 / elapsed,
        "lag_p50_s": driver.lag.quantile(0.5),
        "lag_p99_s": driver.lag.quantile(0.99),
        "loop_lag_p99_ms": quantile(loop_lags, 0.99) * 1000,
        "cpu_pct": (cpu_seconds() - cpu0) / elapsed * 100,
        "speed": speed,
    }
    probe_task.cancel()
    driver.stop()
    await task
    out.put(("publisher", figures, emitted if case.mode == "demo" else []))
    await asyncio.sleep(1.0)  # the subscriber may still be reading from the embedded broker
    await adapter.stop()


def subscriber_main(case: Case, port: int, out: Any, ready: Any, t0: Any) -> None:
    """Counts messages; notes the arrival of every state message in the window."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    arrivals: list[tuple[str, int, float]] = []
    count = [0, 0]  # in the window, total
    window = [math.inf, math.inf]

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        now = time.monotonic()
        count[1] += 1
        if window[0] <= now < window[1]:
            count[0] += 1
            if msg.topic.endswith("/state"):
                arrivals.append((msg.topic.split("/")[-2], json.loads(msg.payload)["seq"], now))

    def on_subscribe(*_: Any) -> None:
        ready.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{os.getpid()}")
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    topic = (
        f"{ROOT}/{LINE}/{'+/state' if case.subscribe == 'states' else '#'}" if case.profile == "uns" else "spBv1.0/#"
    )
    client.on_connect = lambda c, *_: c.subscribe(topic, 0)
    client.connect("127.0.0.1", port, 60)
    client.loop_start()
    while t0.value == 0.0:
        time.sleep(0.01)
    window[0] = t0.value + case.warmup
    window[1] = window[0] + case.window
    cpu0 = cpu_seconds()
    time.sleep(max(0.0, window[1] + 0.5 - time.monotonic()))
    cpu = (cpu_seconds() - cpu0) / (case.window + case.warmup) * 100
    client.disconnect()
    client.loop_stop()
    out.put(("subscriber", {"delivered_per_s": count[0] / case.window, "cpu_pct": cpu}, arrivals))


def start_mosquitto(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """Mosquitto on 127.0.0.1:port, no queue limits (a slow subscriber does not lose messages)."""
    import getpass

    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
        "max_queued_messages 0\nmax_inflight_messages 0\n"
    )
    proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


def run_case(case: Case) -> Result:
    """Run one case in fresh processes."""
    ctx = mp.get_context("spawn")
    port = free_port()
    out = ctx.Queue()
    t0 = ctx.Value("d", 0.0)
    pub_ready, sub_ready, start = ctx.Event(), ctx.Event(), ctx.Event()
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_mosquitto(Path(tmp), port) if case.broker == "mosquitto" else None
        try:
            pub = ctx.Process(target=publisher_main, args=(case, port, out, pub_ready, start, t0))
            pub.start()
            if not pub_ready.wait(60):
                raise RuntimeError("the publisher did not start")
            sub = ctx.Process(target=subscriber_main, args=(case, port, out, sub_ready, t0))
            if case.subscribe != "none":
                sub.start()
                if not sub_ready.wait(30):
                    raise RuntimeError("the subscriber did not subscribe")
            t0.value = time.monotonic()
            start.set()
            parts = {"subscriber": ({"delivered_per_s": 0.0, "cpu_pct": 0.0}, [])}
            for _ in range(1 if case.subscribe == "none" else 2):
                kind, figures, rows = out.get(timeout=case.warmup + case.window + 60)
                parts[kind] = (figures, rows)
            pub.join(30)
            if case.subscribe != "none":
                sub.join(30)
        finally:
            if broker is not None:
                broker.terminate()
                broker.wait(10)
    (pf, emitted), (sf, arrivals) = parts["publisher"], parts["subscriber"]
    when = {(name, k): t for name, k, t in emitted}
    latencies = [(t - when[(name, seq)]) * 1000 for name, seq, t in arrivals if (name, seq) in when]
    return Result(
        broker=case.broker,
        stations=case.stations,
        mode=case.mode,
        subscribe=case.subscribe,
        speed=pf["speed"],
        published_per_s=pf["published_per_s"],
        delivered_per_s=sf["delivered_per_s"],
        dropped_per_s=pf["dropped_per_s"],
        sim_x=pf["sim_x"],
        lag_p50_s=pf["lag_p50_s"],
        lag_p99_s=pf["lag_p99_s"],
        loop_lag_p99_ms=pf["loop_lag_p99_ms"],
        latency_p50_ms=quantile(latencies, 0.5) if latencies else None,
        latency_p99_ms=quantile(latencies, 0.99) if latencies else None,
        latency_samples=len(latencies),
        publisher_cpu_pct=pf["cpu_pct"],
        subscriber_cpu_pct=sf["cpu_pct"],
    )


# --- the paho ceiling ------------------------------------------------------------------------------------
def ceiling(n: int = 200_000) -> float:
    """Messages/s of a bare paho client publishing small QoS 0 messages flat out to Mosquitto (no subscriber)."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        broker = start_mosquitto(Path(tmp), port)
        try:
            return asyncio.run(_ceiling(port, n))
        finally:
            broker.terminate()
            broker.wait(10)


async def _ceiling(port: int, n: int) -> float:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    loop = asyncio.get_running_loop()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ceiling")
    client.on_socket_register_write = lambda c, u, s: loop.add_writer(s, c.loop_write)
    client.on_socket_unregister_write = lambda c, u, s: loop.remove_writer(s)
    client.connect("127.0.0.1", port)
    sock = client.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
    loop.add_reader(sock, client.loop_read)
    while not client.is_connected():
        await asyncio.sleep(0.001)
    payload = b'{"value":12.5,"timestamp_ms":1700000000000,"seq":1,"unit":"kW"}'
    started = time.perf_counter()
    for i in range(n):
        client.publish(f"{ROOT}/{LINE}/s001/power", payload, 0)
        if i % 1000 == 999:
            while client.want_write():
                await asyncio.sleep(0)
    while client.want_write():
        await asyncio.sleep(0)
    rate = n / (time.perf_counter() - started)
    loop.remove_reader(sock)
    client.disconnect()
    return rate


# --- main ----------------------------------------------------------------------------------------------
def print_table(results: list[Result]) -> None:
    """The figures as a table."""
    print(
        f"{'broker':<10} {'stations':>8} {'mode':<5} {'subscr':<6} {'speed':>6} {'published/s':>11} "
        f"{'delivered/s':>11} {'dropped/s':>9} {'sim x':>6} {'lag p50/p99 s':>13} {'loop p99 ms':>11} "
        f"{'latency p50/p99 ms':>18} {'pub %':>5} {'sub %':>5}"
    )
    for r in results:
        latency = "-" if r.latency_p50_ms is None else f"{r.latency_p50_ms:.1f} / {r.latency_p99_ms:.1f}"
        print(
            f"{r.broker:<10} {r.stations:>8} {r.mode:<5} {r.subscribe:<6} {r.speed:>6g} {r.published_per_s:>11,.0f} "
            f"{r.delivered_per_s:>11,.0f} {r.dropped_per_s:>9,.0f} {r.sim_x:>6.0f} "
            f"{r.lag_p50_s:>6.3f}/{r.lag_p99_s:<6.3f} {r.loop_lag_p99_ms:>11.1f} {latency:>18} "
            f"{r.publisher_cpu_pct:>5.0f} {r.subscriber_cpu_pct:>5.0f}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the cases and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default="mosquitto,embedded", help="mosquitto and/or embedded")
    parser.add_argument("--stations", default="10,50,200", help="line lengths")
    parser.add_argument("--modes", default="demo,flat", help="demo and/or flat")
    parser.add_argument("--profile", default="uns", choices=("uns", "sparkplug"), help="MQTT profile")
    parser.add_argument(
        "--subscribe",
        default="all,none",
        help="subscriber cases, comma-separated: all (the line's tree), states (state tags only), none (no "
        "subscriber; flat mode only)",
    )
    parser.add_argument("--event-qos", type=int, default=0, choices=(0, 1), help="QoS of states and lifecycle")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the window")
    parser.add_argument("--window", type=float, default=8.0, help="measured seconds")
    parser.add_argument("--ceiling", action="store_true", help="also measure a bare paho client flat out")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    if "mosquitto" in args.brokers and not Path("/usr/sbin/mosquitto").exists():
        parser.error("/usr/sbin/mosquitto not found (apt-get install mosquitto), or use --brokers embedded")
    print(
        f"# {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count()}
    if args.ceiling:
        rate = ceiling()
        report["paho_ceiling_per_s"] = rate
        print(f"bare paho, QoS 0, flat out to Mosquitto: {rate:,.0f} msgs/s", flush=True)
    results = []
    for broker in args.brokers.split(","):
        for mode in args.modes.split(","):
            for subscribe in args.subscribe.split(","):
                if mode == "demo" and subscribe == "none":
                    continue
                for n in (int(s) for s in args.stations.split(",")):
                    case = Case(broker, n, mode, args.warmup, args.window, args.profile, subscribe, args.event_qos)
                    results.append(run_case(case))
                    print(f"  done: {broker} {mode} {subscribe} {n} stations", file=sys.stderr, flush=True)
    print_table(results)
    report["results"] = [asdict(r) for r in results]
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
