"""Event rate of simline against a minimal hand-written SimPy model of the same tandem line.

The line: Poisson arrivals (one part per order, one product, no options) into ``n`` single-machine stations
in series, exponential processing times, the bottleneck (the middle station) at utilisation 0.8 and every
other station lower, unlimited buffers, no setups, failures, calendar or quality, transport time 0.

The hand-written model is the ceiling for a SimPy model of this line: idiomatic SimPy, one process per part
and a ``simpy.Resource`` per station (``with res.request() as req: yield req; yield env.timeout(...)``),
samples from ``random.expovariate`` (or pre-drawn numpy blocks with ``--sampler numpy``).

Both models run the same simulated horizon from an empty line; only ``env.run`` / ``Line.run`` is timed
(``time.perf_counter``, best of ``--repeats`` runs of the same seed; the models take turns, so a load that
comes and goes on the machine hits them alike). simline also runs a variant with finite
buffers (every station but the first; the first one's queue is the order backlog). SimPy events processed are
counted in a separate, untimed run of each model with ``simpy.Environment.step`` wrapped by a counter.

Run ``python benchmarks/bench_tandem.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import gc
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from simline.scenario import parse_scenario
from simline.sim import Line

ARRIVALS_PER_HOUR = 60.0  # one part per minute on average
BOTTLENECK_RHO = 0.8
OTHER_RHOS = (0.5, 0.6, 0.7, 0.55, 0.65, 0.75)  # cycled over the non-bottleneck stations
TARGET_RATIO = 0.5
AIM_RATIO = 0.7


# --- the line ------------------------------------------------------------------------------------------
def utilisations(n: int) -> list[float]:
    """Utilisation of each station: 0.8 at the middle one (the bottleneck), the others cycle below it."""
    return [BOTTLENECK_RHO if i == n // 2 else OTHER_RHOS[i % len(OTHER_RHOS)] for i in range(n)]


def mean_times(n: int, arrivals_per_hour: float) -> list[float]:
    """Mean processing time (minutes) of each station for the given arrival rate."""
    per_minute = arrivals_per_hour / 60.0
    return [rho / per_minute for rho in utilisations(n)]


def tandem_yaml(n: int, horizon_hours: float, arrivals_per_hour: float, buffer: int | None, seed: int) -> str:
    """The simline scenario of the tandem line (``buffer`` applies to every station but the first)."""
    lines = [
        f"name: Tandem line, {n} stations",
        "products:",
        "  - family: part",
        "    price: 1",
        "orders:",
        "  kind: poisson",
        f"  rate_per_hour: {arrivals_per_hour!r}",
        "  quantity: 1",
        "stations:",
    ]
    for i, mean in enumerate(mean_times(n, arrivals_per_hour)):
        lines.append(f"  - id: s{i + 1:02d}")
        lines.append(f"    processing: {{base: {{kind: exponential, mean: {mean!r}}}}}")
        if buffer is not None and i > 0:
            lines.append(f"    buffer: {buffer}")
    lines.append("routing:")
    lines += [f"  - station: s{i + 1:02d}" for i in range(n)]
    lines += [
        "transport: {kind: fixed, time: 0}",
        "experiment:",
        f"  horizon_hours: {horizon_hours!r}",
        "  warmup_hours: 0",
        "  replications: 1",
        f"  seed: {seed}",
    ]
    return "\n".join(lines) + "\n"


# --- the two models ------------------------------------------------------------------------------------
@dataclass
class Run:
    """One timed run: parts completed and the wall time of the simulation loop."""

    parts: int
    wall: float
    build: float


def run_simline(n: int, horizon_hours: float, arrivals_per_hour: float, buffer: int | None, seed: int) -> Run:
    """Build simline's model of the line (untimed: ``build``) and run it to the horizon (timed: ``wall``)."""
    t0 = time.perf_counter()
    scenario = parse_scenario(tandem_yaml(n, horizon_hours, arrivals_per_hour, buffer, seed))
    line = Line(scenario)
    t1 = time.perf_counter()
    line.run()
    t2 = time.perf_counter()
    return Run(line.finished_total, t2 - t1, t1 - t0)


def _numpy_sampler(rng: np.random.Generator, mean: float, block: int = 4096) -> Callable[[], float]:
    buf: list[float] = []

    def draw() -> float:
        if not buf:
            buf.extend(rng.exponential(mean, block).tolist())
        return buf.pop()

    return draw


