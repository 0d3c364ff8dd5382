"""What the live pages draw, as pure functions of a :class:`~dashboards.feed.Snapshot`: the line schematic, KPI
tiles with their trends, alarms, the order list and a followed order, the twin's money, and telemetry charts.

Figures are plain plotly figure dictionaries (no validation on every update: the pages refresh every second).
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qs

from dash import dcc, html

from dashboards.feed import TILES, LineView, MoneyView, OrderView, Snapshot, StationView

__all__ = [
    "STATE_COLOURS",
    "clock_text",
    "euro",
    "kpi_text",
    "kpi_tiles",
    "line_view",
    "money_panel",
    "order_card",
    "orders_table",
    "query",
    "telemetry_figure",
]

STATE_COLOURS = {
    "processing": "#2e7d32",
    "setup": "#1565c0",
    "idle": "#9e9e9e",
    "blocked": "#ef8f00",
    "down": "#c62828",
    "maintenance": "#6a1b9a",
    "off_shift": "#424242",
    "standby": "#00838f",
}
"""Machine state → colour, used by the line view and its legend."""

_SPARK_CONFIG = {"staticPlot": True, "displayModeBar": False}


def query(search: str | None, name: str) -> str | None:
    """One parameter of a URL's query string (``?order=O000012``)."""
    values = parse_qs((search or "").lstrip("?")).get(name)
    return values[0] if values else None


def clock_text(minutes: float) -> str:
    """Simulated time as ``Day N · hh:mm``."""
    day, rest = divmod(int(minutes), 1440)
    return f"Day {day + 1} · {rest // 60:02d}:{rest % 60:02d}"


def euro(value: float) -> str:
    """Money as ``+1,234 €`` / ``−1,234 €``."""
    sign = "−" if value < 0 else "+"
    return f"{sign}{abs(value):,.0f} €"


def kpi_text(value: float | None, unit: str) -> str:
    """A KPI value for a tile: ``—`` while undefined."""
    if value is None or not math.isfinite(value):
        return "—"
    if unit == "%":
        return f"{100 * value:.1f} %"
    if unit == "units":
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


# --- line view ---------------------------------------------------------------------------------------
def _station_card(st: StationView, line_key: str, followed: frozenset[str]) -> html.Div:
    fill = st.waiting / st.capacity if st.capacity else min(1.0, st.waiting / 20)
    capacity = "∞" if st.capacity is None else str(st.capacity)
    machines = [html.Span(className=f"dot state-{s}", title=s.replace("_", " ")) for s in st.machines]
    classes = f"station state-{st.state}" + (" followed" if st.name in followed else "")
    return html.Div(
        [
            html.Div(
                [html.Span(st.name, className="station-name"), html.Span("⚠", className="alarm-badge")]
                if st.down
                else html.Span(st.name, className="station-name"),
                className="station-head",
            ),
            html.Div(st.state.replace("_", " "), className="station-state"),
            html.Div(machines, className="dots") if len(machines) > 1 else None,
            html.Div(
                html.Div(className="buffer-fill", style={"width": f"{100 * fill:.0f}%"}),
                className="buffer-bar",
                title=f"buffer {st.waiting} / {capacity}",
            ),
            html.Div(f"queue {st.waiting}/{capacity} · on machine {st.in_process}", className="station-meta"),
        ],
        id=f"{line_key}-station-{st.id}",
        className=classes,
        **{"data-state": st.state},
    )


def line_view(view: LineView, line_key: str, followed: OrderView | None = None) -> html.Div:
    """The schematic of a line: stations in flow order, coloured by state, with buffer fill and parts on machines."""
    at = frozenset(followed.stations_now) if followed is not None else frozenset()
    cards: list[Any] = []
    for i, st in enumerate(view.stations):
        if i:
            cards.append(html.Span("→", className="flow-arrow"))
        cards.append(_station_card(st, line_key, at))
    alarms = (
        html.Ul([html.Li(a) for a in view.alarms], className="alarms", id=f"{line_key}-alarms")
        if view.alarms
        else html.Div("No alarms", className="no-alarms", id=f"{line_key}-alarms")
    )
    return html.Div(
        [html.H3(view.label, className="line-title"), html.Div(cards, className="stations"), alarms],
        className="line-view",
        id=f"{line_key}-line",
    )


def legend() -> html.Div:
    """The colour legend of machine states."""
    return html.Div(
        [html.Span(s.replace("_", " "), className=f"legend-item state-{s}") for s in STATE_COLOURS],
        className="legend",
    )


# --- KPI tiles ---------------------------------------------------------------------------------------
def _sparkline(view: LineView, key: str, unit: str) -> dict[str, Any]:
    scale = 100.0 if unit == "%" else 1.0
    y = [None if v is None else v * scale for v in view.trend[key]]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": [m / 60.0 for m in view.trend_minutes],
                "y": y,
                "line": {"width": 2, "color": "#1565c0"},
                "hoverinfo": "skip",
            }
        ],
        "layout": {
            "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
            "height": 40,
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "showlegend": False,
        },
    }


