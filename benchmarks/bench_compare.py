"""Wall time of ``simline compare`` on the largest example with all its investments, and how it scales.

Measures, on this machine, ``run_comparison`` (the code behind ``simline compare``) for the example scenario
with the most stations among those that have investments:

* all investments, 10 replications, with 1 process and with every core (``--jobs``);
* the scaling with replications (2, 5, 10) on every core.

Each figure is the wall time of one run (``time.perf_counter``), including starting the worker processes.
Run ``python benchmarks/bench_compare.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def pick(directory: Path) -> Path:
    """The loadable scenario with investments and the most stations."""
    from simline.errors import ScenarioError
    from simline.scenario import load_scenario

    best: tuple[int, str] | None = None
    for path in sorted(directory.glob("*.yaml")):
        try:
            scenario = load_scenario(path)
        except ScenarioError:
            continue
        if scenario.investments and (best is None or len(scenario.stations) > best[0]):
            best = (len(scenario.stations), str(path))
    if best is None:
        raise SystemExit(f"no scenario with investments in {directory}")
    return Path(best[1])


def timed(path: Path, replications: int, jobs: int) -> tuple[float, int]:
    from simline.compare import run_comparison
    from simline.scenario import load_scenario

    scenario = load_scenario(path)
    start = time.perf_counter()
    comparison = run_comparison(scenario, replications=replications, jobs=jobs)
    return time.perf_counter() - start, len(comparison.alternatives)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, help="scenario file (default: the largest example with investments)")
    parser.add_argument("--replications", type=int, default=10, help="replications of the main measurement")
    parser.add_argument("--scaling", type=int, nargs="*", default=[2, 5, 10], help="replication counts to scale over")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    path = args.scenario or pick(REPO / "scenarios")
    cores = os.cpu_count() or 1
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout
    figures: dict[str, Any] = {"scenario": path.name, "cores": cores, "commit": commit.strip(), "runs": []}
    print(f"simline compare on {path.name}: all investments, {cores} cores, commit {figures['commit']}")
    for jobs in sorted({1, cores}):
        seconds, alts = timed(path, args.replications, jobs)
        runs = args.replications * (1 + alts)
        figures["runs"].append({"replications": args.replications, "jobs": jobs, "seconds": seconds, "runs": runs})
        print(
            f"  {args.replications:3d} replications x (baseline + {alts} alternatives) = {runs:3d} runs, "
            f"{jobs} process(es): {seconds:7.1f} s ({seconds / runs:.2f} s per run)"
        )
    for reps in args.scaling:
        if reps == args.replications:
            continue
        seconds, alts = timed(path, reps, cores)
        runs = reps * (1 + alts)
        figures["runs"].append({"replications": reps, "jobs": cores, "seconds": seconds, "runs": runs})
        print(f"  {reps:3d} replications, {cores} process(es): {seconds:7.1f} s ({seconds / runs:.2f} s per run)")
    one = next((r for r in figures["runs"] if r["jobs"] == 1), None)
    many = next((r for r in figures["runs"] if r["jobs"] == cores and r["replications"] == args.replications), None)
    if one and many and cores > 1:
        print(f"  speed-up with {cores} processes: {one['seconds'] / many['seconds']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
