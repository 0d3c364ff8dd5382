"""Figures of the live pages (plain plotly figure dictionaries: no validation on every update): the telemetry of a
station and the history of the twin's money."""

from __future__ import annotations

from typing import Any

from dashboards.feed import MoneyView

__all__ = ["money_figure", "telemetry_figure"]


def money_figure(money: MoneyView) -> dict[str, Any]:
    """The money gained so far, without and with co-funding, over simulated hours."""
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": "without co-funding",
                "x": [m / 60 for m in money.minutes],
                "y": list(money.net),
                "line": {"color": "#c62828"},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "with co-funding",
                "x": [m / 60 for m in money.minutes],
                "y": list(money.net_funded),
                "line": {"color": "#2e7d32"},
            },
        ],
        "layout": {
            "height": 220,
            "margin": {"l": 60, "r": 10, "t": 10, "b": 40},
            "xaxis": {"title": {"text": "simulated hours"}},
            "yaxis": {"title": {"text": "EUR"}, "zeroline": True},
            "legend": {"orientation": "h", "y": 1.15},
        },
    }


# --- telemetry --------------------------------------------------------------------------------------------
def telemetry_figure(data: dict[str, Any] | None, title: str) -> dict[str, Any]:
    """Power, condition, temperature and vibration of a station's machines over simulated hours, with its
    breakdowns marked on the condition chart (the signal rises towards 1 before a failure)."""
    rows = (
        ("power_kw", "power kW"),
        ("condition", "condition"),
        ("temperature_c", "temp °C"),
        ("vibration_mm_s", "vibration mm/s"),
    )
    traces: list[dict[str, Any]] = []
    for machine in (data or {}).get("machines", []):
        hours = [m / 60.0 for m in machine["minutes"]]
        for r, (key, _) in enumerate(rows, start=1):
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": hours,
                    "y": list(machine[key]),
                    "name": f"#{machine['index']} {key}",
                    "xaxis": "x",
                    "yaxis": f"y{r if r > 1 else ''}",
                    "showlegend": False,
                    "line": {"width": 1.5, "shape": "hv" if key == "power_kw" else "linear"},
                }
            )
        if machine["breakdowns"]:
            traces.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "x": [b / 60 for b in machine["breakdowns"]],
                    "y": [1.0] * len(machine["breakdowns"]),
                    "yaxis": "y2",
                    "name": "breakdown",
                    "marker": {"symbol": "x", "size": 9, "color": "#c62828"},
                    "showlegend": False,
                }
            )
    layout: dict[str, Any] = {
        "height": 420,
        "margin": {"l": 60, "r": 10, "t": 30, "b": 40},
        "title": {"text": title, "font": {"size": 14}},
        "xaxis": {"title": {"text": "simulated hours"}, "anchor": "y4"},
        "showlegend": False,
    }
    gap = 0.04
    height = (1 - 3 * gap) / 4
    for r, (_, label) in enumerate(rows, start=1):
        top = 1 - (r - 1) * (height + gap)
        layout[f"yaxis{r if r > 1 else ''}"] = {
            "domain": [top - height, top],
            "title": {"text": label, "font": {"size": 11}},
        }
    layout["yaxis2"]["range"] = [0, 1.05]
    return {"data": traces, "layout": layout}
