"""The HTML report of a comparison: its figures against the JSON document, self-containment, and a real browser."""

from __future__ import annotations

import base64
import copy
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest
import yaml
from plotly.offline import get_plotlyjs

from dashboards.figures import (
    BASELINE,
    KEY_KPIS,
    fig_cash_flow,
    fig_kpi_comparison,
    fig_lead_time,
    fig_state_breakdown,
    scenario_colours,
    station_states,
)
from dashboards.report import build_report, json_safe, report_figures, summary_rows, verdict, write_report
from simline.compare import Comparison, run_comparison
from simline.experiment import summarise
from simline.finance import business_case
from simline.scenario import load_scenario
from simline.scenario.yamlsource import read_yaml

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"

INVESTMENTS: dict[str, Any] = {
    "economics": {"energy_price_per_kwh": 0.25, "labour_cost_per_hour": 30, "lateness_penalty_per_order": 5},
    "funding": {
        "programme": "Illustrative regional call",
        "grant": {"share": 0.4, "cap": 50000, "min_project": 10000},
        "tax_credit": {"share": 0.2, "years": 3},
    },
    "investments": [
        {
            "name": "pdm",
            "description": "Condition monitoring on the laser cutter",
            "capex": 18000,
            "opex_per_year": 1500,
            "installation_downtime_hours": 4,
            "changes": [
                {"lever": "predictive_maintenance", "stations": ["cut"], "detection_share": 0.8, "maintenance_time": 15}
            ],
        },
        {
            "name": "second_packer",
            "description": "A second packing table",
            "capex": 12000,
            "changes": [{"lever": "extra_capacity", "station": "pack"}],
        },
        {
            "name": "standby",
            "description": "Idle machines go to standby",
            "capex": 5000,
            "changes": [{"lever": "energy_management", "standby_after_minutes": 10, "standby_power_share": 0.2}],
        },
    ],
}


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quickstart line, busier, for 48 h with 2 replications, with three investments and funding."""
    data, _ = read_yaml((ROOT / "scenarios" / "quickstart.yaml").read_text(encoding="utf-8"))  # YAML 1.2 booleans
    data["orders"]["rate_per_hour"] = 9
    data["experiment"].update({"horizon_hours": 48, "warmup_hours": 4, "replications": 2, "seed": 7})
    data.update(copy.deepcopy(INVESTMENTS))
    path = tmp_path_factory.mktemp("scenario") / "quick_invest.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def comparison(scenario_file: Path) -> Comparison:
    return run_comparison(load_scenario(scenario_file), jobs=1)


@pytest.fixture(scope="module")
def doc(comparison: Comparison) -> dict[str, Any]:
    return dict(json_safe(comparison.to_json()))


def _case(benefit: float, capex: float, rate: float, grant: float = 0.0, credits: tuple[float, ...] = ()) -> Any:
    return business_case(benefit, capex, 0.0, 5, rate, grant=grant, tax_credits=credits)


def _synthetic_alternative(name: str, benefits: list[float], capex: float, public: float = 0.0) -> dict[str, Any]:
    """An alternative's document part computed with simline.finance from given per-replication benefits."""
    rate = 0.08
    cases = [(_case(b, capex, rate), _case(b, capex, rate, grant=public)) for b in benefits]
    figures: dict[str, Any] = {"annual_benefit": summarise(benefits).as_dict()}
    for i, tag in enumerate(("without_funding", "with_funding")):
        figures[f"npv_{tag}"] = summarise([c[i].npv for c in cases]).as_dict()
        figures[f"irr_{tag}"] = summarise([c[i].irr for c in cases]).as_dict()
        figures[f"discounted_payback_years_{tag}"] = summarise([c[i].discounted_payback_years for c in cases]).as_dict()
    figures["npv_per_public_euro"] = summarise([c[0].npv / public if public else None for c in cases]).as_dict()
    n = len(cases)
    return {
        "name": name,
        "description": "",
        "capex": capex,
        "opex_per_year": 0.0,
        "kpis": {},
        "deltas": {},
        "business_case": {
            "figures": figures,
            "grant": public,
            "tax_credits": [],
            "public_money": public,
            "cash_flows_without_funding": [sum(c[0].cash_flows[t] for c in cases) / n for t in range(6)],
            "cash_flows_with_funding": [sum(c[1].cash_flows[t] for c in cases) / n for t in range(6)],
            "funding_decisive_share": sum(c[0].npv < 0 <= c[1].npv for c in cases) / n,
        },
    }


