"""Plotly figures of a comparison, built from its JSON document (``Comparison.to_json()`` or a saved ``--json``).

Every function is pure: it reads the document and returns a figure (or table rows); nothing writes files. Each
scenario keeps its colour in every figure (:func:`scenario_colours`); machine states have their own palette.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from simline.finance import cumulative, payback_years

__all__ = [
    "BASELINE",
    "KEY_KPIS",
    "STATE_COLOURS",
    "fig_cash_flow",
    "fig_kpi_comparison",
    "fig_lead_time",
    "fig_state_breakdown",
    "fmt",
    "fmt_ci",
    "lead_time_statistics",
    "scenario_colours",
    "scenarios",
    "station_states",
]

Doc = Mapping[str, Any]

BASELINE = "baseline"
"""Label of the current line in every figure."""

_PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#8C564B", "#17BECF"]
_BASELINE_COLOUR = "#7F7F7F"

STATE_COLOURS: dict[str, str] = {
    "processing": "#2CA02C",
    "setup": "#F2C12E",
    "idle": "#D9D9D9",
    "blocked": "#FF7F0E",
    "down": "#D62728",
    "maintenance": "#9467BD",
    "standby": "#9ECAE1",
    "off_shift": "#525252",
}
"""Colour of each machine state (also fixes their order in the stacked bars)."""

KEY_KPIS: list[tuple[str, str, str, bool]] = [
    ("line.throughput_per_hour", "Throughput", "units/h", True),
    ("line.oee", "OEE", "share", True),
    ("line.lead_time_mean_h", "Mean lead time", "h", False),
    ("line.on_time_delivery", "On-time delivery", "share", True),
    ("line.wip_mean", "Work in process", "units", False),
    ("line.energy_per_good_unit_kwh", "Energy per good unit", "kWh/unit", False),
]
"""(KPI name, title, unit, higher is better) of the line KPIs compared; unit ``share`` is shown in %."""

_FONT = {"family": "Segoe UI, Helvetica, Arial, sans-serif", "size": 13}
_QUANTILE = re.compile(r"^line\.lead_time_p(\d+(?:\.\d+)?)_h$")


def fmt(value: float | None, unit: str = "", signed: bool = False) -> str:
    """A value for people: shares in %, money in EUR, others with sensible digits; a true minus sign."""
    if value is None:
        return "n/a"
    sign = "+" if signed else ""
    if unit == "share":
        text = f"{value * 100:{sign}.1f}" + (" points" if signed else " %")
    elif unit == "EUR":
        text = ("-\u2060" if value < 0 else sign) + f"€{abs(value):,.0f}"  # word joiner: no break after −
    else:
        size = abs(value)
        digits = 0 if size >= 100 else 1 if size >= 10 else 2 if size >= 0.1 else 4
        text = f"{value:{sign},.{digits}f} {unit}".rstrip()
    return text.replace("-", "−")


def fmt_ci(summary: Mapping[str, Any] | None, unit: str = "", signed: bool = False) -> str:
    """``95 % CI low – high`` of a summary, or a note that there is none."""
    if not summary:
        return "no data"
    low, high = (summary.get("ci95") or [None, None])[:2]
    if low is None or high is None:
        return f"no CI ({summary.get('n', 0)} run(s) define it)"
    return f"95 % CI {fmt(low, unit, signed)} to {fmt(high, unit, signed)}"


def scenarios(doc: Doc) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(label, KPI summaries, paired deltas to the baseline) of the baseline and then each alternative."""
    out: list[tuple[str, dict[str, Any], dict[str, Any]]] = [(BASELINE, dict(doc["baseline"]["kpis"]), {})]
    for alt in doc.get("alternatives") or []:
        out.append((str(alt["name"]), dict(alt.get("kpis") or {}), dict(alt.get("deltas") or {})))
    return out


