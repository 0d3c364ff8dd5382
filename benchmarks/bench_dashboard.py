"""Live dashboard responsiveness: does the big-screen page keep refreshing every second with a long line?

A tandem line of ``--stations`` stations (the generator of ``bench_opcua.py``: short exponential processing times,
failures, buffers of 5, 60 arrivals/h) runs as ``simline live`` runs it: ``LiveApp`` (OPC UA and MQTT off) started
by ``start_adapters_then_print``, the CLI's call, which ends with ``gc.freeze()``, on an asyncio loop in a thread of
this process. Then the line is pre-filled (untimed), the feed taking its snapshots as if it had been running, so
that every station has work and the KPI trends and telemetry are as full as after a few minutes. ``--twin`` adds
an economics block and a ``standby`` investment to the scenario and runs it as the twin (second line, money panel).

Headless Chromium (selenium, ``/usr/bin/chromium`` and ``/usr/bin/chromedriver``) opens ``/`` (``--viewers``
browsers); ``--kiosk`` adds one on ``/kiosk`` that places an order and follows it. After ``--warmup`` s, one window
of ``--seconds``:

* **update interval**: a ``MutationObserver`` on ``#clock`` notes every change; an interval longer than 1.5 refresh
  periods counts as missed refreshes. "Meets" = p50 <= 1.1 s and p95 <= 1.5 s (the page refreshes every 1000 ms).
* **callbacks**: a ``fetch`` wrapper (installed before the page loads) times each ``/_dash-update-component``
  request and notes its size; Flask hooks on the app ``DashboardServer`` builds time it on the server (wall, CPU of
  the waitress thread). **Draw time**: from the main refresh's response (``snap+1``) to the clock's change.
* **server**: ``Feed.build_seconds``, ``driver.lag``, the speed reached, the asyncio loop lag (a 10 ms sleep's
  overshoot), Python's GC pauses.
* **CPU** (100 % = one core): each browser's processes (psutil, below chromedriver), this Python process (live loop,
  waitress threads), the rest of the machine; Chrome's main thread (CDP ``Performance``), long tasks, elements
  inserted/s, whether elements noted at the start are still there at the end, JS heap after a forced GC.

The browser shares the machine with the server: another job on it shows in the figures (see "other processes").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from bench_opcua import free_port, prefill_minutes, quantile, tandem_yaml

import dashboards.server as dashboard_server
from simline.live.app import LiveApp, LiveOptions
from simline.scenario import parse_scenario

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_ARGS = (
    *("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
    *("--enable-precise-memory-info", "--window-size=1600,1200"),
)
DASH_PATH = "_dash-update-component"
REFRESH = "snap+1"  # the main refresh: the digest into the "snap" store (and its seq into "snap-seq")
REFRESH_S, P50_OK_S, P95_OK_S = 1.0, 1.1, 1.5
TWIN_YAML = """economics: {energy_price_per_kwh: 0.27, labour_cost_per_hour: 30}
investments:
  - {name: standby, capex: 2500, useful_life_years: 5,
     changes: [{lever: energy_management, standby_after_minutes: 5, standby_power_share: 0.2}]}
"""
MARKS = {"station card": "#l0-line .station", "KPI number": "#tiles .tile-number", "order row": "#orders-body tr"}

INIT_JS = r"""
(() => {
  const b = window.__bench = {fetches: [], longtasks: []};
  const original = window.fetch.bind(window);
  window.fetch = async function (input, init) {
    const url = typeof input === 'string' ? input : ((input && input.url) || '');
    if (!url.includes('_dash-update-component')) return original(input, init);
    let output = '?';
    try { output = JSON.parse(init.body).output; } catch (e) {}
    const t0 = performance.now();
    const response = await original(input, init);
    b.fetches.push([output, t0, performance.now(), response.status,
                    Number(response.headers.get('content-length') || 0)]);
    return response;
  };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) b.longtasks.push([e.startTime, e.duration]);
  }).observe({type: 'longtask', buffered: true});
})();
"""
START_JS = r"""
const b = window.__bench, clock = document.getElementById('clock');
b.fetches = []; b.longtasks = []; b.clock = []; b.added = 0; b.marks = {};
if (clock) new MutationObserver(() => b.clock.push([performance.now(), clock.textContent]))
  .observe(clock, {childList: true, subtree: true, characterData: true});