def _zero_crossing(xs: list[float], ys: list[float]) -> float | None:
    """Where the piecewise linear curve first climbs from below zero to zero or above."""
    for (x0, y0), (x1, y1) in zip(zip(xs, ys, strict=True), zip(xs[1:], ys[1:], strict=True), strict=False):
        if y0 < 0 <= y1:
            return x0 + (x1 - x0) * -y0 / (y1 - y0)
    return None


# ------------------------------------------------------------------------------------------------ figures


def test_kpi_comparison_has_a_bar_per_kpi_and_scenario_with_the_ci_as_error_bar(doc: dict[str, Any]) -> None:
    fig = fig_kpi_comparison(doc)
    names = [BASELINE] + [a["name"] for a in doc["alternatives"]]
    bars = {(t.meta["kpi"], t.meta["scenario"]): t for t in fig.data}
    assert set(bars) == {(kpi, name) for kpi, *_ in KEY_KPIS for name in names}
    for (kpi, name), trace in bars.items():
        kpis = (
            doc["baseline"]["kpis"]
            if name == BASELINE
            else next(a for a in doc["alternatives"] if a["name"] == name)["kpis"]
        )
        assert isinstance(trace, go.Bar)
        assert trace.y[0] == kpis[kpi]["mean"]
        assert trace.error_y.array[0] == kpis[kpi]["half_width"]
        assert trace.error_y.visible
    assert "vs baseline" in bars[(KEY_KPIS[0][0], names[1])].hovertext[0]
    assert sum(t.showlegend for t in fig.data) == len(names)  # one legend entry per scenario


def test_state_breakdown_stacks_the_state_shares_of_each_station(doc: dict[str, Any]) -> None:
    fig = fig_state_breakdown(doc)
    stations, states = station_states(doc)
    assert stations == ["cut", "engrave", "pack"]
    assert {"processing", "idle"} <= set(states)
    assert "standby" in states  # only the energy-management alternative has it
    assert fig.layout.barmode == "stack"
    n = 1 + len(doc["alternatives"])
    assert len(fig.data) == n * len(states)
    for alt in [{"name": BASELINE, "kpis": doc["baseline"]["kpis"]}, *doc["alternatives"]]:
        traces = [t for t in fig.data if t.meta["scenario"] == alt["name"]]
        for t in traces:
            assert list(t.y) == stations and t.orientation == "h"
            expected = [alt["kpis"][f"stations.{s}.state_share.{t.meta['state']}"]["mean"] for s in stations]
            assert list(t.x) == expected
        for i in range(len(stations)):
            assert sum(t.x[i] for t in traces) == pytest.approx(1.0, abs=1e-9)


def test_lead_time_shows_each_statistic_and_says_which(doc: dict[str, Any]) -> None:
    extra = copy.deepcopy(doc)
    for part in [extra["baseline"], *extra["alternatives"]]:
        part["kpis"]["line.lead_time_p90_h"] = dict(part["kpis"]["line.lead_time_p95_h"], mean=1.0)
    for d, quantiles in ((doc, ["p50", "p95"]), (extra, ["p50", "p90", "p95"])):
        fig = fig_lead_time(d)
        points = {t.meta["kpi"]: t for t in fig.data if t.meta}
        assert set(points) == {f"line.lead_time_{q}_h" for q in quantiles} | {"line.lead_time_mean_h"}
        for kpi, trace in points.items():
            parts = [d["baseline"], *d["alternatives"]]
            assert list(trace.x) == [p["kpis"][kpi]["mean"] for p in parts]
            assert list(trace.y) == [BASELINE] + [a["name"] for a in d["alternatives"]]
        assert list(points["line.lead_time_mean_h"].error_x.array) == [
            p["kpis"]["line.lead_time_mean_h"]["half_width"] for p in parts
        ]
        assert "median" in points["line.lead_time_p50_h"].hovertext[0]
        assert "p95" in points["line.lead_time_p95_h"].hovertext[0]
        assert "mean" in points["line.lead_time_mean_h"].hovertext[0]


