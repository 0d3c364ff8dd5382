"""Baseline against investments: the same replications with common random numbers, paired deltas and the
business case of each alternative."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from simline.business import CaseSummary, summarise_cases, yearly_cases
from simline.experiment import ExperimentResult, Progress, Summary, _Task, run_tasks, summarise
from simline.kpis import Kpis
from simline.overlays import Alternative, alternative
from simline.scenario.model import Scenario

__all__ = ["AlternativeResult", "Comparison", "run_comparison"]


@dataclass
class AlternativeResult:
    """One alternative's runs, its paired differences to the baseline and its business case."""

    alternative: Alternative
    result: ExperimentResult
    deltas: dict[str, Summary] = field(default_factory=dict)
    case: CaseSummary | None = None

    @property
    def label(self) -> str:
        """The alternative's name, e.g. ``pdm`` or ``pdm+smed``."""
        return self.alternative.label


@dataclass
class Comparison:
    """A baseline and its alternatives, run on the same random streams."""

    scenario: Scenario
    baseline: ExperimentResult
    alternatives: list[AlternativeResult]

    def to_json(self) -> dict[str, Any]:
        """The documented JSON document (see docs/investments.md)."""
        from simline import __version__

        base_summary = self.baseline.summary()
        econ = self.scenario.economics
        return {
            "format": "simline.compare/1",
            "simline_version": __version__,
            "scenario": self.scenario.name,
            "seed": self.baseline.seed,
            "replications": self.baseline.replications,
            "horizon_hours": self.baseline.horizon_hours,
            "warmup_hours": self.baseline.warmup_hours,
            "economics": econ.model_dump(),
            "funding": self.scenario.funding.model_dump() if self.scenario.funding else None,
            "baseline": {
                "bottleneck": self.baseline.bottleneck(),
                "kpis": {k: v.as_dict() for k, v in base_summary.items()},
            },
            "alternatives": [
                {
                    "name": a.label,
                    "investments": a.alternative.names,
                    "description": a.alternative.description,
                    "capex": a.alternative.capex,
                    "opex_per_year": a.alternative.opex_per_year,
                    "useful_life_years": a.alternative.useful_life_years,
                    "installation_downtime_hours": a.alternative.installation_downtime_hours,
                    "bottleneck": a.result.bottleneck(),
                    "kpis": {k: v.as_dict() for k, v in a.result.summary().items()},
                    "deltas": {k: v.as_dict() for k, v in a.deltas.items()},
                    "business_case": a.case.as_dict() if a.case else None,
                }
                for a in self.alternatives
            ],
        }


def paired_deltas(base: Sequence[Kpis], other: Sequence[Kpis]) -> dict[str, Summary]:
    """Per KPI, the mean difference other − base over paired replications, with its 95 % CI."""
    names = list(base[0]) if base else []
    out: dict[str, Summary] = {}
    for name in names:
        diffs: list[float | None] = []
        for b, o in zip(base, other, strict=True):
            x, y = b.get(name), o.get(name)
            diffs.append(None if x is None or y is None else y - x)
        out[name] = summarise(diffs)
    return out


def run_comparison(
    scenario: Scenario,
    specs: Sequence[str] | None = None,
    replications: int | None = None,
    seed: int | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> Comparison:
    """Run the baseline and each alternative (default: every investment on its own) on the same streams.

    Raises:
        ScenarioError: An alternative names an unknown investment or its changes do not fit.
    """
    exp = scenario.experiment
    reps = replications or exp.replications
    seed = exp.seed if seed is None else seed
    names = list(specs) if specs else [inv.name for inv in scenario.investments]
    alternatives = [alternative(scenario, spec) for spec in names]
    scenarios = [scenario, *(a.scenario for a in alternatives)]
    tasks: list[_Task] = [(s, r, seed, None) for s in scenarios for r in range(reps)]
    runs = run_tasks(tasks, jobs, progress)

    def result(i: int, s: Scenario) -> ExperimentResult:
        res = ExperimentResult(s.name, seed, exp.horizon_hours, exp.warmup_hours)
        res.runs = runs[i * reps : (i + 1) * reps]
        return res

    baseline = result(0, scenario)
    out: list[AlternativeResult] = []
    for i, alt in enumerate(alternatives, start=1):
        res = result(i, alt.scenario)
        cases = [
            yearly_cases(b, o, alt, scenario.economics, scenario.funding)
            for b, o in zip(baseline.runs, res.runs, strict=True)
        ]
        out.append(
            AlternativeResult(
                alt, res, paired_deltas(baseline.runs, res.runs), summarise_cases(cases, alt, scenario.funding)
            )
        )
    return Comparison(scenario, baseline, out)
