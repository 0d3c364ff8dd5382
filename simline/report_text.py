"""KPI tables for the terminal (rich): what `simline run` prints."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from simline.compare import Comparison
from simline.experiment import ExperimentResult, Summary
from simline.kpis import KPI_UNITS, state_names

__all__ = ["print_comparison", "print_result"]

_LINE_ROWS = [
    ("throughput_per_hour", "Throughput (good units)"),
    ("oee", "OEE"),
    ("availability", "  Availability"),
    ("performance", "  Performance"),
    ("quality", "  Quality rate"),
    ("lead_time_mean_h", "Order lead time, mean"),
    ("lead_time_p50_h", "Order lead time, p50"),
    ("lead_time_p95_h", "Order lead time, p95"),
    ("on_time_delivery", "On-time delivery"),
    ("wip_mean", "WIP, time average"),
    ("scrap_rate", "Scrap rate"),
    ("first_pass_yield", "First-pass yield"),
    ("energy_per_good_unit_kwh", "Energy per good unit"),
    ("units_good", "Good units"),
    ("orders_completed", "Orders completed"),
]
_SHARES = {
    "oee",
    "availability",
    "performance",
    "quality",
    "on_time_delivery",
    "scrap_rate",
    "first_pass_yield",
}


def _fmt(value: float | None, share: bool) -> str:
    if value is None:
        return "–"
    if share:
        return f"{100 * value:.1f}%"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def _ci(s: Summary, share: bool) -> str:
    if s.half_width is None:
        return ""
    return f"± {_fmt(s.half_width, share)}"


def print_result(result: ExperimentResult, console: Console) -> None:
    """Print the line KPIs, the station KPIs and the state breakdown of an experiment."""
    summary = result.summary()
    title = (
        f"{result.scenario} — {result.replications} replication{'s' if result.replications != 1 else ''}, "
        f"{result.horizon_hours - result.warmup_hours:g} h observed after {result.warmup_hours:g} h warm-up, "
        f"seed {result.seed}"
    )
    line = Table(title=title, title_justify="left")
    line.add_column("Line KPI")
    line.add_column("mean", justify="right")
    line.add_column("95 % CI", justify="right")
    line.add_column("unit")
    for key, label in _LINE_ROWS:
        s = summary[f"line.{key}"]
        share = key in _SHARES
        unit = "" if share else ("orders" if key.startswith("orders") else KPI_UNITS.get(key, "units"))
        line.add_row(label, _fmt(s.mean, share), _ci(s, share), unit)
    console.print(line)

    stations = Table(title="Stations (means over replications)", title_justify="left")
    for col in ("station", "OEE", "avail", "perf", "quality", "util", "processed", "MTBF h", "MTTR h", "kWh"):
        stations.add_column(col, justify="left" if col == "station" else "right")
    bottleneck = result.bottleneck()
    ids = [k.split(".")[1] for k in summary if k.startswith("stations.") and k.endswith(".oee")]
    for sid in ids:

        def m(name: str, sid: str = sid) -> float | None:
            return summary[f"stations.{sid}.{name}"].mean

        label = f"{sid} ◀ bottleneck" if sid == bottleneck else sid
        stations.add_row(
            label,
            _fmt(m("oee"), True),
            _fmt(m("availability"), True),
            _fmt(m("performance"), True),
            _fmt(m("quality"), True),
            _fmt(m("utilisation"), True),
            _fmt(m("processed"), False),
            _fmt(m("mtbf_h"), False),
            _fmt(m("mttr_h"), False),
            _fmt(m("energy_kwh"), False),
        )
    console.print(stations)

    states = Table(title="Share of time by machine state", title_justify="left")
    states.add_column("station")
    for name in state_names():
        states.add_column(name.replace("_", "-"), justify="right")
    for sid in ids:
        states.add_row(sid, *(_fmt(summary[f"stations.{sid}.state_share.{n}"].mean, True) for n in state_names()))
    console.print(states)


_DELTA_ROWS = [
    ("line.throughput_per_hour", "Throughput (good units/h)"),
    ("line.oee", "OEE"),
    ("line.lead_time_mean_h", "Order lead time, mean (h)"),
    ("line.lead_time_p95_h", "Order lead time, p95 (h)"),
    ("line.on_time_delivery", "On-time delivery"),
    ("line.wip_mean", "WIP (units)"),
    ("line.scrap_rate", "Scrap rate"),
    ("line.energy_per_good_unit_kwh", "Energy per good unit (kWh)"),
]


def _money(value: float | None) -> str:
    return "–" if value is None else f"€ {value:,.0f}"


def print_comparison(comparison: Comparison, console: Console) -> None:
    """Print, per alternative, the KPI changes with paired confidence intervals and the business case."""
    base = comparison.baseline.summary()
    reps = comparison.baseline.replications
    console.print(
        f"[bold]{comparison.scenario.name}[/bold] — baseline against {len(comparison.alternatives)} alternative(s), "
        f"{reps} paired replications (common random numbers); baseline bottleneck: "
        f"{comparison.baseline.bottleneck()}",
        highlight=False,
    )
    for alt in comparison.alternatives:
        summary = alt.result.summary()
        a = alt.alternative
        table = Table(
            title=f"{alt.label}: {a.description or 'investment'} — capex {_money(a.capex)}, "
            f"opex {_money(a.opex_per_year)}/year",
            title_justify="left",
        )
        for col in ("KPI", "baseline", alt.label, "change", "95 % CI of the change"):
            table.add_column(col, justify="left" if col == "KPI" else "right")
        for key, label in _DELTA_ROWS:
            share = key.split(".")[1] in _SHARES
            d = alt.deltas[key]
            ci = "" if d.low is None else f"[{_fmt(d.low, share)}, {_fmt(d.high, share)}]"
            table.add_row(label, _fmt(base[key].mean, share), _fmt(summary[key].mean, share), _fmt(d.mean, share), ci)
        console.print(table)
        if alt.case is None:
            continue
        case = alt.case
        fin = Table(
            title=f"{alt.label}: business case (per year, scaled from the simulated window)", title_justify="left"
        )
        fin.add_column("")
        fin.add_column("without funding", justify="right")
        fin.add_column("with funding", justify="right")
        f = case.figures

        def pair(name: str, fmt: Any, f: dict[str, Summary] = f) -> tuple[str, str]:
            return fmt(f[f"{name}_without_funding"]), fmt(f[f"{name}_with_funding"])

        def money_ci(s: Summary) -> str:
            return _money(s.mean) + ("" if s.half_width is None else f" ± {s.half_width:,.0f}")

        def pct(s: Summary) -> str:
            return "–" if s.mean is None else f"{100 * s.mean:.1f}%" + (f" (n={s.n})" if s.n < reps else "")

        def years(s: Summary) -> str:
            if s.mean is None:
                return "never"
            return f"{s.mean:.1f} y" + (f" (in {s.n}/{reps})" if s.n < reps else "")

        fin.add_row("Yearly benefit", money_ci(f["annual_benefit"]), money_ci(f["annual_benefit"]))
        fin.add_row("NPV", *pair("npv", money_ci))
        fin.add_row("IRR", *pair("irr", pct))
        fin.add_row("Payback", *pair("payback_years", years))
        fin.add_row("Discounted payback", *pair("discounted_payback_years", years))
        fin.add_row("Public money (grant + tax credits)", "", _money(case.public_money))
        per_euro = f["npv_per_public_euro"].mean
        fin.add_row("NPV per euro of public money", "", "–" if per_euro is None else f"{per_euro:.2f}")
        console.print(fin)