def test_cash_flow_curves_are_the_discounted_cumulative_mean_flows(doc: dict[str, Any]) -> None:
    fig = fig_cash_flow(doc)
    rate = doc["economics"]["discount_rate"]
    curves = {(t.meta["scenario"], t.meta["funding"]): t for t in fig.data if t.meta["kind"] == "curve"}
    assert len(curves) == 2 * len(doc["alternatives"])
    for alt in doc["alternatives"]:
        for tag in ("with_funding", "without_funding"):
            flows = alt["business_case"][f"cash_flows_{tag}"]
            expected = [sum(f / (1 + rate) ** t for t, f in enumerate(flows[: i + 1])) for i in range(len(flows))]
            assert list(curves[(alt["name"], tag)].y) == pytest.approx(expected)
            assert list(curves[(alt["name"], tag)].x) == list(range(len(flows)))
    assert any(s.type == "line" and s.y0 == 0 == s.y1 for s in fig.layout.shapes)  # the zero line


def test_cash_flow_crosses_zero_at_the_reported_payback(doc: dict[str, Any]) -> None:
    synthetic = copy.deepcopy(doc)
    synthetic["alternatives"] = [
        _synthetic_alternative("fast", [9000.0, 9000.0], 20000.0, public=8000.0),
        _synthetic_alternative("slow", [4000.0, 4000.0], 15000.0),
        _synthetic_alternative("never", [100.0, 100.0], 15000.0),
    ]
    fig = fig_cash_flow(synthetic)
    for alt in synthetic["alternatives"]:
        for tag in ("with_funding", "without_funding"):
            curve = next(t for t in fig.data if t.meta == {"scenario": alt["name"], "funding": tag, "kind": "curve"})
            marks = [t for t in fig.data if t.meta == {"scenario": alt["name"], "funding": tag, "kind": "payback"}]
            reported = alt["business_case"]["figures"][f"discounted_payback_years_{tag}"]["mean"]
            crossing = _zero_crossing(list(curve.x), list(curve.y))
            if reported is None:
                assert crossing is None and not marks
            else:
                assert crossing == pytest.approx(reported, abs=1e-6)
                assert marks and marks[0].x[0] == pytest.approx(reported, abs=1e-6) and marks[0].y[0] == 0
    assert _zero_crossing(list(fig.data[0].x), list(fig.data[0].y)) is not None  # the test saw a crossing


def test_each_scenario_keeps_its_colour_in_every_figure(doc: dict[str, Any]) -> None:
    colours = scenario_colours(doc)
    assert len(set(colours.values())) == len(colours)
    for trace in fig_kpi_comparison(doc).data:
        assert trace.marker.color == colours[trace.meta["scenario"]]
    for trace in fig_cash_flow(doc).data:
        assert (
            trace.line.color == colours[trace.meta["scenario"]] or trace.marker.color == colours[trace.meta["scenario"]]
        )
    mean = next(t for t in fig_lead_time(doc).data if t.meta and t.meta["kpi"] == "line.lead_time_mean_h")
    assert list(mean.marker.color) == [colours[n] for n in mean.y]
    html = build_report(doc)
    for name in doc["alternatives"]:
        assert f"background:{colours[name['name']]}" in html


