"""KPI tables for the terminal (rich): what `simline run` prints."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from simline.experiment import ExperimentResult, Summary
from simline.kpis import KPI_UNITS, state_names

__all__ = ["print_result"]

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