def run_handwritten(n: int, horizon_hours: float, arrivals_per_hour: float, sampler: str, seed: int) -> Run:
    """The minimal idiomatic SimPy model of the same line: a process per part, a Resource per station."""
    t0 = time.perf_counter()
    env = simpy.Environment()
    means = mean_times(n, arrivals_per_hour)
    gap_mean = 60.0 / arrivals_per_hour
    if sampler == "random":
        expovariate = random.Random(seed).expovariate
        gap: Callable[[], float] = lambda: expovariate(1.0 / gap_mean)  # noqa: E731
        route: list[tuple[simpy.Resource, Callable[[], float]]] = [
            (simpy.Resource(env, capacity=1), (lambda rate: lambda: expovariate(rate))(1.0 / m)) for m in means
        ]
    else:
        rng = np.random.default_rng(seed)
        gap = _numpy_sampler(rng, gap_mean)
        route = [(simpy.Resource(env, capacity=1), _numpy_sampler(rng, m)) for m in means]
    done = [0]
    timeout = env.timeout

    def part() -> Generator[simpy.Event, Any, None]:
        for res, draw in route:
            with res.request() as req:
                yield req
                yield timeout(draw())
        done[0] += 1

    def source() -> Generator[simpy.Event, Any, None]:
        process = env.process
        while True:
            yield timeout(gap())
            process(part())

    env.process(source())
    t1 = time.perf_counter()
    env.run(until=horizon_hours * 60.0)
    t2 = time.perf_counter()
    return Run(done[0], t2 - t1, t1 - t0)


@contextlib.contextmanager
def counting_steps() -> Iterator[list[int]]:
    """Count every event SimPy processes (calls of ``Environment.step``) while the block runs. Not for timing."""
    original = simpy.Environment.step
    counter = [0]

    def step(self: simpy.Environment) -> None:
        counter[0] += 1
        original(self)

    simpy.Environment.step = step  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        simpy.Environment.step = original  # type: ignore[method-assign]


# --- measuring -----------------------------------------------------------------------------------------
@dataclass
class Result:
    """Figures of one model on one line."""

    stations: int
    model: str
    parts: int
    wall_s: float
    walls_s: list[float]
    build_s: float
    parts_per_s: float
    station_ops_per_s: float
    events: int | None = None
    events_per_s: float | None = None
    events_per_station_op: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def measure(
    n: int, cases: list[tuple[str, Callable[[], Run]]], repeats: int, count_events: bool, verbose: bool
) -> list[Result]:
    """Best of ``repeats`` timed runs of each case, then an untimed run of each that counts events.

    The cases take turns (round robin), so a load that comes and goes on the machine hits them alike.
    """
    runs: dict[str, list[Run]] = {label: [] for label, _ in cases}
    for _ in range(repeats):
        for label, runner in cases:
            gc.collect()
            run = runner()
            runs[label].append(run)
            if verbose:
                print(f"    {label:<28} {n:>2} stations: {run.wall:7.3f} s, {run.parts} parts", file=sys.stderr)
    results = []
    for label, runner in cases:
        best = min(runs[label], key=lambda r: r.wall)
        result = Result(
            stations=n,
            model=label,
            parts=best.parts,
            wall_s=best.wall,
            walls_s=[r.wall for r in runs[label]],
            build_s=best.build,
            parts_per_s=best.parts / best.wall,
            station_ops_per_s=best.parts * n / best.wall,
        )
        if count_events:
            gc.collect()
            with counting_steps() as counter:
                check = runner()
            if check.parts != best.parts:  # same seed, same model: must be the same run
                raise RuntimeError(f"{label}: the counting run completed {check.parts} parts, not {best.parts}")
            result.events = counter[0]
            result.events_per_s = counter[0] / best.wall
            result.events_per_station_op = counter[0] / max(1, best.parts * n)
        results.append(result)
    return results


def code_version() -> dict[str, Any]:
    """The commit of the code measured, and whether simline/ had uncommitted changes (None outside git)."""
    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "simline"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "simline_modified": None}
    return {"commit": commit, "simline_modified": bool(dirty)}