def kpi_tiles(snapshot: Snapshot) -> list[html.Div]:
    """One tile per KPI: the value of each line (baseline and twin) and the main line's trend."""
    main = snapshot.lines[0]
    tiles = []
    for key, title, name, unit in TILES:
        values = [
            html.Div(
                [
                    html.Span(f"{v.label}: ", className="tile-line") if len(snapshot.lines) > 1 else None,
                    html.Span(kpi_text(v.kpis.get(name), unit), className="tile-number"),
                ],
                className="tile-value",
                id=f"kpi-{key}-value" if i == 0 else f"kpi-{key}-value-{i}",
            )
            for i, v in enumerate(snapshot.lines)
        ]
        tiles.append(
            html.Div(
                [
                    html.Div(
                        [title, html.Span(f" {unit}" if unit != "%" else "", className="tile-unit")],
                        className="tile-title",
                    ),
                    *values,
                    dcc.Graph(figure=_sparkline(main, key, unit), config=_SPARK_CONFIG, className="spark"),
                ],
                className="tile",
                id=f"kpi-{key}",
            )
        )
    return tiles


# --- orders --------------------------------------------------------------------------------------------
def _progress(fraction: float, label: str = "") -> html.Div:
    return html.Div(
        html.Div(label, className="progress-fill", style={"width": f"{100 * fraction:.0f}%"}),
        className="progress",
    )


def _eta(order: OrderView, now: float) -> str:
    if order.status in ("done", "late"):
        return clock_text(order.eta) if order.eta is not None else ""
    if order.eta is None:
        return "—"
    return f"in {max(0.0, order.eta - now) / 60:.1f} h"


def orders_table(view: LineView, now: float) -> html.Div:
    """The order list: product, progress through the stations, where it is, ETA; each row links to its card."""
    head = html.Tr([html.Th(h) for h in ("Order", "Product", "Progress", "At", "ETA", "Status")])
    rows = [
        html.Tr(
            [
                html.Td(dcc.Link(o.id, href=f"?order={o.id}", id=f"order-link-{o.id}")),
                html.Td(o.product + (f" ×{o.quantity}" if o.quantity > 1 else "")),
                html.Td(_progress(o.progress)),
                html.Td(", ".join(o.stations_now) or ("—" if o.status != "waiting" else "queued")),
                html.Td(_eta(o, now)),
                html.Td(o.status),
            ],
            className=f"order-row status-{o.status.replace(' ', '-')} origin-{o.origin}",
            id=f"order-row-{o.id}",
            **{"data-status": o.status},
        )
        for o in view.orders
    ]
    more = view.open_orders - sum(1 for o in view.orders if o.status in ("waiting", "in progress"))
    note = html.Div(f"and {more} more open orders", className="orders-more") if more > 0 else None
    return html.Div([html.Table([html.Thead(head), html.Tbody(rows)], className="orders"), note])


def order_card(orders: tuple[OrderView, ...], labels: list[str], now: float) -> html.Div:
    """A followed order: its route with the stations done, where its units are, ETA; one row per line."""
    if not orders:
        return html.Div("Order not found (it may have been completed a while ago).", className="order-card empty")
    first = orders[0]
    parts: list[Any] = [
        html.H3(f"Order {first.id}", className="order-id"),
        html.Div(first.product + (f" ×{first.quantity}" if first.quantity > 1 else ""), className="order-product"),
    ]
    for label, o in zip(labels, orders, strict=False):
        where = ", ".join(o.stations_now) or {"waiting": "waiting to start", "in progress": "between stations"}.get(
            o.status, "finished"
        )
        eta = (
            f"done at {clock_text(o.eta)}"
            if o.status in ("done", "late") and o.eta is not None
            else (f"expected in {max(0.0, (o.eta or now) - now) / 60:.1f} h" if o.eta is not None else "")
        )
        parts.append(
            html.Div(
                [
                    html.Div(label, className="order-line") if len(orders) > 1 else None,
                    _progress(o.progress, f"{100 * o.progress:.0f} %"),
                    html.Div(f"{o.status} · {where} · {eta}", className="order-status", **{"data-status": o.status}),
                    html.Div(" → ".join(o.route), className="order-route"),
                ],
                className="order-progress",
            )
        )
    return html.Div(parts, className="order-card", id="order-card")


# --- the twin's money ----------------------------------------------------------------------------------
def money_panel(money: MoneyView) -> html.Div:
    """The running money difference of the twin: figures and their history."""
    now = money.now
    figure = {
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
    return html.Div(
        [
            html.H3(f"Investment '{money.investment}': money gained so far", className="money-title"),
            html.Div(
                [
                    html.Div(
                        [
                            html.Div("without co-funding"),
                            html.Div(euro(now.net), id="money-net", className="money-number"),
                        ],
                        className="money-box",
                    ),
                    html.Div(
                        [
                            html.Div("with co-funding"),
                            html.Div(euro(now.net_funded), id="money-net-funded", className="money-number"),
                        ],
                        className="money-box",
                    ),
                    html.Div(
                        [
                            html.Div(f"extra contribution margin {euro(now.contribution_delta)}"),
                            html.Div(f"investment cost to date {euro(-now.cost)} (funded {euro(-now.cost_funded)})"),
                            html.Div(f"over {now.hours:.1f} simulated hours"),
                        ],
                        className="money-detail",
                    ),
                ],
                className="money-row",
            ),
            dcc.Graph(figure=figure, config={"displayModeBar": False}, id="money-graph"),
        ],
        className="money-panel",
        id="money-panel",
    )


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