b.churn = new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes)
    if (n.nodeType === 1) b.added += 1 + n.getElementsByTagName('*').length;
});
b.churn.observe(document.body, {childList: true, subtree: true});
for (const [name, selector] of Object.entries(arguments[0])) b.marks[name] = document.querySelector(selector);
b.t0 = performance.now();
return {heap: performance.memory.usedJSHeapSize, nodes: document.getElementsByTagName('*').length};
"""
END_JS = r"""
const b = window.__bench;
b.churn.disconnect();
const kept = {};
for (const [name, node] of Object.entries(b.marks)) if (node) kept[name] = document.contains(node);
return {t0: b.t0, t1: performance.now(), clock: b.clock, fetches: b.fetches, added: b.added, kept: kept,
        longtasks: b.longtasks.filter((x) => x[0] >= b.t0), nodes: document.getElementsByTagName('*').length};
"""


def stats(values: list[float]) -> dict[str, float]:
    """n, mean, p50, p95, p99, max of ``values`` (zeros when empty)."""
    if not values:
        return {"n": 0} | dict.fromkeys(("mean", "p50", "p95", "p99", "max"), 0.0)
    q = {f"p{int(100 * p)}": quantile(values, p) for p in (0.5, 0.95, 0.99)}
    return {"n": len(values), "mean": statistics.fmean(values), **q, "max": max(values)}


def callback_name(output: str) -> str:
    """A callback's name from its output string (``..snap.data...snap-seq.data..`` → ``snap+1``)."""
    ids = [part.rsplit(".", 1)[0] for part in output.strip(".").split("...") if part]
    return (ids[0] if len(ids) == 1 else f"{ids[0]}+{len(ids) - 1}") if ids else output or "?"


def thread_cpu(loop_tid: int) -> dict[str, float]:
    """CPU seconds of the machine (all cores), of this process, of its live loop thread and of its waitress threads."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    t = psutil.cpu_times()
    me = psutil.Process()
    out = {"machine": sum(t) - t.idle - t.iowait, "python": sum(me.cpu_times()[:2]), "live loop": 0.0, "waitress": 0.0}
    for th in me.threads():
        name = names.get(th.id, "")
        kind = "live loop" if th.id == loop_tid else "waitress" if name.startswith(("waitress", "dashboard")) else None
        if kind:
            out[kind] += th.user_time + th.system_time
    return out


def live_thread(app: LiveApp, prefill: float, state: dict[str, Any]) -> None:
    """Run ``app`` on its own asyncio loop, started as ``simline live`` starts it, then pre-filled (untimed)."""

    async def main() -> None:
        await app.start_adapters_then_print(lambda urls: None)  # ends with gc.freeze(), as in the CLI
        try:
            feed = next(a.feed for a in app.adapters if hasattr(a, "feed"))
            step, now = feed.period * app.driver.speed / 60, app.line.env.now
            while now < prefill:  # the feed's snapshots as if it had been running: full trends and telemetry
                now = min(prefill, now + step)
                for line in app.driver.lines:
                    line.env.run(until=now)
                feed.latest = feed.build()
        except BaseException:
            await app.stop()
            raise
        state.update(loop=asyncio.get_running_loop(), tid=threading.get_native_id())
        state["ready"].set()
        await app.run()

    try:
        asyncio.run(main())
    except BaseException as exc:
        state["error"] = exc
        state["ready"].set()


async def probe(lags: list[float]) -> None:
    """The asyncio loop's lag: how late a 10 ms sleep wakes up."""
    while True:
        s = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - s - 0.01)


def time_callbacks(records: list[tuple[str, float, float, int]]) -> Callable[[], None]:
    """Add Flask hooks timing every callback request (callback, wall s, thread CPU s, bytes) to the app that
    ``DashboardServer.start`` builds; returns the undo."""
    from flask import g, request

    original = dashboard_server.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)

        @app.server.before_request
        def _before() -> None:
            if request.path.endswith(DASH_PATH):
                g.bench = (time.perf_counter(), time.thread_time())

        @app.server.after_request
        def _after(response: Any) -> Any:
            if (started := g.pop("bench", None)) is not None:
                wall, cpu = time.perf_counter() - started[0], time.thread_time() - started[1]
                name = callback_name(str((request.get_json(silent=True) or {}).get("output", "?")))
                records.append((name, wall, cpu, int(response.calculate_content_length() or 0)))
            return response

        return app

    dashboard_server.create_app = create_app  # type: ignore[assignment]
    return lambda: setattr(dashboard_server, "create_app", original)