def test_figures_have_titles_and_axis_titles_with_units(doc: dict[str, Any]) -> None:
    for anchor, _, fig in report_figures(doc):
        assert fig.layout.title.text
        axes = [k for k in fig.layout.to_plotly_json() if re.fullmatch(r"[xy]axis\d*", k)]
        assert all(fig.layout[a].title.text for a in axes if a.startswith("y")), anchor
        if anchor != "kpis":  # there the x axis lists the scenarios
            assert any(re.search(r"\(.+\)$", fig.layout[a].title.text or "") for a in axes if a.startswith("x"))
    kpis = fig_kpi_comparison(doc)
    assert [a.text for a in kpis.layout.annotations][:2] == ["Throughput (units/h) ↑ better", "OEE (%) ↑ better"]


# -------------------------------------------------------------------------------------------- summary table


def test_verdict_in_plain_language() -> None:
    good = _synthetic_alternative("good", [9000.0, 9500.0, 8800.0], 20000.0, public=8000.0)
    klass, text = verdict(good, 3)
    assert klass == "good" and "Worthwhile with funding" in text and "Pays back in" in text
    bad = _synthetic_alternative("bad", [100.0, 150.0, 120.0], 15000.0, public=6000.0)
    klass, text = verdict(bad, 3)
    assert (
        klass == "bad" and "Does not pay back within 5 years" in text and "Without funding the NPV is negative" in text
    )
    unsure = _synthetic_alternative("unsure", [500.0, 9000.0, 1000.0], 15000.0)
    klass, text = verdict(unsure, 3)
    assert klass == "unsure" and "either way" in text and "in 1 of 3 runs" in text
    saved = _synthetic_alternative("saved", [4000.0, 4000.0], 18000.0, public=6000.0)
    assert "Funding turns a loss into a gain in 100% of the runs" in verdict(saved, 2)[1]


def test_summary_rows_give_the_business_case_of_each_alternative(doc: dict[str, Any]) -> None:
    rows = summary_rows(doc)
    assert [r["name"] for r in rows] == [a["name"] for a in doc["alternatives"]]
    pdm = rows[0]
    assert pdm["capex"].startswith("€18,000") and "€1,500 a year" in pdm["capex"]
    case = doc["alternatives"][0]["business_case"]
    assert pdm["public"].startswith(f"€{case['public_money']:,.0f}")
    assert " ± " in pdm["benefit"] and pdm["verdict"] and pdm["class"] in {"good", "bad", "unsure"}


# --------------------------------------------------------------------------------------------- the HTML page


def test_html_is_self_contained(doc: dict[str, Any]) -> None:
    html = build_report(doc)
    assert html.count(get_plotlyjs()[:500]) == 1  # plotly.js inlined exactly once
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and not [s for s in scripts if "src" in s]
    # plotly.js itself names cdn.plot.ly once, as the default topojsonURL (map tiles of geo plots, unused here),
    # and has links to plotly.com in its strings; nothing outside the library may refer to the network.
    start = html.index(get_plotlyjs()[:500])
    outside = html[:start] + html[start + len(get_plotlyjs()) :]
    assert "cdn.plot.ly" not in outside
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", outside)
    assert not re.search(r"https?://", outside)
    assert get_plotlyjs().count("cdn.plot.ly") == 1 and '"https://cdn.plot.ly/un/"' in get_plotlyjs()
    assert "default-src 'none'" in html  # the browser itself refuses any request from the page
    assert html.count('class="plotly-graph-div"') == len(report_figures(doc))


def test_header_and_notes(doc: dict[str, Any]) -> None:
    html = build_report(doc)
    assert doc["scenario"] in html and "2 replications" in html and "seed 7" in html
    assert re.search(r"generated \d{4}-\d\d-\d\d \d\d:\d\d", html)
    for text in ("How to read this", "Common random numbers", "Paired confidence intervals", "Discount rate 8 %"):
        assert text in html
    assert "Illustrative regional call" in html and "grant of 40.0 %" in html


