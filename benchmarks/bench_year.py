"""Wall time of one simulated year of the largest example scenario, and peak memory for 1 and 10 years.

The scenario is picked when the benchmark runs: of the files in ``scenarios/*.yaml`` that load, the one with
the most stations (ties: more machines, then the file name). Its experiment is replaced by one replication,
no warm-up and the horizon being measured; everything else (calendar, failures, setups, transport, ...) is
kept.

* Time: ``Line(scenario)`` plus ``line.run()`` for 8760 h, best of ``--repeats`` (``time.perf_counter``).
* Memory: each horizon runs in a fresh subprocess, twice: once under ``tracemalloc`` (peak of the Python
  allocations made while building and running the model; the scenario is loaded before tracing starts) and
  once without it, reporting ``ru_maxrss`` of that process (its whole peak resident set, interpreter and
  imports included) and the growth of ``ru_maxrss`` over the level reached before the model was built.
  Online statistics should keep memory flat: the 10 y / 1 y ratios should be close to 1.

Run ``python benchmarks/bench_year.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

HOURS_PER_YEAR = 8760.0
REPO = Path(__file__).resolve().parent.parent
FLAT_LIMIT = 1.10  # a 10 y / 1 y ratio above this is reported as growth


# --- scenario ------------------------------------------------------------------------------------------
def pick_scenario(directory: Path) -> tuple[Path, list[str]]:
    """The loadable scenario with the most stations (then machines, then name); notes on skipped files."""
    from simline.errors import ScenarioError
    from simline.scenario import load_scenario

    best: tuple[int, int, str] | None = None
    best_path: Path | None = None
    notes: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            notes.append(f"skipped {path.name}: does not load ({str(exc).splitlines()[0][:100]})")
            continue
        except Exception as exc:  # a file being written by someone else, say
            notes.append(f"skipped {path.name}: {type(exc).__name__}: {exc}"[:160])
            continue
        key = (len(scenario.stations), sum(st.machines for st in scenario.stations), path.name)
        if best is None or key[:2] > best[:2]:
            best, best_path = key, path
    if best_path is None:
        raise SystemExit(f"no loadable scenario in {directory}")
    return best_path, notes


def scenario_for(path: Path, years: float) -> Any:
    """The scenario at ``path`` with one replication, no warm-up and a horizon of ``years`` years."""
    from simline.scenario import load_scenario

    scenario = load_scenario(path)
    exp = scenario.experiment.model_copy(
        update={"horizon_hours": HOURS_PER_YEAR * years, "warmup_hours": 0.0, "replications": 1}
    )
    return scenario.model_copy(update={"experiment": exp})


def simulate(scenario: Any) -> dict[str, Any]:
    """Build and run one replication; what came out of it."""
    from simline.sim import Line

    line = Line(scenario)
    line.run()
    return {
        "units_finished": line.finished_total,
        "units_scrapped": line.scrapped_total,
        "wip_at_end": line.wip,
        "open_orders_at_end": len(line.orders),
        "sim_minutes": line.env.now,
    }


# --- the subprocess that measures memory ---------------------------------------------------------------
def current_rss() -> int | None:
    """Resident set size of this process now (bytes), from /proc on Linux; ``None`` elsewhere."""
    try:
        for row in Path("/proc/self/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) * 1024
    except OSError:
        pass
    return None


def worker(path: Path, years: float, mode: str) -> dict[str, Any]:
    """Run one horizon in this (fresh) process and measure its memory (``mode``: tracemalloc or rss)."""
    scenario = scenario_for(path, years)
    import simline.sim  # noqa: F401  (imports before the baseline)

    gc.collect()
    out: dict[str, Any] = {"years": years, "mode": mode}
    if mode == "tracemalloc":
        tracemalloc.start()
        t0 = time.perf_counter()
        out.update(simulate(scenario))
        out["wall_s"] = time.perf_counter() - t0
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["tracemalloc_peak_bytes"] = peak
        out["tracemalloc_end_bytes"] = current
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        out["rss_before_model_bytes"] = current_rss()
        t0 = time.perf_counter()
        out.update(simulate(scenario))
        out["wall_s"] = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out["rss_end_bytes"] = current_rss()
        out["maxrss_bytes"] = after
        out["maxrss_before_model_bytes"] = before
        out["maxrss_growth_bytes"] = after - before
    return out


def in_subprocess(path: Path, years: float, mode: str) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--years", repr(years)]
    cmd += ["--scenario", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"worker failed ({' '.join(cmd)}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- main ----------------------------------------------------------------------------------------------
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
    import simpy

    return {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "simpy": simpy.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        **code_version(),
    }


def print_load_note(env: dict[str, Any]) -> None:
    load = env.get("loadavg_1m_at_start")
    if load is not None and load >= 0.5:
        print(f"  note: the machine was busy when the benchmark started (load average {load:.2f}): figures may be low")


def mib(n: float) -> str:
    return f"{n / 2**20:.2f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Wall time of one simulated year of the largest example scenario; peak memory for 1 and "
        "10 years (tracemalloc, and ru_maxrss of a fresh subprocess per horizon).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--scenario", type=Path, help="scenario file (default: the one with most stations in --scenarios-dir)"
    )
    parser.add_argument("--scenarios-dir", type=Path, default=REPO / "scenarios", help="where to look for it")
    parser.add_argument("--repeats", type=int, default=3, help="timed one-year runs; the best one counts")
    parser.add_argument("--years", default="1,10", help="comma-separated horizons (years) for the memory measurement")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the tracemalloc runs (slow: ~5x)")
    parser.add_argument("--no-memory", action="store_true", help="only measure the time of one year")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--worker", choices=("tracemalloc", "rss"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.scenario, float(args.years), args.worker)))
        return 0
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    years = [float(y) for y in args.years.split(",") if y.strip()]

    env = environment()
    started = time.perf_counter()
    notes: list[str] = []
    if args.scenario is None:
        path, notes = pick_scenario(args.scenarios_dir)
    else:
        path = args.scenario
    from simline.scenario import load_scenario

    spec = load_scenario(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    book_note = None
    if spec.orders.kind == "order_book":
        book_note = (
            "its orders come from an order book: once the book is worked off the rest of the horizon is "
            "idle, so the figures say little about long runs"
        )
    n_stations = len(spec.stations)
    n_machines = sum(st.machines for st in spec.stations)

    # time of one year, in this process
    year = scenario_for(path, 1.0)
    walls: list[float] = []
    outcome: dict[str, Any] = {}
    for _ in range(args.repeats):
        gc.collect()
        t0 = time.perf_counter()
        outcome = simulate(year)
        walls.append(time.perf_counter() - t0)
    best = min(walls)

    # memory, a fresh subprocess per horizon and mode
    memory: dict[str, dict[str, Any]] = {}
    if not args.no_memory:
        for y in years:
            row: dict[str, Any] = {}
            rss = in_subprocess(path, y, "rss")
            wanted = ("maxrss_bytes", "maxrss_before_model_bytes", "maxrss_growth_bytes", "rss_before_model_bytes")
            row.update({k: rss[k] for k in (*wanted, "rss_end_bytes")})
            row["units_finished"] = rss["units_finished"]
            row["wall_s_rss_run"] = rss["wall_s"]
            if not args.no_tracemalloc:
                tm = in_subprocess(path, y, "tracemalloc")
                row.update({k: tm[k] for k in ("tracemalloc_peak_bytes", "tracemalloc_end_bytes")})
                row["wall_s_tracemalloc_run"] = tm["wall_s"]
            memory[f"{y:g}"] = row
    elapsed = time.perf_counter() - started

    # --- report ----------------------------------------------------------------------------------------
    print("simline one-year benchmark")
    print(f"  {env['date']}, Python {env['python']}, SimPy {env['simpy']}, {env['cpus']} CPUs, {env['platform']}")
    dirty = " + uncommitted or untracked files in simline/" if env["simline_modified"] else ""
    print(f"  code: commit {env['commit']}{dirty}")
    print_load_note(env)
    for note in notes:
        print(f"  note: {note}")
    print(f"  scenario: {path.name} ({spec.name}): {n_stations} stations, {n_machines} machines, sha256 {digest}")
    if book_note:
        print(f"  note: {book_note}")
    print("  one replication, no warm-up; the scenario's calendar, failures, setups and transport are kept")
    print()
    print(
        f"one simulated year (8760 h): best {best:.3f} s wall of {args.repeats} (runs: "
        + ", ".join(f"{w:.3f}" for w in walls)
        + " s)"
    )
    print(
        f"  {outcome['units_finished']:,} units finished, {outcome['units_scrapped']:,} scrapped, "
        f"{outcome['units_finished'] / best:,.0f} units per wall second, "
        f"{HOURS_PER_YEAR / best:,.0f} simulated hours per wall second"
    )
    ratios: dict[str, float] = {}
    if memory:
        print()
        print("peak memory (each horizon in a fresh subprocess):")
        header = (
            f"  {'years':>5} {'units':>9} {'tracemalloc peak':>17} {'ru_maxrss':>12} {'maxrss growth':>14} "
            f"{'RSS before':>12} {'RSS at end':>12}"
        )
        print(header)
        for horizon, mem in memory.items():
            tm_text = mib(mem["tracemalloc_peak_bytes"]) if "tracemalloc_peak_bytes" in mem else "-"
            rss0 = mib(mem["rss_before_model_bytes"]) if mem.get("rss_before_model_bytes") else "-"
            rss1 = mib(mem["rss_end_bytes"]) if mem.get("rss_end_bytes") else "-"
            print(
                f"  {horizon:>5} {mem['units_finished']:>9,} {tm_text:>17} {mib(mem['maxrss_bytes']):>12} "
                f"{mib(mem['maxrss_growth_bytes']):>14} {rss0:>12} {rss1:>12}"
            )
        print("  (tracemalloc: Python allocations of building and running the model; ru_maxrss: peak resident set")
        print("   of the whole process, imports included; growth: ru_maxrss beyond its level before the model)")
        horizons = list(memory)
        if len(horizons) >= 2:
            lo, hi = memory[horizons[0]], memory[horizons[-1]]
            label = f"{horizons[-1]}y/{horizons[0]}y"
            if "tracemalloc_peak_bytes" in lo and "tracemalloc_peak_bytes" in hi:
                ratios["tracemalloc_peak"] = hi["tracemalloc_peak_bytes"] / lo["tracemalloc_peak_bytes"]
            ratios["maxrss"] = hi["maxrss_bytes"] / lo["maxrss_bytes"]
            print()
            print(f"ratio {label}:", ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()))
            flat = all(v <= FLAT_LIMIT for v in ratios.values())
            print(
                "  memory does not grow with the horizon"
                if flat
                else f"  WARNING: memory grows with the horizon (a ratio above {FLAT_LIMIT})"
            )
    print(f"  (benchmark took {elapsed:.0f} s)")

    if args.json is not None:
        doc = {
            "benchmark": "bench_year",
            "environment": env,
            "scenario": {
                "file": str(path),
                "name": spec.name,
                "stations": n_stations,
                "machines": n_machines,
                "sha256_12": digest,
                "order_book": book_note is not None,
                "skipped": notes,
            },
            "one_year": {"wall_s": best, "walls_s": walls, **outcome},
            "memory": memory,
            "ratios_last_over_first": ratios,
            "elapsed_s": elapsed,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"  figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