class Browser:
    """One headless Chromium on one page."""

    def __init__(self, role: str, path: str) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.role, self.path = role, path
        self.profile = tempfile.mkdtemp(prefix="bench-dashboard-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for arg in (*CHROMIUM_ARGS, f"--user-data-dir={self.profile}"):
            options.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": INIT_JS})
        self.driver.execute_cdp_cmd("Performance.enable", {})

    def wait_for(self, css: str, timeout: float = 60) -> str:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        def text(d: Any) -> str | None:
            found = d.find_elements(By.CSS_SELECTOR, css)
            return found[0].text.strip() if found and found[0].text.strip() else None

        return str(WebDriverWait(self.driver, timeout).until(text))

    def open(self, base: str) -> None:
        self.driver.get(base + self.path.lstrip("/"))
        if self.path == "/kiosk":  # place an order with the default choices and follow it
            self.wait_for("#kiosk-place")
            self.driver.find_element("id", "kiosk-place").click()
            self.wait_for("#kiosk-order-id", 30)
            self.wait_for("#order-card", 30)
        else:
            self.wait_for("#clock")
            self.wait_for("#l0-line .station-meta")

    def cpu(self) -> dict[int, float]:
        """pid → CPU seconds of Chromium's processes (all below chromedriver)."""
        out = {}
        with contextlib.suppress(psutil.NoSuchProcess):
            for p in psutil.Process(self.driver.service.process.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    out[p.pid] = sum(p.cpu_times()[:2])
        return out

    def busy(self) -> dict[str, float]:
        got = self.driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
        return {m["name"]: m["value"] for m in got if m["name"] in ("TaskDuration", "ScriptDuration", "Timestamp")}

    def heap_after_gc(self) -> float:
        self.driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
        return float(self.driver.execute_script("return performance.memory.usedJSHeapSize")) / 2**20

    def begin(self) -> None:
        self.heap0 = self.heap_after_gc()
        self.busy0 = self.busy()
        self.start = self.driver.execute_script(START_JS, MARKS if self.path == "/" else {})
        self.cpu0 = self.cpu()

    def finish(self) -> None:
        self.cpu1 = self.cpu()
        self.end = self.driver.execute_script(END_JS)
        self.busy1 = self.busy()
        self.heap1 = self.heap_after_gc()

    def figures(self) -> dict[str, Any]:
        end, window = self.end, (self.end["t1"] - self.end["t0"]) / 1000
        times = [t for t, _ in end["clock"]]
        intervals = [(b - a) / 1000 for a, b in itertools.pairwise(times)]
        callbacks: dict[str, Any] = {}
        for output, t0, t1, status, size in end["fetches"]:
            c = callbacks.setdefault(callback_name(output), {"ms": [], "bytes": [], "no_update": 0})
            c["ms"].append(t1 - t0)
            c["bytes"].append(size)
            c["no_update"] += status == 204
        callbacks = {
            name: {"per_s": len(c["ms"]) / window, "ms": stats(c["ms"]), "kb": statistics.fmean(c["bytes"]) / 1024}
            | {"no_update": c["no_update"]}
            for name, c in sorted(callbacks.items(), key=lambda kv: -len(kv[1]["ms"]))
        }
        fetches = end["fetches"]  # the main refreshes that brought data (204: the browser had that snapshot)
        refreshed = sorted(t1 for out, _, t1, status, _ in fetches if callback_name(out) == REFRESH and status == 200)
        draw = [t - max(r for r in refreshed if r <= t) for t in times if refreshed and refreshed[0] <= t]
        cpu = sum(v - self.cpu0.get(pid, 0.0) for pid, v in self.cpu1.items())  # new processes count from 0
        dt = (self.busy1["Timestamp"] - self.busy0["Timestamp"]) or window
        lt = [d for _, d in end["longtasks"]]
        return {
            "role": self.role,
            "path": self.path,
            "window_s": window,
            "update_interval_s": stats(intervals),
            "missed_refreshes": sum(round(iv / REFRESH_S) - 1 for iv in intervals if iv > 1.5 * REFRESH_S),
            "clock_changes": len(times),
            "refreshes_received": len(refreshed),
            "draw_ms": stats(draw),
            "callbacks": callbacks,
            "cpu_pct": 100 * cpu / window,
            "main_thread_pct": 100 * (self.busy1["TaskDuration"] - self.busy0["TaskDuration"]) / dt,
            "script_pct": 100 * (self.busy1["ScriptDuration"] - self.busy0["ScriptDuration"]) / dt,
            "long_tasks": {"n": len(lt), "max_ms": max(lt, default=0.0)},
            "inserted_per_s": end["added"] / window,
            "kept": end["kept"],
            "heap_mb_after_gc": [self.heap0, self.heap1],
            "elements": [self.start["nodes"], end["nodes"]],
        }

    def quit(self) -> None:
        with contextlib.suppress(Exception):
            self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the live app and the browsers, measure one window, stop everything; return the figures."""
    yaml_text = tandem_yaml(args.stations, seed=args.seed).replace("OPC UA benchmark line", "Dashboard benchmark")
    scenario = parse_scenario(yaml_text + (TWIN_YAML if args.twin else ""))
    port = free_port()
    twin = "standby" if args.twin else None
    options = LiveOptions(speed=args.speed, seed=args.seed, opcua=False, mqtt=False, dashboard_port=port, twin=twin)
    options.duration_seconds = args.warmup + args.seconds + 900  # a safety net: the benchmark stops it long before
    app = LiveApp(scenario, options)
    records: list[tuple[str, float, float, int]] = []
    undo = time_callbacks(records)
    state: dict[str, Any] = {"ready": threading.Event()}
    thread = threading.Thread(target=live_thread, args=(app, prefill_minutes(args.stations), state), daemon=True)
    browsers: list[Browser] = []
    t_start = time.perf_counter()
    try:
        thread.start()
        if not state["ready"].wait(300) or "error" in state:
            raise RuntimeError(f"the live app did not start: {state.get('error')!r}")
        feed = next(a.feed for a in app.adapters if hasattr(a, "feed"))
        for path in ["/"] * args.viewers + ["/kiosk"] * args.kiosk:
            browsers.append(Browser(f"viewer {len(browsers) + 1}" if path == "/" else "kiosk", path))
            browsers[-1].open(f"http://127.0.0.1:{port}/")
        time.sleep(args.warmup)

        for b in browsers:
            b.begin()
        app.driver.lag.samples = deque(maxlen=10_000_000)
        feed.build_seconds = deque(maxlen=10_000_000)
        seq0, sim0 = feed.latest.seq, app.line.env.now
        records.clear()
        loop_lags: list[float] = []
        probing = asyncio.run_coroutine_threadsafe(probe(loop_lags), state["loop"])
        pauses: list[tuple[int, float]] = []  # Python GC: generation, seconds
        gc_started = [0.0]

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                gc_started[0] = time.perf_counter()
            else:
                pauses.append((info["generation"], time.perf_counter() - gc_started[0]))

        gc.callbacks.append(on_gc)
        threads0, w0 = thread_cpu(state["tid"]), time.monotonic()
        time.sleep(args.seconds)
        threads1, w1 = thread_cpu(state["tid"]), time.monotonic()
        gc.callbacks.remove(on_gc)
        probing.cancel()
        sim1, seq1, lag_now = app.line.env.now, feed.latest.seq, app.driver.lag.current
        lags, builds, server = list(app.driver.lag.samples), list(feed.build_seconds), list(records)
        for b in browsers:
            b.finish()
        version = browsers[0].driver.capabilities.get("browserVersion")
    finally:
        for b in browsers:
            b.quit()
        if "loop" in state:
            with contextlib.suppress(RuntimeError):  # the loop is closed already
                state["loop"].call_soon_threadsafe(app.driver.stop)
        thread.join(60)
        undo()
    if thread.is_alive():
        print("  warning: the live app did not stop within 60 s", file=sys.stderr)
    if "error" in state:
        raise RuntimeError(f"the live app failed: {state['error']!r}") from state["error"]

    wall = w1 - w0
    per_browser = [b.figures() for b in browsers]
    cpu = {k: 100 * (threads1[k] - threads0[k]) / wall for k in threads0}
    cpu["browsers"] = sum(b["cpu_pct"] for b in per_browser)
    cpu["other"] = max(0.0, cpu.pop("machine") - cpu["python"] - cpu["browsers"])
    by_callback: dict[str, list[tuple[float, float, int]]] = {}
    for name, *row in server:
        by_callback.setdefault(name, []).append(tuple(row))  # type: ignore[arg-type]
    return {
        "stations": args.stations,
        "speed": args.speed,
        "twin": twin,
        "window_s": wall,
        "chromium": version,
        "browsers": per_browser,
        "server_callbacks": {
            name: {
                "per_s": len(rows) / wall,
                "wall_ms": stats([1000 * w for w, _, _ in rows]),
                "cpu_ms": stats([1000 * c for _, c, _ in rows]),
                "kb": statistics.fmean(s for *_, s in rows) / 1024,
            }
            for name, rows in sorted(by_callback.items(), key=lambda kv: -len(kv[1]))
        },
        "snapshot_build_ms": stats([1000 * s for s in builds]),
        "snapshots_per_s": (seq1 - seq0) / wall,
        "lag_s": {**stats(lags), "current": lag_now},
        "sim_speed": (sim1 - sim0) * 60 / wall,
        "loop_lag_ms": stats([1000 * x for x in loop_lags]),
        "gc_pauses_ms": {f"gen{g}": stats([1000 * d for gen, d in pauses if gen == g]) for g in (0, 1, 2)},
        "cpu_pct": cpu,
        "case_s": time.perf_counter() - t_start,
    }


def environment() -> dict[str, Any]:
    import dash

    def git(*cmd: str) -> str:
        repo = Path(__file__).resolve().parent.parent
        return subprocess.run(["git", "-C", str(repo), *cmd], capture_output=True, text=True).stdout.strip()

    return {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "dash": dash.__version__,
        "cpus": os.cpu_count(),
        "loadavg_1m": os.getloadavg()[0],
        "commit": git("rev-parse", "--short", "HEAD"),
        "modified": bool(git("status", "--porcelain", "--", "simline", "dashboards")),
    }


def _s(d: dict[str, float], unit: str, digits: int = 0) -> str:
    return ", ".join(f"{k} {d[k]:.{digits}f}" for k in ("mean", "p50", "p95", "max")) + f" {unit}"


def print_report(env: dict[str, Any], r: dict[str, Any]) -> None:
    dirty = " + uncommitted changes in simline/ or dashboards/" if env["modified"] else ""
    print(
        f"simline live dashboard: {env['date']}, commit {env['commit']}{dirty}, Python {env['python']}, "
        f"Dash {env['dash']}, Chromium {r['chromium']}, {env['cpus']} CPUs, load average {env['loadavg_1m']:.2f}"
    )
    print(
        f"  tandem line of {r['stations']} stations{' + twin (standby)' if r['twin'] else ''}, speed {r['speed']:g}; "
        f"browsers: {', '.join(b['role'] for b in r['browsers'])}; window {r['window_s']:.1f} s\n"
    )
    for b in r["browsers"]:
        tag = f"[{b['role']}]"
        if b["path"] == "/":
            iv = b["update_interval_s"]
            print(
                f"{tag} update interval (n={iv['n']}): {_s(iv, 's', 2)}; missed refreshes {b['missed_refreshes']} "
                f"(clock changes {b['clock_changes']}, refreshes received {b['refreshes_received']})"
            )
            print(f"{tag} draw time (refresh response → clock in the DOM): {_s(b['draw_ms'], 'ms')}")
        for name, c in b["callbacks"].items():
            print(
                f"{tag} callback {name}: {c['per_s']:.2f}/s, p50 {c['ms']['p50']:.0f} ms, p95 {c['ms']['p95']:.0f} ms, "
                f"{c['kb']:.1f} KB each" + (f" ({c['no_update']} without update)" if c["no_update"] else "")
            )
        h, e, lt = b["heap_mb_after_gc"], b["elements"], b["long_tasks"]
        print(
            f"{tag} CPU {b['cpu_pct']:.1f} % of one core; main thread "
            f"{b['main_thread_pct']:.1f} % (script {b['script_pct']:.1f}); long tasks {lt['n']} "
            f"(max {lt['max_ms']:.0f} ms); {b['inserted_per_s']:,.0f} elements inserted/s"
        )
        kept = "".join(f"; {k} {'kept' if v else 'REPLACED'}" for k, v in b["kept"].items())
        print(f"{tag} JS heap after GC {h[0]:.1f} → {h[1]:.1f} MB; elements {e[0]} → {e[1]}{kept}")
    print()
    for name, c in r["server_callbacks"].items():
        print(
            f"[server] callback {name}: {c['per_s']:.2f}/s, wall p50 {c['wall_ms']['p50']:.1f}, p95 "
            f"{c['wall_ms']['p95']:.1f} ms; thread CPU p50 {c['cpu_ms']['p50']:.1f}, p95 {c['cpu_ms']['p95']:.1f} ms; "
            f"{c['kb']:.1f} KB each"
        )
    sb, lag, ll = r["snapshot_build_ms"], r["lag_s"], r["loop_lag_ms"]
    print(f"[server] snapshot build: {_s(sb, 'ms', 1)}; {r['snapshots_per_s']:.2f} snapshots/s")
    print(
        f"[server] simulation lag p50 {lag['p50']:.3f}, p99 {lag['p99']:.3f}, max {lag['max']:.3f}, current "
        f"{lag['current']:.3f} s; speed reached {r['sim_speed']:.1f}; loop lag p99 {ll['p99']:.1f}, "
        f"max {ll['max']:.1f} ms"
    )
    gcs = "; ".join(f"{g} {v['n']} (max {v['max']:.1f} ms)" for g, v in r["gc_pauses_ms"].items())
    print(f"[server] Python GC pauses: {gcs}")
    c = r["cpu_pct"]
    print(
        f"[cpu] Python {c['python']:.1f} % of one core (live loop {c['live loop']:.1f}, waitress {c['waitress']:.1f}); "
        f"browsers {c['browsers']:.1f} %; other processes {c['other']:.1f} %\n"
    )
    for b in (b for b in r["browsers"] if b["path"] == "/"):
        iv = b["update_interval_s"]
        ok = iv["n"] > 0 and iv["p50"] <= P50_OK_S and iv["p95"] <= P95_OK_S
        print(
            f"  verdict ({b['role']}): interval p50 {iv['p50']:.2f} s, p95 {iv['p95']:.2f} s: "
            f"{'meets' if ok else 'does NOT meet'} '≤ 1 s'; simulation {'keeps' if lag['p99'] < 1 else 'does NOT keep'}"
            f" pace; browser {b['cpu_pct']:.0f} % of one core"
        )
    if c["other"] > 30:
        print(f"  note: other processes used {c['other']:.0f} % of a core during the window: figures may be disturbed")
    print(f"  (took {r['case_s']:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stations", type=int, default=50, help="stations of the tandem line (default 50)")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per wall second (default 60)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window, wall seconds (default 60)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds after the pages are up (default 10)")
    parser.add_argument("--viewers", type=int, default=1, help="browsers on the big-screen page / (default 1)")
    parser.add_argument("--kiosk", action="store_true", help="one more browser on /kiosk, following its own order")
    parser.add_argument("--twin", action="store_true", help="run a 'standby' investment as the twin")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.stations < 1 or args.seconds <= 0 or args.warmup < 0 or args.viewers < 0:
        parser.error("--stations must be >= 1, --seconds > 0, --warmup and --viewers >= 0")
    if args.viewers == 0 and not args.kiosk:
        parser.error("nothing to watch: --viewers 0 without --kiosk")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        parser.error(f"{CHROMIUM} and {CHROMEDRIVER} are needed (Debian: apt-get install chromium chromium-driver)")
    env = environment()
    try:
        result = run(args)
    except KeyboardInterrupt:  # the browsers and the live app are stopped already
        return 130
    print_report(env, result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {"environment": env, "parameters": {**vars(args), "json": str(args.json)}, "result": result}
        args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