def scenario_colours(doc: Doc) -> dict[str, str]:
    """The colour of each scenario label: grey for the baseline, then a colour-blind-safe palette."""
    colours = {BASELINE: _BASELINE_COLOUR}
    for i, alt in enumerate(doc.get("alternatives") or []):
        colours[str(alt["name"])] = _PALETTE[i % len(_PALETTE)]
    return colours


def _layout(fig: go.Figure, title: str, height: int, legend_y: float = 1.02) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left", "y": 0.99, "yanchor": "top"},
        height=height,
        font=_FONT,
        template="plotly_white",
        margin={"l": 70, "r": 30, "t": 100, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": legend_y, "x": 0, "xanchor": "left"},
        hoverlabel={"align": "left"},
    )
    return fig


def fig_kpi_comparison(doc: Doc) -> go.Figure:
    """Key line KPIs, baseline against each alternative: bars of the mean with 95 % CI error bars.

    One subplot per KPI (their units differ); the hover adds the paired difference to the baseline.
    """
    colours = scenario_colours(doc)
    runs = doc.get("replications")
    titles = [f"{t} ({'%' if u == 'share' else u}) {'↑' if up else '↓'} better" for _, t, u, up in KEY_KPIS]
    fig = make_subplots(rows=2, cols=3, subplot_titles=titles, horizontal_spacing=0.08, vertical_spacing=0.2)
    for k, (kpi, title, unit, _) in enumerate(KEY_KPIS):
        row, col = divmod(k, 3)
        for name, kpis, deltas in scenarios(doc):
            s = kpis.get(kpi) or {}
            lines = [
                f"<b>{name}</b>",
                f"{title}: {fmt(s.get('mean'), unit)}",
                f"{fmt_ci(s, unit)} ({s.get('n', 0)} of {runs} runs)",
            ]
            if name != BASELINE:
                d = deltas.get(kpi) or {}
                lines.append(f"vs baseline: {fmt(d.get('mean'), unit, True)} ({fmt_ci(d, unit, True)}, paired)")
            fig.add_trace(
                go.Bar(
                    x=[name],
                    y=[s.get("mean")],
                    error_y={"type": "data", "array": [s.get("half_width")], "visible": True, "color": "#333"},
                    marker_color=colours[name],
                    name=name,
                    legendgroup=name,
                    showlegend=k == 0,
                    hovertext=["<br>".join(lines)],
                    hoverinfo="text",
                    meta={"kpi": kpi, "scenario": name},
                ),
                row=row + 1,
                col=col + 1,
            )
        fig.update_yaxes(
            title_text="%" if unit == "share" else unit,
            tickformat=".0%" if unit == "share" else None,
            rangemode="tozero",
            row=row + 1,
            col=col + 1,
        )
    fig.update_xaxes(showticklabels=True, tickangle=0)
    return _layout(fig, "Key line KPIs: mean over replications with 95 % confidence interval", 700, 1.07)


def station_states(doc: Doc) -> tuple[list[str], list[str]]:
    """Stations (in route order) and the machine states with a non-zero share somewhere in the document."""
    stations: list[str] = []
    states: set[str] = set()
    for _, kpis, _ in scenarios(doc):
        for name, s in kpis.items():
            parts = name.split(".")
            if parts[0] == "stations" and len(parts) == 4 and parts[2] == "state_share":
                if parts[1] not in stations:
                    stations.append(parts[1])
                if (s or {}).get("mean"):
                    states.add(parts[3])
    order = [st for st in STATE_COLOURS if st in states] + sorted(states - set(STATE_COLOURS))
    return stations, order