def test_write_report_makes_the_document_json_safe_and_writes_utf8(doc: dict[str, Any], tmp_path: Path) -> None:
    broken = copy.deepcopy(doc)
    broken["scenario"] = "Müller & Söhne <Linie 2>"
    broken["baseline"]["kpis"]["line.oee"]["mean"] = math.nan
    broken["alternatives"][0]["business_case"]["figures"]["npv_per_public_euro"]["mean"] = math.inf
    broken["alternatives"][0]["business_case"]["cash_flows_with_funding"] = tuple(
        broken["alternatives"][0]["business_case"]["cash_flows_with_funding"]
    )

    class Fake:
        def to_json(self) -> dict[str, Any]:
            return broken

    assert json_safe({"a": [math.nan, (1.0, -math.inf)], "b": 2}) == {"a": [None, [1.0, None]], "b": 2}
    path = tmp_path / "report.html"
    write_report(Fake(), path)  # type: ignore[arg-type]
    text = path.read_bytes().decode("utf-8")
    assert "Müller &amp; Söhne &lt;Linie 2&gt;" in text and "<Linie 2>" not in text
    assert not re.search(r"\bNaN\b|Infinity", text.replace(get_plotlyjs(), ""))


def test_cli_compare_writes_the_report(scenario_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    command = [sys.executable, "-c", "from simline.cli import main; main()"]
    args = ["compare", str(scenario_file), "-q", "-j", "1", "--report", str(out)]
    proc = subprocess.run([*command, *args], capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# ------------------------------------------------------------------------------------- in a real browser

RENDERED = """
const divs = document.querySelectorAll('.plotly-graph-div');
return Array.from(divs).filter(d => d.querySelector('.main-svg') && d.querySelector('.plot-container')).length;
"""


def test_report_renders_in_headless_chromium(
    chromium_driver: Any, comparison: Comparison, doc: dict[str, Any], tmp_path: Path
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    path = tmp_path / "report.html"
    write_report(comparison, path)
    expected = len(report_figures(doc))
    assert expected == 4
    driver = chromium_driver
    driver.get(path.as_uri())
    WebDriverWait(driver, 60, poll_frequency=0.2).until(
        lambda d: (
            d.execute_script("return document.readyState") == "complete"
            and d.execute_script(RENDERED)
            == d.execute_script("return document.querySelectorAll('.plotly-graph-div').length")
            and d.execute_script(RENDERED) > 0
        )
    )
    assert driver.execute_script(RENDERED) == expected
    assert driver.execute_script("return document.querySelectorAll('.plotly-graph-div .main-svg').length") >= expected
    assert driver.execute_script("return typeof Plotly") == "object"
    bars = driver.execute_script("return document.querySelectorAll('#fig-kpis .bars .point').length")
    assert bars == len(KEY_KPIS) * (1 + len(doc["alternatives"]))
    rows = driver.execute_script("return document.querySelectorAll('#summary-table tbody tr.figures').length")
    assert rows == len(doc["alternatives"])
    verdicts = driver.execute_script("return Array.from(document.querySelectorAll('td.verdict')).map(e => e.innerText)")
    assert len(verdicts) == rows and all(v.startswith("Verdict:") for v in verdicts)
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0  # no network
    logs = driver.get_log("browser")
    severe = [entry for entry in logs if entry["level"] == "SEVERE"]
    assert not severe, json.dumps(severe, indent=2)

    ARTIFACTS.mkdir(exist_ok=True)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    png = base64.b64decode(shot["data"])
    (ARTIFACTS / "report.png").write_bytes(png)
    assert png.startswith(b"\x89PNG") and len(png) > 50_000


def test_a_missing_browser_skips_here_but_fails_where_required(monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import _unavailable

    monkeypatch.delenv("SIMLINE_REQUIRE_EXTERNAL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium chromium-driver"):
        _unavailable("/usr/bin/chromium not found")
    monkeypatch.setenv("SIMLINE_REQUIRE_EXTERNAL", "1")
    with pytest.raises(pytest.fail.Exception, match=r"SIMLINE_REQUIRE_EXTERNAL=1 .*apt-get install -y chromium"):
        _unavailable("/usr/bin/chromium not found")
