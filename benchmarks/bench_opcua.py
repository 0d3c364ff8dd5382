"""Live OPC UA throughput: how many data changes a live line delivers to a real OPC UA client.

For each line length a tandem line is generated (YAML through ``parse_scenario``): single-machine stations with
short exponential processing times (0.5 to 0.8 min), failures (every 30 operating minutes on average, repairs of
about 3 min), finite buffers and a Poisson arrival rate that keeps the line busy (bottleneck utilisation 0.8), so
states change often. The line is pre-filled (simulated, untimed) so that every station has work when the clock
starts.

Two processes per case, so that the client's CPU does not count against the server:

* **server**: ``Line(live=True)`` + ``LiveDriver(speed)`` + ``LineServer`` (open security profile, loopback, a free
  port) on one asyncio loop, as ``simline live`` runs them, plus a probe task that sleeps 10 ms and records the
  overshoot (asyncio loop lag);
* **client**: a real ``asyncua.Client`` that subscribes (one subscription, publishing interval 100 ms) to every
  ``Monitoring/*`` variable and ``MachineryItemState/CurrentState`` of every machine, and to ``Line/KPIs/*``, and
  counts the data-change notifications it receives (from the publish responses, before the subscription's
  iterator queue; a consumer task also drains the queue as a real client would).

After a warm-up (default 5 s) both processes measure the same window (default 20 s) on the shared monotonic clock.
The figures per case: notifications/s delivered to the client; notifications/s queued by the server's
subscription; ``LineServer.writes``/s; syncs/s and the duration of ``LineServer.sync``; the simulated-vs-wall lag
(``driver.lag``, p50/p99); the asyncio loop lag (p99); the CPU of the server and of the client process (getrusage,
100 % = one core) and of the rest of the machine (``/proc/stat``); and whether the simulation kept pace (lag
p99 < 1 s).

Two modes: **normal** (``--speed`` 60, ``--publish-interval`` 0.2 s, the ``simline live`` defaults) and **flat out**
(``--flat-speed`` 3600, ``--flat-publish-interval`` 0.05 s), which looks for the highest sustained notification
rate, to compare with the target: >= 10,000 changes/s with the simulation keeping pace. ``--profile`` adds a run
of the largest line under cProfile (or pyinstrument) to name the server's hot spots, with the calls and writes of
``LineServer._write`` per variable.

On a shared machine the absolute rates follow the CPU the server gets; ``notif/cpu-s`` (notifications per CPU second
of the server) is the steadier figure. ``--what-if`` re-runs the flat-out lines with benchmark-only patches applied
inside the server process (no file of the package is changed), to show what a change to ``LineServer`` or asyncua
would gain: ``nocopy`` (asyncua's monitored items keep the written DataValue instead of deep-copying it),
``nohistory`` (no historizing, hence no internal history subscription), ``yield`` (``LineServer.sync`` yields to the
event loop every 100 writes).

Run ``python benchmarks/bench_opcua.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import io
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import resource
import socket
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

ARRIVALS_PER_HOUR = 60.0  # one part per simulated minute
UTILISATIONS = (0.5, 0.6, 0.7, 0.55, 0.65, 0.75)  # cycled; the middle station is the bottleneck
BOTTLENECK_RHO = 0.8
MTBF_MINUTES = 30.0  # operating minutes between failures (exponential)
REPAIR_MINUTES = (3.0, 1.0)  # lognormal mean, sd
BUFFER = 5
TARGET_RATE = 10_000.0  # changes/s a live run should sustain (issue target)
ASYNCUA_FAST_PATH = 30_000.0  # what asyncua alone reaches with write_attribute_value (issue)
KEEPS_PACE_LAG_S = 1.0
CLIENT_PUBLISHING_MS = 100.0
POLL_S = 0.02
WHAT_IF = {
    "nocopy": "asyncua's MonitoredItemValues keeps the written DataValue instead of a deepcopy of it",
    "nohistory": "LineServer does not historize Monitoring/* and the KPIs (no internal history subscription)",
    "yield": "LineServer.sync yields to the event loop after every 100 calls of _write",
}


# --- the line ------------------------------------------------------------------------------------------
def tandem_yaml(n: int, arrivals_per_hour: float = ARRIVALS_PER_HOUR, seed: int = 1) -> str:
    """A busy tandem line of ``n`` single-machine stations with short processing times and failures."""
    per_minute = arrivals_per_hour / 60.0
    lines = [
        f"name: OPC UA benchmark line, {n} stations",
        "products:",
        "  - family: part",
        "    price: 1",
        "orders:",
        "  kind: poisson",
        f"  rate_per_hour: {arrivals_per_hour!r}",
        "  quantity: 1",
        "  due_in_hours: 24",
        "stations:",
    ]
    for i in range(n):
        rho = BOTTLENECK_RHO if i == n // 2 else UTILISATIONS[i % len(UTILISATIONS)]
        mean = rho / per_minute
        lines += [
            f"  - id: s{i + 1:03d}",
            "    kind: machining",
            f"    processing: {{base: {{kind: exponential, mean: {mean!r}}}}}",
            "    failures:",
            f"      time_between: {{kind: exponential, mean: {MTBF_MINUTES!r}}}",
            f"      repair_time: {{kind: lognormal, mean: {REPAIR_MINUTES[0]!r}, sd: {REPAIR_MINUTES[1]!r}}}",
            "    power_kw: {processing: 5.0, idle: 1.2, down: 0.3}",
        ]
        if i > 0:
            lines.append(f"    buffer: {BUFFER}")
    lines.append("routing:")
    lines += [f"  - station: s{i + 1:03d}" for i in range(n)]
    lines += [
        "transport: {kind: fixed, time: 0}",
        "experiment:",
        "  horizon_hours: 24",
        "  warmup_hours: 0",
        "  replications: 1",
        f"  seed: {seed}",
    ]
    return "\n".join(lines) + "\n"


def prefill_minutes(n: int) -> float:
    """Simulated minutes to run before the clock starts, so that work has reached every station."""
    return 60.0 + 3.0 * n


# --- shared helpers ------------------------------------------------------------------------------------
def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def quantile(values: list[float], q: float) -> float:
    """The ``q``-quantile (nearest rank) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine_cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs from /proc/stat, or (0, 0) when unavailable."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0, 0.0
    values = [float(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)
    total = sum(values[:8])
    return total - idle, total


@dataclass
class Case:
    """What one run measures."""

    mode: str
    stations: int
    speed: float
    publish_interval: float
    warmup_s: float
    window_s: float
    queue_size: int
    seed: int
    profile: str | None = None  # None, "cprofile" or "pyinstrument"
    pin: bool = False
    what_if: tuple[str, ...] = ()  # benchmark-only patches of the server process (see WHAT_IF)


@dataclass
class CaseResult:
    """The figures of one case."""

    mode: str
    stations: int
    speed: float
    publish_interval: float
    monitored_items: int
    window_s: float
    notifications_per_s: float
    notifications_consumed_per_s: float
    publish_responses_per_s: float
    notifications_queued_per_s: float
    writes_per_s: float
    syncs_per_s: float
    sync_ms_p50: float
    sync_ms_p99: float
    sim_speed_achieved: float
    lag_p50_s: float
    lag_p99_s: float
    lag_max_s: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    server_cpu_pct: float
    notifications_per_server_cpu_s: float
    client_cpu_pct: float
    other_cpu_pct: float
    keeps_pace: bool
    setup_s: float
    events_per_s: float
    extra: dict[str, Any] = field(default_factory=dict)


# --- server process ------------------------------------------------------------------------------------
def server_main(case: Case, yaml_text: str, port: int, out: Any, start: MpEvent, stop: MpEvent, done: MpEvent) -> None:
    """Child process: the live line and its OPC UA server."""
    logging.basicConfig(level=logging.ERROR)
    if case.pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    try:
        asyncio.run(_serve(case, yaml_text, port, out, start, stop, done))
    except Exception as exc:  # report, do not hang the orchestrator
        out.put(("error", f"server: {type(exc).__name__}: {exc}"))
        raise


async def _serve(case: Case, yaml_text: str, port: int, out: Any, start: MpEvent, stop: MpEvent, done: MpEvent) -> None:
    from asyncua.server.internal_subscription import InternalSubscription

    from opcua_server.security import SecurityConfig
    from opcua_server.server import LineServer
    from simline.live.driver import LiveDriver
    from simline.scenario import parse_scenario
    from simline.sim import Line

    _apply_what_if(case.what_if)
    t0 = time.perf_counter()
    scenario = parse_scenario(yaml_text)
    line = Line(scenario, seed=case.seed, live=True)
    line.env.run(until=prefill_minutes(case.stations))  # untimed pre-fill: work reaches every station
    t1 = time.perf_counter()
    driver = LiveDriver(line, speed=case.speed)
    url = f"opc.tcp://127.0.0.1:{port}/simline"
    server = LineServer(driver, url, SecurityConfig(profile="open"), publish_interval=case.publish_interval)
    if "nohistory" in case.what_if:

        async def no_history(*_args: Any, **_kwargs: Any) -> None:
            return None

        server.server.historize_node_data_change = no_history  # type: ignore[method-assign]
    if "yield" in case.what_if:
        original_write = server._write
        calls = [0]

        async def yielding_write(path: str, value: Any, kind: Any) -> None:
            await original_write(path, value, kind)
            calls[0] += 1
            if calls[0] % 100 == 0:
                await asyncio.sleep(0)

        server._write = yielding_write  # type: ignore[method-assign]
    await server.start()
    t2 = time.perf_counter()

    # Count the notifications the server queues for client subscriptions (not its internal history one).
    queued = [0]
    original_enqueue = InternalSubscription.enqueue_datachange_event

    async def counting_enqueue(self: InternalSubscription, mid: int, eventdata: Any, maxsize: int) -> None:
        if self.pub_request_callback is not None:
            queued[0] += 1
        await original_enqueue(self, mid, eventdata, maxsize)

    InternalSubscription.enqueue_datachange_event = counting_enqueue  # type: ignore[method-assign]

    # Time every sync (the instance attribute shadows the method that _sync_loop calls).
    sync_times: list[float] = []
    original_sync = server.sync

    async def timed_sync(kpis: bool = False) -> None:
        s = time.perf_counter()
        await original_sync(kpis=kpis)
        sync_times.append(time.perf_counter() - s)

    server.sync = timed_sync  # type: ignore[method-assign]

    # In the profiled run only: count the calls of LineServer._write and the values written, per variable.
    by_var: dict[str, list[int]] = {}
    if case.profile:
        inner_write = server._write

        async def counting_write(path: str, value: Any, kind: Any) -> None:
            before = server.writes
            await inner_write(path, value, kind)
            slot = by_var.setdefault(path.rsplit(".", 1)[-1] if path.startswith("Machines.") else path, [0, 0])
            slot[0] += 1
            slot[1] += server.writes - before

        server._write = counting_write  # type: ignore[method-assign]

    loop_lags: list[float] = []

    async def probe() -> None:
        while True:
            s = time.perf_counter()
            await asyncio.sleep(0.01)
            loop_lags.append(time.perf_counter() - s - 0.01)

    events = [0]
    line.add_observer(lambda _event: events.__setitem__(0, events[0] + 1))

    run = asyncio.create_task(driver.run(), name="driver")
    prober = asyncio.create_task(probe(), name="probe")
    out.put(("ready", {"url": url, "prefill_s": t1 - t0, "setup_s": t2 - t1}))

    while not start.is_set():
        await asyncio.sleep(POLL_S)
    profiler: Any = None
    if case.profile == "cprofile":
        import cProfile

        profiler = cProfile.Profile()
    elif case.profile == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001, async_mode="disabled")
    w0, c0, now0, q0, writes0, ev0 = time.monotonic(), cpu_seconds(), line.env.now, queued[0], server.writes, events[0]
    driver.lag.samples = deque(maxlen=10_000_000)
    sync_times.clear()
    loop_lags.clear()
    by_var.clear()
    if profiler is not None:
        profiler.enable() if case.profile == "cprofile" else profiler.start()
    while not stop.is_set():
        await asyncio.sleep(POLL_S)
    if profiler is not None:
        profiler.disable() if case.profile == "cprofile" else profiler.stop()
    w1, c1, now1 = time.monotonic(), cpu_seconds(), line.env.now
    wall = w1 - w0
    lags = list(driver.lag.samples)
    report = {
        "wall_s": wall,
        "cpu_pct": 100.0 * (c1 - c0) / wall,
        "queued_per_s": (queued[0] - q0) / wall,
        "writes_per_s": (server.writes - writes0) / wall,
        "events_per_s": (events[0] - ev0) / wall,
        "syncs_per_s": len(sync_times) / wall,
        "sync_ms_p50": 1000 * quantile(sync_times, 0.5),
        "sync_ms_p99": 1000 * quantile(sync_times, 0.99),
        "sim_speed_achieved": (now1 - now0) * 60.0 / wall,
        "lag_p50_s": quantile(lags, 0.5),
        "lag_p99_s": quantile(lags, 0.99),
        "lag_max_s": max(lags, default=0.0),
        "loop_lag_p99_ms": 1000 * quantile(loop_lags, 0.99),
        "loop_lag_max_ms": 1000 * max(loop_lags, default=0.0),
        "prefill_s": t1 - t0,
        "setup_s": t2 - t1,
        "profile": _profile_text(case.profile, profiler),
        "writes_by_variable": {k: {"calls_per_s": v[0] / wall, "writes_per_s": v[1] / wall} for k, v in by_var.items()},
    }
    out.put(("result", report))
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)  # a disconnecting client's last publish is no finding
    while not done.is_set():
        await asyncio.sleep(POLL_S)
    driver.stop()
    prober.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await prober
    await run
    await server.stop()