def fig_state_breakdown(doc: Doc) -> go.Figure:
    """Per scenario, stacked horizontal bars of the share of time each station's machines spend in each state."""
    items = scenarios(doc)
    stations, states = station_states(doc)
    fig = make_subplots(
        rows=len(items), cols=1, shared_xaxes=True, subplot_titles=[n for n, _, _ in items], vertical_spacing=0.06
    )
    for row, (name, kpis, _) in enumerate(items, start=1):
        for state in states:
            sums = [kpis.get(f"stations.{st}.state_share.{state}") or {} for st in stations]
            fig.add_trace(
                go.Bar(
                    y=stations,
                    x=[s.get("mean") for s in sums],
                    orientation="h",
                    name=state.replace("_", " "),
                    legendgroup=state,
                    showlegend=row == 1,
                    marker_color=STATE_COLOURS.get(state, "#BCBD22"),
                    hovertext=[
                        f"<b>{name}</b> · station {st}<br>{state.replace('_', ' ')}: "
                        f"{fmt(s.get('mean'), 'share')} of observed time<br>{fmt_ci(s, 'share')}"
                        for st, s in zip(stations, sums, strict=True)
                    ],
                    hoverinfo="text",
                    meta={"scenario": name, "state": state},
                ),
                row=row,
                col=1,
            )
        fig.update_yaxes(autorange="reversed", title_text="station", row=row, col=1)
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_xaxes(title_text="share of observed time (%)", row=len(items), col=1)
    fig.update_layout(barmode="stack", bargap=0.25)
    height = 150 + len(items) * (60 + 32 * max(1, len(stations)))
    title = "Where machine time goes: state shares per station (mean over replications)"
    return _layout(fig, title, height, 1.0 + 30 / (height - 150))


def lead_time_statistics(doc: Doc) -> list[tuple[str, str, str]]:
    """(KPI name, label, marker symbol) of the lead-time statistics in the document: quantiles and the mean."""
    quantiles = sorted(
        ((float(m.group(1)), name) for name in doc["baseline"]["kpis"] if (m := _QUANTILE.match(name))),
    )
    symbols = ["circle", "triangle-up", "square", "cross", "x", "star"]
    out = [
        (name, "median (p50)" if q == 50 else f"p{q:g}", symbols[i % len(symbols)])
        for i, (q, name) in enumerate(quantiles)
    ]
    return [*out, ("line.lead_time_mean_h", "mean ± 95 % CI", "diamond")]


def fig_lead_time(doc: Doc) -> go.Figure:
    """Order lead time per scenario as point ranges: the quantiles joined by a bar, and the mean with its CI.

    The quantiles are the mean over replications of each run's quantile (an online histogram).
    """
    items = scenarios(doc)
    colours = scenario_colours(doc)
    stats = lead_time_statistics(doc)
    names = [n for n, _, _ in items]
    fig = go.Figure()
    for name, kpis, _ in items:
        found = [(kpis.get(k) or {}).get("mean") for k, _, _ in stats[:-1]]
        xs = [float(x) for x in found if x is not None]
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=[min(xs), max(xs)],
                    y=[name, name],
                    mode="lines",
                    line={"color": colours[name], "width": 10},
                    opacity=0.35,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
    for kpi, label, symbol in stats:
        sums = [kpis.get(kpi) or {} for _, kpis, _ in items]
        error = {"type": "data", "array": [s.get("half_width") for s in sums], "visible": True, "color": "#333"}
        fig.add_trace(
            go.Scatter(
                x=[s.get("mean") for s in sums],
                y=names,
                mode="markers",
                marker={"symbol": symbol, "size": 13, "color": [colours[n] for n in names], "line": {"width": 1}},
                error_x=error if kpi == "line.lead_time_mean_h" else None,
                name=label,
                legendgroup=label,
                showlegend=False,
                hovertext=[
                    f"<b>{n}</b><br>{label.split(' ±')[0]} lead time: {fmt(s.get('mean'), 'h')}<br>{fmt_ci(s, 'h')}"
                    + ("" if kpi == "line.lead_time_mean_h" else "<br>(mean over replications of each run's value)")
                    for n, s in zip(names, sums, strict=True)
                ],
                hoverinfo="text",
                meta={"kpi": kpi},
            )
        )
        fig.add_trace(  # a neutral legend entry for the statistic
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker={"symbol": symbol, "size": 11, "color": "#555"},
                name=label,
                legendgroup=label,
                hoverinfo="skip",
            )
        )
    fig.update_yaxes(categoryorder="array", categoryarray=names, autorange="reversed", title_text="scenario")
    fig.update_xaxes(title_text="order lead time, arrival to last unit finished (h)", rangemode="tozero")
    return _layout(fig, "Order lead time: median, tail (p95) and mean with 95 % CI", 180 + 70 * len(items))


