"""Static, self-contained HTML report of a comparison: one file, plotly.js inlined once, no network when viewed.

:func:`build_report` renders the JSON document of ``Comparison.to_json()`` (or a saved ``simline compare --json``),
so a report can be rebuilt from a file; :func:`write_report` is what ``simline compare --report`` calls.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import plotly
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from dashboards.figures import (
    fig_cash_flow,
    fig_kpi_comparison,
    fig_lead_time,
    fig_state_breakdown,
    fmt,
    scenario_colours,
)

__all__ = ["build_report", "json_safe", "report_figures", "summary_rows", "verdict", "write_report"]

Doc = Mapping[str, Any]

CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
"""Content security policy of the page: inline code only, so nothing can be fetched when it is viewed."""

_CSS = """
body{font-family:"Segoe UI",Helvetica,Arial,sans-serif;color:#222;margin:0;background:#f6f7f9;line-height:1.45}
header{background:#1f3a5f;color:#fff;padding:18px 32px}header h1{margin:0 0 6px;font-size:26px}
header p{margin:0;opacity:.9}main{max-width:1320px;margin:0 auto;padding:8px 24px 40px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);margin:18px 0;padding:14px 20px}
h2{font-size:20px;margin:4px 0 8px;color:#1f3a5f}.caption{color:#444;margin:0 0 6px}
.table-wrap{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:13.5px}
th,td{border-bottom:1px solid #e3e3e3;padding:7px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}td:first-child{min-width:150px}td.num{text-align:right;white-space:nowrap}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.small{font-size:12px;color:#555}tr.figures td{border-bottom:none}td.verdict{padding:6px 12px 12px}
.good{border-left:5px solid #2ca02c;background:#eef8ee}.bad{border-left:5px solid #d62728;background:#fdeeee}
.unsure{border-left:5px solid #f2c12e;background:#fdf7e3}.none{border-left:5px solid #bbb}
footer{color:#666;font-size:12px;text-align:center;padding:12px}
"""

_CAPTIONS = {
    "kpis": "Bars are means over the replications; whiskers are 95 % confidence intervals. Hover a bar for the "
    "change against the baseline with its paired confidence interval.",
    "states": "How each station's machines spend the observed time: green is processing, red breakdowns, grey "
    "waiting for work, orange waiting for space downstream. The station that waits least is the bottleneck.",
    "lead-time": "From order arrival to the last unit finished. The shaded bar spans the quantiles in the data "
    "(median to p95); the diamond is the mean with its 95 % confidence interval.",
    "cash-flow": "Money in minus money out, discounted, added up year by year from today (year 0, the "
    "investment). Where a curve crosses the zero line (★) the investment has paid for itself. The curves use the "
    "mean cash flows of all replications; the table's payback averages only the replications that pay back.",
}


def json_safe(value: Any) -> Any:
    """``value`` with NaN and ±inf replaced by ``None`` and tuples made lists, at any depth."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def report_figures(doc: Doc) -> list[tuple[str, str, go.Figure]]:
    """(anchor, heading, figure) of every figure in the report; no cash-flow chart without business cases."""
    out: list[tuple[str, str, Callable[[Doc], go.Figure]]] = [
        ("kpis", "Line KPIs: baseline against the alternatives", fig_kpi_comparison),
        ("states", "Machine states per station", fig_state_breakdown),
        ("lead-time", "Order lead time", fig_lead_time),
    ]
    if any(alt.get("business_case") for alt in doc.get("alternatives") or []):
        out.append(("cash-flow", "Cumulative discounted cash flow", fig_cash_flow))
    return [(anchor, heading, make(doc)) for anchor, heading, make in out]


def _sign(s: Mapping[str, Any]) -> str:
    """``positive`` / ``negative`` when the whole 95 % CI of an NPV is on one side of zero, else ``uncertain``."""
    low, high = (s.get("ci95") or [None, None])[:2]
    if low is None or high is None:
        low = high = s.get("mean")
    if low is not None and low > 0:
        return "positive"
    if high is not None and high < 0:
        return "negative"
    return "uncertain"


def _npv(s: Mapping[str, Any]) -> str:
    low, high = (s.get("ci95") or [None, None])[:2]
    ci = "" if low is None or high is None or low == high else f", 95 % CI {fmt(low, 'EUR')} to {fmt(high, 'EUR')}"
    return f"NPV {fmt(s.get('mean'), 'EUR')}{ci}"


def verdict(alt: Mapping[str, Any], runs: int) -> tuple[str, str]:
    """A plain-language verdict on an alternative and its class (``good``, ``bad``, ``unsure`` or ``none``)."""
    case = alt.get("business_case")
    if not case:
        return "none", "No business case was computed."
    figures = case.get("figures") or {}
    funded = (case.get("public_money") or 0) > 0
    tag = "with_funding" if funded else "without_funding"
    npv = figures.get(f"npv_{tag}") or {}
    years = max(0, len(case.get(f"cash_flows_{tag}") or [0]) - 1)
    how = " with funding" if funded else ""
    sign = _sign(npv)
    if sign == "positive":
        klass, text = "good", f"Worthwhile{how}: {_npv(npv)}."
    elif sign == "negative":
        klass, text = "bad", f"Not worthwhile{how}: it loses money over {years} years ({_npv(npv)})."
    else:
        klass, text = "unsure", f"Uncertain{how}: {_npv(npv)} — could go either way; run more replications."
    pay = figures.get(f"discounted_payback_years_{tag}") or {}
    n = int(pay.get("n") or 0)
    if n:
        text += f" Pays back in {pay.get('mean', 0):.1f} years{how} (discounted)"
        text += "." if n >= runs else f" in {n} of {runs} runs; in the others not within {years} years."
    else:
        text += f" Does not pay back within {years} years{how}."
    if funded:
        plain = figures.get("npv_without_funding") or {}
        text += {
            "positive": " Worthwhile even without funding.",
            "negative": f" Without funding the NPV is negative ({_npv(plain)}).",
            "uncertain": f" Without funding it could go either way ({_npv(plain)}).",
        }[_sign(plain)]
        share = float(case.get("funding_decisive_share") or 0.0)
        if share > 0:
            text += f" Funding turns a loss into a gain in {share:.0%} of the runs."
    return klass, text


def _pm(s: Mapping[str, Any] | None, unit: str) -> str:
    """``mean ± half-width``."""
    s = s or {}
    half = s.get("half_width")
    return fmt(s.get("mean"), unit) + ("" if half is None else f" ± {fmt(half, unit)}")


def _runs(s: Mapping[str, Any] | None, runs: int, text: str, missing: str) -> str:
    n = int((s or {}).get("n") or 0)
    if n == 0:
        return missing
    return text if n >= runs else f"{text} <span class=small>({n}/{runs} runs)</span>"


def _pair(without: str, with_: str) -> str:
    return f"{without} <span class=small>without</span><br>{with_} <span class=small>with</span>"


def summary_rows(doc: Doc) -> list[dict[str, str]]:
    """One row of HTML-escaped cells per alternative for the summary table."""
    runs = int(doc.get("replications") or 0)
    rows: list[dict[str, str]] = []
    for alt in doc.get("alternatives") or []:
        case = alt.get("business_case") or {}
        f = case.get("figures") or {}
        klass, text = verdict(alt, runs)
        irr = [f.get(f"irr_{t}") for t in ("without_funding", "with_funding")]
        pay = [f.get(f"discounted_payback_years_{t}") for t in ("without_funding", "with_funding")]
        opex = float(alt.get("opex_per_year") or 0)
        credits = sum(case.get("tax_credits") or [])
        rows.append(
            {
                "name": html.escape(str(alt["name"])),
                "description": html.escape(str(alt.get("description") or "")),
                "capex": fmt(alt.get("capex"), "EUR")
                + (f"<br><span class=small>+ {fmt(opex, 'EUR')} a year</span>" if opex else ""),
                "benefit": _pm(f.get("annual_benefit"), "EUR"),
                "npv_without": _pm(f.get("npv_without_funding"), "EUR"),
                "npv_with": _pm(f.get("npv_with_funding"), "EUR"),
                "irr": _pair(*(_runs(s, runs, fmt((s or {}).get("mean"), "share"), "n/a") for s in irr)),
                "payback": _pair(*(_runs(s, runs, fmt((s or {}).get("mean"), "years"), "never") for s in pay)),
                "public": f"{fmt(case.get('public_money'), 'EUR')}<br><span class=small>grant "
                f"{fmt(case.get('grant'), 'EUR')}<br>tax credits {fmt(credits, 'EUR')}</span>",
                "per_euro": fmt((f.get("npv_per_public_euro") or {}).get("mean")),
                "verdict": html.escape(text),
                "class": klass,
            }
        )
    return rows


_COLUMNS = [
    ("capex", "Investment"),
    ("benefit", "Yearly benefit ± 95 % CI"),
    ("npv_without", "NPV without funding"),
    ("npv_with", "NPV with funding"),
    ("irr", "IRR (without / with funding)"),
    ("payback", "Discounted payback (without / with funding)"),
    ("public", "Public money"),
    ("per_euro", "NPV per public euro"),
]


def _table(doc: Doc) -> str:
    colours = scenario_colours(doc)
    head = "".join(f"<th>{h}</th>" for _, h in _COLUMNS)
    body = []
    for row in summary_rows(doc):
        swatch = f'<span class=swatch style="background:{colours[html.unescape(row["name"])]}"></span>'
        name = f"{swatch}<b>{row['name']}</b><br><span class=small>{row['description']}</span>"
        cells = "".join(f"<td class=num>{row[key]}</td>" for key, _ in _COLUMNS)
        body.append(f"<tr class=figures><td>{name}</td>{cells}</tr>")
        verdict_cell = f"<td colspan={len(_COLUMNS) + 1} class='verdict {row['class']}'>"
        body.append(f"<tr>{verdict_cell}<b>Verdict:</b> {row['verdict']}</td></tr>")
    if not body:
        return "<p>No alternatives in this comparison.</p>"
    return (
        f"<div class=table-wrap><table id=summary-table><thead><tr><th>Alternative</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _method(doc: Doc) -> str:
    e = doc.get("economics") or {}
    fund = doc.get("funding")
    runs, horizon, warmup = doc.get("replications"), doc.get("horizon_hours") or 0, doc.get("warmup_hours") or 0
    items = [
        f"<b>Replications.</b> Each scenario is simulated {runs} times for {horizon:g} h; the first {warmup:g} h "
        "are discarded as warm-up. Figures are means over the replications with Student-t 95 % confidence "
        "intervals (simulation noise only: prices, costs and the model itself are taken as given).",
        "<b>Common random numbers.</b> In each replication the baseline and every alternative draw from the same "
        "named random streams (the same orders, processing times and failures where the line allows), so a "
        "difference comes from the investment rather than from luck.",
        "<b>Paired confidence intervals.</b> Changes against the baseline are the mean of the per-replication "
        "differences with their own 95 % CI, which is much tighter than comparing two separate intervals.",
        "<b>Yearly benefit.</b> Contribution margin (revenue − material − energy at "
        f"{fmt(e.get('energy_price_per_kwh'))} EUR/kWh − staffed hours at {fmt(e.get('labour_cost_per_hour'))} EUR/h − "
        f"{fmt(e.get('lateness_penalty_per_order'))} EUR per late order − {fmt(e.get('lateness_penalty_per_day'))} "
        f"EUR per day late), scaled from the observed window to {fmt(e.get('hours_per_year'))} h a year; the "
        "benefit is the alternative's margin minus the baseline's in the same replication.",
        "<b>Cash flows.</b> Year 0: − capex (+ grant). Years 1 to N: benefit − running cost (+ tax credit); year 1 "
        "also loses the margin of the installation downtime. N is the shorter of the appraisal horizon "
        f"({e.get('horizon_years')} years) and the useful life. Discount rate "
        f"{(e.get('discount_rate') or 0) * 100:g} % a year. NPV, IRR and paybacks are computed per replication "
        "and averaged; IRR and payback only over the replications where they exist (hence 'k of n runs'). "
        "The cash-flow chart shows the mean cash flows; its zero crossing can differ from the mean payback.",
    ]
    if fund:
        parts = [html.escape(str(fund.get("programme") or "Public co-funding")) + ":"]
        if g := fund.get("grant"):
            parts.append(
                f"grant of {fmt(g.get('share'), 'share')} of the eligible capex"
                + (f", at most {fmt(g['cap'], 'EUR')}" if g.get("cap") is not None else "")
                + (f", for projects of at least {fmt(g['min_project'], 'EUR')}" if g.get("min_project") else "")
                + ";"
            )
        if t := fund.get("tax_credit"):
            parts.append(
                f"tax credit of {fmt(t.get('share'), 'share')} spread over {t.get('years')} years"
                + (f", at most {fmt(t['cap'], 'EUR')}" if t.get("cap") is not None else "")
                + (
                    f", usable up to {fmt(t['tax_capacity_per_year'], 'EUR')} a year"
                    if t.get("tax_capacity_per_year") is not None
                    else ""
                )
                + "."
            )
        parts.append(
            "Public money is grant plus tax credits (not discounted); NPV per public euro is the NPV without "
            "funding divided by it."
        )
        items.append("<b>Funding.</b> " + " ".join(parts))
    else:
        items.append("<b>Funding.</b> The scenario names no public co-funding.")
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


_HOW_TO_READ = """<ul>
<li>The <b>table</b> is the short answer: what each alternative costs, what it earns a year and whether it pays
back. "± x" is the 95 % confidence interval from the replications: if an NPV interval contains zero, the
simulation cannot tell yet whether the investment makes or loses money.</li>
<li><b>NPV</b> (net present value) is all future money in and out, discounted to today: above zero means the
investment earns more than the discount rate. <b>IRR</b> is the yearly return at which NPV is zero. The
<b>discounted payback</b> is when the discounted cumulative cash flow is back at zero.</li>
<li>The <b>charts</b> show why: which KPIs the investment moves, where machine time goes, how long orders
take, and the money year by year. Hover any point for exact values; click a legend entry to hide it.</li>
</ul>"""


def build_report(doc: Doc, *, generated: datetime | None = None) -> str:
    """The report as one self-contained HTML page (plotly.js inlined once; no CDN, no network when viewed).

    Args:
        doc: The comparison document (``Comparison.to_json()``), JSON-safe (no NaN).
        generated: Time stamp printed in the header; now by default.
    """
    when = (generated or datetime.now()).strftime("%Y-%m-%d %H:%M")
    name = html.escape(str(doc.get("scenario", "")))
    horizon, warmup = float(doc.get("horizon_hours") or 0), float(doc.get("warmup_hours") or 0)
    meta = (
        f"{doc.get('replications')} replications · seed {doc.get('seed')} · {horizon - warmup:g} h observed per "
        f"replication ({horizon:g} h horizon, {warmup:g} h warm-up) · bottleneck: "
        f"{html.escape(str(doc['baseline'].get('bottleneck') or 'n/a'))} · generated {when} · "
        f"simline {html.escape(str(doc.get('simline_version', '')))}"
    )
    sections = [
        f"<section id=summary><h2>Business case at a glance</h2>{_table(doc)}</section>",
        f"<section id=how-to-read><h2>How to read this</h2>{_HOW_TO_READ}</section>",
    ]
    config = {"displaylogo": False, "responsive": True}
    for anchor, heading, fig in report_figures(doc):
        div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{anchor}", config=config)
        sections.append(
            f"<section id={anchor}><h2>{heading}</h2><p class=caption>{_CAPTIONS[anchor]}</p>{div}</section>"
        )
    sections.append(f"<section id=method><h2>Method and assumptions</h2>{_method(doc)}</section>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Investment comparison – {name}</title>
<style>{_CSS}</style>
<script type="text/javascript">/* plotly.js {plotly.__version__}, inlined so the report works offline */
{get_plotlyjs()}</script>
</head>
<body>
<header><h1>Investment comparison: {name}</h1><p>{meta}</p></header>
<main>
{"".join(sections)}
</main>
<footer>Generated by simline {html.escape(str(doc.get("simline_version", "")))} from a
{html.escape(str(doc.get("format")))} document.</footer>
</body>
</html>
"""


class _Comparison(Protocol):
    def to_json(self) -> dict[str, Any]: ...


def write_report(comparison: _Comparison, path: Path) -> None:
    """Write the HTML report of ``comparison`` (a :class:`simline.compare.Comparison`) to ``path``, UTF-8."""
    Path(path).write_text(build_report(json_safe(comparison.to_json())), encoding="utf-8")