def _apply_what_if(patches: tuple[str, ...]) -> None:
    """Benchmark-only patches that show what a change would gain; nothing in the package is edited."""
    unknown = set(patches) - set(WHAT_IF)
    if unknown:
        raise ValueError(f"unknown --what-if patches: {sorted(unknown)}")
    if "nocopy" in patches:
        from asyncua.server.monitored_item_service import MonitoredItemValues

        def keep_reference(self: MonitoredItemValues, cur_val: Any) -> None:
            # LineServer writes a fresh DataValue per change and never mutates it, so sharing it is safe here.
            self.old_dvalue = self.current_dvalue
            self.current_dvalue = cur_val

        MonitoredItemValues.set_current_datavalue = keep_reference  # type: ignore[method-assign]


def _profile_text(kind: str | None, profiler: Any, top: int = 45) -> str | None:
    if profiler is None:
        return None
    if kind == "pyinstrument":
        return str(profiler.output_text(unicode=False, color=False, show_all=False))
    import pstats

    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    buf.write(f"total time under cProfile: {stats.total_tt:.3f} s\n")  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


# --- client process ------------------------------------------------------------------------------------
def client_main(case: Case, yaml_text: str, url: str, out: Any, start: MpEvent, stop: MpEvent, done: MpEvent) -> None:
    """Child process: a real asyncua client that subscribes and counts notifications."""
    logging.basicConfig(level=logging.ERROR)
    if case.pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    try:
        asyncio.run(_subscribe(case, yaml_text, url, out, start, stop, done))
    except Exception as exc:
        out.put(("error", f"client: {type(exc).__name__}: {exc}"))
        raise