def _payback_text(figures: Mapping[str, Any], tag: str, runs: int) -> str:
    s = figures.get(f"discounted_payback_years_{tag}") or {}
    n = s.get("n", 0)
    if not n:
        return f"never paid back within the horizon in any of {runs} runs"
    return f"mean over runs {fmt(s.get('mean'), 'years')} (paid back in {n} of {runs} runs)"


def fig_cash_flow(doc: Doc) -> go.Figure:
    """Cumulative discounted cash flow of each alternative, with funding (solid) and without (dashed).

    The curves are the mean yearly cash flows of the replications, discounted at ``economics.discount_rate``;
    a star marks where a curve crosses zero (its discounted payback, years interpolated linearly within a year).
    """
    colours = scenario_colours(doc)
    rate = float((doc.get("economics") or {}).get("discount_rate") or 0.0)
    runs = int(doc.get("replications") or 0)
    fig = go.Figure()
    for alt in doc.get("alternatives") or []:
        case = alt.get("business_case")
        if not case:
            continue
        name = str(alt["name"])
        figures = case.get("figures") or {}
        for tag, label, dash in (("with_funding", "with funding", "solid"), ("without_funding", "without", "dash")):
            flows = [float(f) for f in case.get(f"cash_flows_{tag}") or []]
            if not flows:
                continue
            cum = cumulative(flows, rate)
            fig.add_trace(
                go.Scatter(
                    x=list(range(len(cum))),
                    y=cum,
                    mode="lines+markers",
                    line={"color": colours[name], "dash": dash, "width": 2.5},
                    name=f"{name} – {label}",
                    legendgroup=name,
                    hovertext=[
                        f"<b>{name}</b> {label} funding<br>end of year {t}: {fmt(c, 'EUR')} cumulative, discounted"
                        if t
                        else f"<b>{name}</b> {label} funding<br>today: {fmt(c, 'EUR')} (investment net of grant)"
                        for t, c in enumerate(cum)
                    ],
                    hoverinfo="text",
                    meta={"scenario": name, "funding": tag, "kind": "curve"},
                )
            )
            years = payback_years(flows, rate) if cum[0] < 0 else None
            if years is not None:
                fig.add_trace(
                    go.Scatter(
                        x=[years],
                        y=[0.0],
                        mode="markers",
                        marker={"symbol": "star", "size": 16, "color": colours[name], "line": {"width": 1}},
                        name=f"{name} – payback {label}",
                        legendgroup=name,
                        showlegend=False,
                        hovertext=[
                            f"<b>{name}</b> {label} funding: discounted payback after {years:.1f} years "
                            f"(curve of the mean cash flows)<br>{_payback_text(figures, tag, runs)}"
                        ],
                        hoverinfo="text",
                        meta={"scenario": name, "funding": tag, "kind": "payback"},
                    )
                )
    fig.add_hline(y=0, line={"color": "#222", "width": 1.5})
    fig.update_xaxes(title_text="time after the investment (years)", dtick=1, rangemode="tozero")
    fig.update_yaxes(title_text=f"cumulative cash flow, discounted at {rate * 100:g} % a year (EUR)")
    fig.update_yaxes(tickformat=",.0f", separatethousands=True)
    title = "Cumulative discounted cash flow: solid with funding, dashed without; ★ = payback"
    _layout(fig, title, 540)
    return fig.update_layout(legend={"orientation": "v", "x": 1.02, "y": 1, "xanchor": "left", "yanchor": "top"})