def environment() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "simpy": simpy.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        **code_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Event rate of simline vs a minimal hand-written SimPy model of the same tandem line.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--stations", default="5,20", help="comma-separated line lengths to measure")
    parser.add_argument("--horizon-hours", type=float, default=400.0, help="simulated horizon of every run")
    parser.add_argument(
        "--arrivals-per-hour", type=float, default=ARRIVALS_PER_HOUR, help="Poisson arrival rate of parts"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per model; the best one counts")
    parser.add_argument("--buffer", type=int, default=5, help="buffer capacity of simline's finite-buffer variant")
    parser.add_argument("--no-finite", action="store_true", help="skip simline's finite-buffer variant")
    parser.add_argument(
        "--sampler",
        choices=("random", "numpy"),
        default="random",
        help="samples of the hand-written model: random.expovariate or pre-drawn numpy blocks",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of both models (each repeat reuses it)")
    parser.add_argument("--no-events", action="store_true", help="skip the untimed runs that count SimPy events")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every timed run to stderr")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.stations.split(",") if s.strip()]
    if args.repeats < 1 or not sizes or min(sizes) < 1:
        parser.error("--repeats and every --stations value must be at least 1")

    env = environment()
    count = not args.no_events
    results: list[Result] = []
    ratios: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for n in sizes:
        hand_label = f"handwritten ({args.sampler})"
        cases: list[tuple[str, Callable[[], Run]]] = [
            (
                hand_label,
                functools.partial(
                    run_handwritten, n, args.horizon_hours, args.arrivals_per_hour, args.sampler, args.seed
                ),
            ),
            (
                "simline (unlimited buffers)",
                functools.partial(run_simline, n, args.horizon_hours, args.arrivals_per_hour, None, args.seed),
            ),
        ]
        if not args.no_finite:
            cases.append(
                (
                    f"simline (buffers of {args.buffer})",
                    functools.partial(
                        run_simline, n, args.horizon_hours, args.arrivals_per_hour, args.buffer, args.seed
                    ),
                )
            )
        measured = measure(n, cases, args.repeats, count, args.verbose)
        results += measured
        hand, sim = measured[0], measured[1]
        ratios[str(n)] = {
            "station_ops_per_s": sim.station_ops_per_s / hand.station_ops_per_s,
            "wall_time_hand_over_simline": hand.wall_s / sim.wall_s,
        }
        if count and sim.events_per_s and hand.events_per_s:
            ratios[str(n)]["events_per_s"] = sim.events_per_s / hand.events_per_s
        if not args.no_finite:
            ratios[str(n)]["finite_station_ops_per_s"] = measured[2].station_ops_per_s / hand.station_ops_per_s
    elapsed = time.perf_counter() - started

    # --- report ----------------------------------------------------------------------------------------
    expected = args.arrivals_per_hour * args.horizon_hours
    print("simline tandem-line benchmark: simline vs a hand-written SimPy model of the same line")
    print(
        f"  {env['date']}, Python {env['python']}, SimPy {env['simpy']}, numpy {env['numpy']}, "
        f"{env['cpus']} CPUs, {env['platform']}"
    )
    dirty = " + uncommitted or untracked files in simline/" if env["simline_modified"] else ""
    print(f"  code: commit {env['commit']}{dirty}")
    load = env["loadavg_1m_at_start"]
    if load is not None and load >= 0.5:
        print(f"  note: the machine was busy when the benchmark started (load average {load:.2f}): figures may be low")
    print(
        f"  horizon {args.horizon_hours:g} h from empty, Poisson arrivals {args.arrivals_per_hour:g}/h "
        f"(~{expected:,.0f} parts), exponential single servers, bottleneck rho={BOTTLENECK_RHO}, "
        f"best of {args.repeats}, seed {args.seed}"
    )
    print()
    header = (
        f"{'stations':>8}  {'model':<28} {'parts':>7} {'wall s':>8} {'parts/s':>9} {'station-ops/s':>13} "
        f"{'events':>10} {'events/s':>10} {'ev/op':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        ev = f"{r.events:>10,}" if r.events is not None else f"{'-':>10}"
        evs = f"{r.events_per_s:>10,.0f}" if r.events_per_s is not None else f"{'-':>10}"
        evop = f"{r.events_per_station_op:>6.2f}" if r.events_per_station_op is not None else f"{'-':>6}"
        print(
            f"{r.stations:>8}  {r.model:<28} {r.parts:>7,} {r.wall_s:>8.3f} {r.parts_per_s:>9,.0f} "
            f"{r.station_ops_per_s:>13,.0f} {ev} {evs} {evop}"
        )
    print()
    print("ratio simline / hand-written (station operations per wall second; > 1 means simline is faster):")
    worst = min(v["station_ops_per_s"] for v in ratios.values())
    for size, v in ratios.items():
        extra = f", finite buffers {v['finite_station_ops_per_s']:.2f}x" if "finite_station_ops_per_s" in v else ""
        print(f"  {size:>3} stations: {v['station_ops_per_s']:.2f}x (unlimited buffers){extra}")
    verdict = "meets the aim" if worst >= AIM_RATIO else "meets the target" if worst >= TARGET_RATIO else "BELOW TARGET"
    print(f"  target >= {TARGET_RATIO}x, aim {AIM_RATIO}x: {verdict} (worst {worst:.2f}x)")
    for n in sizes:
        parts = [r.parts for r in results if r.stations == n]
        spread = (max(parts) - min(parts)) / max(1, min(parts))
        if spread > 0.05:
            print(f"  warning: {n} stations: parts completed differ by {spread:.1%} between the models")
    print(f"  (benchmark took {elapsed:.0f} s)")

    if args.json is not None:
        doc = {
            "benchmark": "bench_tandem",
            "environment": env,
            "parameters": {
                "stations": sizes,
                "horizon_hours": args.horizon_hours,
                "arrivals_per_hour": args.arrivals_per_hour,
                "utilisations": {str(n): utilisations(n) for n in sizes},
                "repeats": args.repeats,
                "buffer": None if args.no_finite else args.buffer,
                "sampler": args.sampler,
                "seed": args.seed,
            },
            "results": [asdict(r) for r in results],
            "ratios": ratios,
            "target_ratio": TARGET_RATIO,
            "aim_ratio": AIM_RATIO,
            "elapsed_s": elapsed,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"  figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
