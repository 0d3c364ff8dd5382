"""Statistical correctness against queueing theory, Little's law on the examples, and conservation of units.

The queueing checks compare replication means with closed-form results: the true value must lie in a Student-t
confidence interval whose level is Bonferroni-corrected for the number of checks, and each interval must be
narrow (half-width below 10 % of the true value), so that a noisy estimate cannot pass by being vague.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from helpers import TransitCounter, assert_conserved, exponential, tandem

from simline.experiment import run_experiment, summarise
from simline.scenario import Experiment, Scenario, load_scenario
from simline.sim import Line

SCENARIOS = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.yaml"))
MAX_REL_HALF_WIDTH = 0.10
JOBS = 2


def check_against_theory(runs: list[dict[str, float | None]], theory: dict[str, float]) -> list[str]:
    """Problems found when comparing each KPI's Bonferroni-corrected CI with its theoretical value."""
    confidence = 1 - 0.05 / len(theory)
    problems = []
    for name, expected in theory.items():
        s = summarise([run[name] for run in runs], confidence=confidence)
        assert s.low is not None and s.high is not None and s.half_width is not None, name
        if not s.low <= expected <= s.high:
            problems.append(f"{name}: theory {expected:.5g} outside CI [{s.low:.5g}, {s.high:.5g}]")
        if s.half_width > MAX_REL_HALF_WIDTH * expected:
            problems.append(f"{name}: CI half-width {s.half_width:.3g} above 10 % of {expected:.5g}")
    return problems


# --- open Jackson network: M/M/1 stations in series ----------------------------------------------------------

LAMBDA_PER_MIN = 1.0
JACKSON_MEANS = (0.5, 0.65, 0.8)  # minutes: rho = 0.5, 0.65, 0.8


def jackson_theory() -> dict[str, float]:
    lam = LAMBDA_PER_MIN
    theory: dict[str, float] = {}
    line_wip = line_time = 0.0
    for i, mean in enumerate(JACKSON_MEANS, start=1):
        mu = 1 / mean
        rho = lam / mu
        wip = rho / (1 - rho)
        sojourn_min = 1 / (mu - lam)
        theory[f"stations.s{i}.utilisation"] = rho
        theory[f"stations.s{i}.wip_mean"] = wip
        theory[f"stations.s{i}.sojourn_mean_h"] = sojourn_min / 60
        line_wip += wip
        line_time += sojourn_min
    theory["line.wip_mean"] = line_wip
    theory["line.unit_time_mean_h"] = line_time / 60
    theory["line.exit_rate_per_hour"] = lam * 60
    return theory


@pytest.mark.slow
def test_jackson_tandem_matches_theory() -> None:
    scenario = tandem(
        [exponential(m) for m in JACKSON_MEANS],
        rate_per_hour=LAMBDA_PER_MIN * 60,
        horizon_hours=410,
        warmup_hours=10,
        replications=16,
        seed=20240611,
    )
    result = run_experiment(scenario, jobs=JOBS)
    assert result.replications == 16
    problems = check_against_theory(result.runs, jackson_theory())
    assert not problems, "\n".join(problems)


