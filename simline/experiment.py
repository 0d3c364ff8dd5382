"""Replications of a scenario, in parallel processes, summarised with Student-t confidence intervals."""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scipy import stats as scipy_stats

from simline.eventlog import EventLog
from simline.kpis import Kpis, compute_kpis
from simline.scenario.model import Scenario
from simline.sim.line import Line

__all__ = ["ExperimentResult", "Summary", "run_experiment", "run_replication", "run_tasks", "summarise"]

_Task = tuple[Scenario, int, int | None, Path | None]

Progress = Callable[[float, int], None]
"""Called with (replications done, possibly fractional, and replications in all)."""


@dataclass(frozen=True, slots=True)
class Summary:
    """Mean of a KPI over replications with its 95 % confidence interval (Student t).

    ``half_width``, ``low`` and ``high`` are ``None`` with fewer than two replications; ``n`` counts the
    replications in which the KPI was defined.
    """

    mean: float | None
    half_width: float | None
    low: float | None
    high: float | None
    sd: float | None
    n: int

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON."""
        return {
            "mean": self.mean,
            "ci95": [self.low, self.high],
            "half_width": self.half_width,
            "sd": self.sd,
            "n": self.n,
        }


def summarise(values: Sequence[float | None], confidence: float = 0.95) -> Summary:
    """Mean and Student-t confidence interval of the defined values."""
    xs = [v for v in values if v is not None and not math.isnan(v)]
    n = len(xs)
    if n == 0:
        return Summary(None, None, None, None, None, 0)
    mean = math.fsum(xs) / n
    if n < 2:
        return Summary(mean, None, None, None, None, n)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(mean, half, mean - half, mean + half, sd, n)


@dataclass
class ExperimentResult:
    """All replications of one scenario and their summary."""

    scenario: str
    seed: int
    horizon_hours: float
    warmup_hours: float
    runs: list[Kpis] = field(default_factory=list)

    @property
    def replications(self) -> int:
        """Number of replications run."""
        return len(self.runs)

    def summary(self) -> dict[str, Summary]:
        """Every KPI summarised over the replications."""
        names = list(self.runs[0]) if self.runs else []
        return {name: summarise([run.get(name) for run in self.runs]) for name in names}

    def bottleneck(self) -> str | None:
        """The station with the highest mean active share (processing, setup, down, maintenance)."""
        shares: dict[str, float] = {}
        for name, s in self.summary().items():
            if name.startswith("stations.") and name.endswith(".active_share") and s.mean is not None:
                shares[name.split(".")[1]] = s.mean
        return max(shares, key=lambda k: shares[k]) if shares else None

    def to_json(self) -> dict[str, Any]:
        """The documented JSON document (see docs/kpis.md)."""
        line: dict[str, Any] = {}
        stations: dict[str, dict[str, Any]] = {}
        for name, s in self.summary().items():
            parts = name.split(".")
            if parts[0] == "line":
                line[parts[1]] = s.as_dict()
            else:
                stations.setdefault(parts[1], {})[".".join(parts[2:])] = s.as_dict()
        from simline import __version__

        return {
            "format": "simline.run/1",
            "simline_version": __version__,
            "scenario": self.scenario,
            "seed": self.seed,
            "replications": self.replications,
            "horizon_hours": self.horizon_hours,
            "warmup_hours": self.warmup_hours,
            "bottleneck": self.bottleneck(),
            "line": line,
            "stations": stations,
        }


def run_replication(
    scenario: Scenario,
    replication: int,
    seed: int | None = None,
    events: Path | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> Kpis:
    """Run one replication to the horizon and return its KPIs.

    Args:
        scenario: The validated scenario.
        replication: Replication number (selects the random streams).
        seed: Overrides the scenario's seed.
        events: Write this replication's event log there.
        on_progress: Called with the fraction of the horizon simulated, 50 times per run.
    """
    log = EventLog(events, replication) if events is not None else None
    try:
        line = Line(scenario, replication, seed, observers=[log] if log is not None else [])
        if on_progress is None:
            line.run()
        else:
            steps = 50
            for i in range(1, steps + 1):
                line.run(line.horizon * i / steps)
                on_progress(i / steps)
    finally:
        if log is not None:
            log.close()
    return compute_kpis(line)


def _worker(task: _Task) -> Kpis:
    scenario, replication, seed, events = task
    return run_replication(scenario, replication, seed, events)


def run_tasks(tasks: Sequence[_Task], jobs: int | None = None, progress: Progress | None = None) -> list[Kpis]:
    """Run replications ``(scenario, replication, seed, event log path)`` on ``jobs`` processes.

    Returns:
        The KPIs of each task, in the order of ``tasks``.
    """
    total = len(tasks)
    workers = max(1, min(total, jobs or os.cpu_count() or 1))
    results: dict[int, Kpis] = {}
    if workers == 1:
        for i, (scenario, r, seed, events) in enumerate(tasks):
            tick = (lambda f, done=i: progress(done + f, total)) if progress is not None else None
            results[i] = run_replication(scenario, r, seed, events, on_progress=tick)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(_worker, task): i for i, task in enumerate(tasks)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if progress:
                    progress(len(results), total)
    return [results[i] for i in range(total)]


def run_experiment(
    scenario: Scenario,
    replications: int | None = None,
    seed: int | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    events: Path | None = None,
) -> ExperimentResult:
    """Run ``replications`` (default: the scenario's) on ``jobs`` processes (default: one per core).

    With ``events``, each replication's event log is written beside it and then merged into that one file.
    Results do not depend on ``jobs``: each replication has its own random streams.
    """
    exp = scenario.experiment
    reps = replications or exp.replications
    seed = exp.seed if seed is None else seed
    parts = [EventLog.part_path(events, r) for r in range(reps)] if events is not None else [None] * reps
    tasks: list[_Task] = [(scenario, r, seed, parts[r]) for r in range(reps)]
    runs = run_tasks(tasks, jobs, progress)
    if events is not None:
        EventLog.merge(events, [p for p in parts if p is not None])
    result = ExperimentResult(scenario.name, seed, exp.horizon_hours, exp.warmup_hours)
    result.runs = runs
    return result