def monitored_paths(yaml_text: str) -> list[str]:
    """Browse paths the client subscribes to: Monitoring/* and MachineryItemState of every machine, Line KPIs."""
    from opcua_server.address_space import LINE_SPEC, MACHINE_SPEC, machine_names
    from simline.scenario import parse_scenario

    scenario = parse_scenario(yaml_text)
    paths = []
    for name, _index, _sid in machine_names(scenario):
        paths += [f"Machines.{name}.Monitoring.{var}" for var in MACHINE_SPEC["Monitoring"]]
        paths.append(f"Machines.{name}.MachineryBuildingBlocks.MachineryItemState.CurrentState")
    paths += [f"Line.KPIs.{var}" for var in LINE_SPEC["KPIs"]]
    return paths


async def _subscribe(
    case: Case, yaml_text: str, url: str, out: Any, start: MpEvent, stop: MpEvent, done: MpEvent
) -> None:
    from asyncua import Client, ua
    from asyncua.common.subscription import OverflowPolicy
    from asyncua.observer import Observer

    from opcua_server.address_space import NAMESPACE

    class Counter(Observer):
        def __init__(self) -> None:
            self.notifications = 0
            self.responses = 0

        def observe_request(self, request: Any) -> contextlib.AbstractContextManager[None]:
            return contextlib.nullcontext()

        def on_notification(self, subscription_id: int | None, event_count: int) -> None:
            self.notifications += event_count
            self.responses += 1

    def quiet_shutdown(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # asyncua's publish loop may fail with ConnectionError while the client disconnects: not a finding
        if done.is_set() and isinstance(context.get("exception"), ConnectionError):
            return
        loop.default_exception_handler(context)

    asyncio.get_running_loop().set_exception_handler(quiet_shutdown)
    counter = Counter()
    consumed = [0]
    paths = monitored_paths(yaml_text)
    async with Client(url, timeout=30) as client:
        client.uaclient.observer = counter
        idx = await client.get_namespace_index(NAMESPACE)
        nodes = [client.get_node(ua.NodeId(p, idx)) for p in paths]
        sub = await client.create_subscription(
            CLIENT_PUBLISHING_MS, None, queue_maxsize=100_000, overflow=OverflowPolicy.DROP_OLDEST
        )
        handles = await sub.subscribe_data_change(nodes, queuesize=case.queue_size)
        bad = [h for h in handles if isinstance(h, ua.StatusCode)]
        if bad:
            raise RuntimeError(f"{len(bad)} of {len(nodes)} monitored items failed: {bad[0]}")

        async def consume() -> None:
            async for _event in sub:
                consumed[0] += 1

        consumer = asyncio.create_task(consume())
        out.put(("subscribed", {"items": len(nodes)}))
        while not start.is_set():
            await asyncio.sleep(POLL_S)
        w0, c0, n0, r0, k0 = time.monotonic(), cpu_seconds(), counter.notifications, counter.responses, consumed[0]
        while not stop.is_set():
            await asyncio.sleep(POLL_S)
        wall = time.monotonic() - w0
        report = {
            "wall_s": wall,
            "items": len(nodes),
            "notifications_per_s": (counter.notifications - n0) / wall,
            "consumed_per_s": (consumed[0] - k0) / wall,
            "responses_per_s": (counter.responses - r0) / wall,
            "cpu_pct": 100.0 * (cpu_seconds() - c0) / wall,
        }
        out.put(("result", report))
        while not done.is_set():
            await asyncio.sleep(POLL_S)
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        with contextlib.suppress(Exception):
            await sub.delete()


# --- orchestration -------------------------------------------------------------------------------------
def _expect(q: Any, kind: str, proc: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg_kind, payload = q.get(timeout=0.5)
        except Exception:  # queue.Empty
            if not proc.is_alive():
                raise RuntimeError(f"{proc.name} exited (code {proc.exitcode}) before sending {kind!r}") from None
            continue
        if msg_kind == "error":
            raise RuntimeError(payload)
        if msg_kind == kind:
            return dict(payload)
    raise TimeoutError(f"{proc.name}: no {kind!r} within {timeout:.0f} s")


def run_case(case: Case, verbose: bool = False) -> CaseResult:
    """Start the server and the client processes, measure one window, stop both."""
    ctx = mp.get_context("spawn")
    yaml_text = tandem_yaml(case.stations, seed=case.seed)
    port = free_port()
    start, stop = ctx.Event(), ctx.Event()
    client_done, server_done = ctx.Event(), ctx.Event()
    sq, cq = ctx.Queue(), ctx.Queue()
    server = ctx.Process(
        target=server_main, args=(case, yaml_text, port, sq, start, stop, server_done), name="server", daemon=True
    )
    t_start = time.perf_counter()
    server.start()
    client = None
    try:
        ready = _expect(sq, "ready", server, timeout=300)
        if verbose:
            print(
                f"    server ready: pre-fill {ready['prefill_s']:.1f} s, setup {ready['setup_s']:.1f} s",
                file=sys.stderr,
            )
        client = ctx.Process(
            target=client_main,
            args=(case, yaml_text, ready["url"], cq, start, stop, client_done),
            name="client",
            daemon=True,
        )
        client.start()
        subscribed = _expect(cq, "subscribed", client, timeout=300)
        time.sleep(case.warmup_s)
        b0, t0 = machine_cpu_busy()
        own0 = cpu_seconds()
        start.set()
        time.sleep(case.window_s)
        stop.set()
        b1, t1 = machine_cpu_busy()
        own1 = cpu_seconds()
        srv = _expect(sq, "result", server, timeout=120)
        cli = _expect(cq, "result", client, timeout=120)
    finally:
        # the client disconnects first, then the server stops
        for proc, done in ((client, client_done), (server, server_done)):
            done.set()
            if proc is None:
                continue
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
    ncpu = os.cpu_count() or 1
    machine_pct = 100.0 * ncpu * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0  # 100 % = one core
    own_pct = 100.0 * (own1 - own0) / case.window_s
    other = max(0.0, machine_pct - srv["cpu_pct"] - cli["cpu_pct"] - own_pct)
    result = CaseResult(
        mode=case.mode,
        stations=case.stations,
        speed=case.speed,
        publish_interval=case.publish_interval,
        monitored_items=subscribed["items"],
        window_s=srv["wall_s"],
        notifications_per_s=cli["notifications_per_s"],
        notifications_consumed_per_s=cli["consumed_per_s"],
        publish_responses_per_s=cli["responses_per_s"],
        notifications_queued_per_s=srv["queued_per_s"],
        writes_per_s=srv["writes_per_s"],
        syncs_per_s=srv["syncs_per_s"],
        sync_ms_p50=srv["sync_ms_p50"],
        sync_ms_p99=srv["sync_ms_p99"],
        sim_speed_achieved=srv["sim_speed_achieved"],
        lag_p50_s=srv["lag_p50_s"],
        lag_p99_s=srv["lag_p99_s"],
        lag_max_s=srv["lag_max_s"],
        loop_lag_p99_ms=srv["loop_lag_p99_ms"],
        loop_lag_max_ms=srv["loop_lag_max_ms"],
        server_cpu_pct=srv["cpu_pct"],
        notifications_per_server_cpu_s=cli["notifications_per_s"] / max(srv["cpu_pct"] / 100.0, 1e-9),
        client_cpu_pct=cli["cpu_pct"],
        other_cpu_pct=other,
        keeps_pace=srv["lag_p99_s"] < KEEPS_PACE_LAG_S,
        setup_s=srv["setup_s"],
        events_per_s=srv["events_per_s"],
        extra={
            "prefill_s": srv["prefill_s"],
            "case_s": time.perf_counter() - t_start,
            "profile": srv["profile"],
            "writes_by_variable": srv["writes_by_variable"],
        },
    )
    return result


def code_version() -> dict[str, Any]:
    """The commit measured, and whether simline/ or opcua_server/ had uncommitted changes."""
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "simline", "opcua_server"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "modified": None}
    return {"commit": commit, "modified": bool(dirty)}


def environment() -> dict[str, Any]:
    """What the figures were measured on."""
    import asyncua

    return {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "asyncua": getattr(asyncua, "__version__", "?"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        **code_version(),
    }


def _sizes(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def print_table(results: list[CaseResult]) -> None:
    w = max([8, *(len(r.mode) for r in results)])
    header = (
        f"{'mode':<{w}} {'stations':>8} {'items':>6} {'speed':>6} {'pub s':>5} {'notif/s':>8} {'queued/s':>8} "
        f"{'writes/s':>8} {'syncs/s':>7} {'sync ms p50/p99':>15} {'sim x':>6} {'lag p50/p99 s':>13} "
        f"{'loop p99 ms':>11} {'srv %':>5} {'notif/cpu-s':>11} {'cli %':>5} {'other %':>7} {'pace':>4}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.mode:<{w}} {r.stations:>8} {r.monitored_items:>6} {r.speed:>6g} {r.publish_interval:>5g} "
            f"{r.notifications_per_s:>8,.0f} {r.notifications_queued_per_s:>8,.0f} {r.writes_per_s:>8,.0f} "
            f"{r.syncs_per_s:>7.1f} {r.sync_ms_p50:>7.1f}/{r.sync_ms_p99:<7.1f} {r.sim_speed_achieved:>6.0f} "
            f"{r.lag_p50_s:>6.2f}/{r.lag_p99_s:<6.2f} {r.loop_lag_p99_ms:>11.1f} {r.server_cpu_pct:>5.0f} "
            f"{r.notifications_per_server_cpu_s:>11,.0f} "
            f"{r.client_cpu_pct:>5.0f} {r.other_cpu_pct:>7.0f} {'yes' if r.keeps_pace else 'NO':>4}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Notifications/s a live simline line delivers to a real OPC UA client (server and client in "
        "separate processes).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--stations", default="10,50,200", help="line lengths of the normal mode")
    parser.add_argument("--speed", type=float, default=60.0, help="normal mode: simulated seconds per wall second")
    parser.add_argument("--publish-interval", type=float, default=0.2, help="normal mode: LineServer sync period (s)")
    parser.add_argument(
        "--flat-stations", default="200", help="line lengths of the flat-out mode ('' to skip the mode)"
    )
    parser.add_argument("--flat-speed", type=float, default=3600.0, help="flat-out mode: simulation speed")
    parser.add_argument("--flat-publish-interval", type=float, default=0.05, help="flat-out mode: sync period (s)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after the client subscribed")
    parser.add_argument("--window", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--queue-size", type=int, default=10, help="queue size of every monitored item")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--profile",
        choices=("cprofile", "pyinstrument"),
        help="add a run of the largest flat-out (else normal) line with the server profiled during the window",
    )
    parser.add_argument(
        "--what-if",
        action="append",
        default=[],
        metavar="PATCHES",
        help="comma-separated benchmark-only patches of the server ("
        + "; ".join(f"{k}: {v}" for k, v in WHAT_IF.items())
        + "): adds a patched run of every flat-out (else normal) line; repeat for several sets",
    )
    parser.add_argument("--pin", action="store_true", help="pin the server to CPU 0 and the client to CPU 1")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print progress to stderr")
    args = parser.parse_args(argv)
    normal = _sizes(args.stations)
    flat = _sizes(args.flat_stations)
    if not normal and not flat:
        parser.error("nothing to measure: --stations and --flat-stations are both empty")
    if min(normal + flat) < 1 or args.window <= 0 or args.warmup < 0 or args.queue_size < 0:
        parser.error("stations must be >= 1, --window > 0, --warmup and --queue-size >= 0")
    what_ifs = [tuple(p.strip() for p in text.split(",") if p.strip()) for text in args.what_if]
    for what_if in what_ifs:
        if not what_if or set(what_if) - set(WHAT_IF):
            parser.error(f"--what-if {','.join(what_if)!r}: patches must be among {sorted(WHAT_IF)}")

    env = environment()
    common = {"warmup_s": args.warmup, "window_s": args.window, "queue_size": args.queue_size, "seed": args.seed}
    cases = [Case("normal", n, args.speed, args.publish_interval, pin=args.pin, **common) for n in normal]
    cases += [Case("flat-out", n, args.flat_speed, args.flat_publish_interval, pin=args.pin, **common) for n in flat]
    base = [c for c in cases if c.mode == ("flat-out" if flat else "normal")]
    for what_if in what_ifs:
        label = "+".join(what_if)
        cases += [
            Case(f"{c.mode}+{label}", c.stations, c.speed, c.publish_interval, pin=args.pin, what_if=what_if, **common)
            for c in base
        ]
    if args.profile:
        last = next(c for c in reversed(cases) if not c.what_if)
        cases.append(Case("profile", last.stations, last.speed, last.publish_interval, profile=args.profile, **common))
    started = time.perf_counter()
    results: list[CaseResult] = []
    for case in cases:
        if args.verbose:
            print(f"  {case.mode}: {case.stations} stations, speed {case.speed:g}", file=sys.stderr)
        results.append(run_case(case, args.verbose))
    elapsed = time.perf_counter() - started
    measured = [r for r in results if r.mode != "profile"]
    profiled = [r for r in results if r.mode == "profile"]

    print("simline live OPC UA benchmark: a real asyncua client subscribed to a live line (separate processes)")
    print(f"  {env['date']}, Python {env['python']}, asyncua {env['asyncua']}, {env['cpus']} CPUs, {env['platform']}")
    dirty = " + uncommitted changes in simline/ or opcua_server/" if env["modified"] else ""
    print(f"  code: commit {env['commit']}{dirty}")
    load = env["loadavg_1m_at_start"]
    if load is not None and load >= 0.5:
        print(f"  note: the machine was busy when the benchmark started (load average {load:.2f}): figures may be low")
    print(
        f"  tandem lines, exponential processing 0.5-0.8 min, failures every {MTBF_MINUTES:g} operating min, "
        f"buffers of {BUFFER}, {ARRIVALS_PER_HOUR:g} arrivals/h; client publishing {CLIENT_PUBLISHING_MS:g} ms, "
        f"queue size {args.queue_size}; warm-up {args.warmup:g} s, window {args.window:g} s"
    )
    print()
    print_table(measured)
    print()
    print(
        "  notif/s: data changes received by the client; queued/s: queued by the server's subscription; "
        "writes/s: LineServer.writes;\n  sim x: simulated s per wall s achieved; lag: driver.lag; loop: asyncio "
        "loop lag (10 ms probe); srv/cli/other %: CPU of the server, the client and the rest of the machine "
        "(100 = one core);\n  notif/cpu-s: notifications per CPU second of the server (roughly what one free core "
        "would sustain); pace: lag p99 < 1 s"
    )
    paced = [r for r in measured if r.keeps_pace]
    best = max(paced, key=lambda r: r.notifications_per_s, default=None)
    if best is not None:
        verdict = "meets" if best.notifications_per_s >= TARGET_RATE else "BELOW"
        print(
            f"  highest rate with the simulation keeping pace: {best.notifications_per_s:,.0f} notifications/s "
            f"({best.writes_per_s:,.0f} writes/s; {best.mode}, {best.stations} stations): {verdict} the target of "
            f"{TARGET_RATE:,.0f}/s (asyncua's fast write path alone: ~{ASYNCUA_FAST_PATH:,.0f}/s)"
        )
    else:
        print("  the simulation kept pace in no case")
    for r in measured:
        if r.client_cpu_pct > 85:
            print(f"  warning: {r.mode} {r.stations} stations: the client used {r.client_cpu_pct:.0f} % of a core")
        if r.notifications_queued_per_s > 0 and r.notifications_per_s < 0.95 * r.notifications_queued_per_s:
            print(f"  warning: {r.mode} {r.stations} stations: the client received fewer notifications than queued")
    for r in profiled:
        print()
        print(
            f"profile of the server, {r.stations} stations, speed {r.speed:g}, publish interval {r.publish_interval:g}:"
        )
        by_var = r.extra.get("writes_by_variable") or {}
        if by_var:
            print("  LineServer._write per variable (machine variables summed over machines), per second:")
            print(f"  {'variable':<36} {'calls/s':>9} {'writes/s':>9}")
            for name, v in sorted(by_var.items(), key=lambda kv: -kv[1]["writes_per_s"]):
                print(f"  {name:<36} {v['calls_per_s']:>9,.0f} {v['writes_per_s']:>9,.0f}")
            print()
        print(r.extra.get("profile") or "(no profile)")
    print(f"  (benchmark took {elapsed:.0f} s)")

    if args.json is not None:
        doc = {
            "benchmark": "bench_opcua",
            "environment": env,
            "parameters": {**vars(args), "json": str(args.json)},
            "results": [asdict(r) for r in results],
            "target_rate": TARGET_RATE,
            "elapsed_s": elapsed,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"  figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