# --- M/M/2 --------------------------------------------------------------------------------------------------


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with offered load ``offered`` = λ/μ (Erlang C)."""
    top = offered**servers / math.factorial(servers) * servers / (servers - offered)
    bottom = sum(offered**k / math.factorial(k) for k in range(servers)) + top
    return top / bottom


@pytest.mark.slow
def test_mm2_matches_erlang_c() -> None:
    servers, mean = 2, 1.5  # minutes per unit on each machine; λ = 1/min, offered load 1.5, ρ = 0.75
    lam = LAMBDA_PER_MIN
    offered = lam * mean
    rho = offered / servers
    wait = erlang_c(servers, offered)
    assert wait == pytest.approx(9 / 14)  # textbook value for c = 2, a = 1.5
    queue = wait * rho / (1 - rho)
    wip = queue + offered
    theory = {
        "stations.s1.utilisation": rho,
        "stations.s1.wip_mean": wip,
        "stations.s1.sojourn_mean_h": wip / lam / 60,
        "stations.s1.buffer_mean": queue,
    }
    scenario = tandem(
        [exponential(mean)],
        machines=[servers],
        rate_per_hour=lam * 60,
        horizon_hours=410,
        warmup_hours=10,
        replications=12,
        seed=7,
    )
    result = run_experiment(scenario, jobs=JOBS)
    problems = check_against_theory(result.runs, theory)
    assert not problems, "\n".join(problems)


# --- M/G/1 with breakdowns during processing -----------------------------------------------------------------


@pytest.mark.slow
def test_breakdowns_match_mg1_with_preemptive_resume() -> None:
    """Failures strike after exponential *operating* time and the unit resumes after the repair.

    The completion time of a unit is S = X + R_1 + … + R_N with N ~ Poisson(f·X) breakdowns during its
    processing time X, so the station is an M/G/1 queue: E[S] = E[X](1 + f·E[R]),
    Var[S] = Var[X](1 + f·E[R])² + f·E[X]·E[R²], and the Pollaczek–Khinchine formula gives the mean WIP.
    """
    lam, ex, f, er = 0.7, 1.0, 0.1, 0.5  # per minute, minutes, per operating minute, minutes (all exponential)
    es = ex * (1 + f * er)
    var_s = ex**2 * (1 + f * er) ** 2 + f * ex * 2 * er**2
    rho = lam * es
    wip = rho + lam**2 * (var_s + es**2) / (2 * (1 - rho))
    theory = {
        "stations.s1.utilisation": lam * ex,  # processing share (no setups)
        "stations.s1.active_share": rho,  # processing + down
        "stations.s1.state_share.down": lam * ex * f * er,
        "stations.s1.wip_mean": wip,
        "stations.s1.sojourn_mean_h": wip / lam / 60,
        "stations.s1.mtbf_h": 1 / f / 60,
        "stations.s1.mttr_h": er / 60,
    }
    scenario = tandem(
        [exponential(ex)],
        rate_per_hour=lam * 60,
        horizon_hours=410,
        warmup_hours=10,
        replications=12,
        seed=3,
        station_extra=[{"failures": {"time_between": exponential(1 / f), "repair_time": exponential(er)}}],
    )
    result = run_experiment(scenario, jobs=JOBS)
    problems = check_against_theory(result.runs, theory)
    assert not problems, "\n".join(problems)


# --- Little's law on every example scenario -----------------------------------------------------------------

LITTLE_OBSERVED_HOURS = 20_000.0
LITTLE_REL = 0.05
LITTLE_ABS = 0.005  # units: floor for stations that are almost never occupied


def long_run(scenario: Scenario, replications: int) -> Scenario:
    exp = scenario.experiment
    longer = Experiment.model_validate(
        {
            "horizon_hours": exp.warmup_hours + LITTLE_OBSERVED_HOURS,
            "warmup_hours": exp.warmup_hours,
            "replications": replications,
            "seed": exp.seed,
        }
    )
    return scenario.model_copy(update={"experiment": longer})


def test_there_are_example_scenarios() -> None:
    assert any(p.name == "quickstart.yaml" for p in SCENARIOS)


@pytest.mark.slow
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_littles_law_on_examples(path: Path) -> None:
    scenario = long_run(load_scenario(path), replications=2)
    result = run_experiment(scenario, jobs=JOBS)
    problems = []
    for r, k in enumerate(result.runs):
        hours = k["line.observed_hours"]
        assert hours == pytest.approx(LITTLE_OBSERVED_HOURS)
        wip = k["line.wip_mean"]
        assert wip is not None
        rate, time_h = k["line.exit_rate_per_hour"] or 0.0, k["line.unit_time_mean_h"] or 0.0
        if wip != pytest.approx(rate * time_h, rel=LITTLE_REL, abs=LITTLE_ABS):
            problems.append(f"rep {r} line: wip_mean {wip:.4g} vs exit rate × unit time {rate * time_h:.4g}")
        for st in scenario.stations:
            p = f"stations.{st.id}."
            wip = k[p + "wip_mean"]
            assert wip is not None
            processed = k[p + "processed"] or 0.0
            sojourn = k[p + "sojourn_mean_h"] or 0.0
            if wip != pytest.approx(processed / hours * sojourn, rel=LITTLE_REL, abs=LITTLE_ABS):
                problems.append(
                    f"rep {r} {st.id}: wip_mean {wip:.4g} vs rate × sojourn {processed / hours * sojourn:.4g}"
                )
    assert not problems, "\n".join(problems)


# --- conservation of units ----------------------------------------------------------------------------------


def run_checking_conservation(scenario: Scenario, stops: int = 40) -> Line:
    """Run a replication in ``stops`` steps, checking at every stop that each released unit is accounted for."""
    line = Line(scenario, replication=0)
    transit = TransitCounter(line)
    for i in range(1, stops + 1):
        line.run(line.horizon * i / stops)
        assert_conserved(line, transit)
    assert line.env.now == line.horizon
    return line


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_conservation_on_examples(path: Path) -> None:
    line = run_checking_conservation(load_scenario(path))
    assert line.released_total > 0


def test_conservation_with_blocking_transport_and_scrap() -> None:
    """Finite buffers (one of them 0), a slow transport and scrap with replacement units."""
    scenario = tandem(
        [exponential(4.0), exponential(5.0), exponential(4.5)],
        machines=[1, 2, 1],
        buffers=[None, 0, 1],
        rate_per_hour=13,
        horizon_hours=300,
        warmup_hours=20,
        station_extra=[
            {},
            {"quality": {"defect_probability": 0.2}},
            {"inspection": {"detection_rate": 0.9, "false_reject_rate": 0.05}},
        ],
        transport={"kind": "fixed", "time": {"kind": "uniform", "low": 1, "high": 6}},
    )
    line = run_checking_conservation(scenario, stops=200)
    assert line.scrapped_total > 0
    assert line.transport.moves > line.finished_total
