"""The live pages' structure, built once per page load: the line schematic, the KPI tiles, the order table, the
twin's money panel, and a followed order's card.

Elements that change every second carry stable ids and classes; the page's script (``assets/dashboard.js``)
updates them from :func:`dashboards.payload.snapshot_data` without rebuilding them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from dash import dcc, html

from dashboards.feed import TILES, LineView, OrderView, Snapshot
from dashboards.payload import clock_text, eta_text

__all__ = [
    "STATE_COLOURS",
    "legend",
    "line_view",
    "money_panel",
    "order_card",
    "orders_table",
    "query",
    "tiles",
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
"""Machine state → colour (the same as ``assets/dashboard.css``), used by the line view and its legend."""


def query(search: str | None, name: str) -> str | None:
    """One parameter of a URL's query string (``?order=O000012``)."""
    values = parse_qs((search or "").lstrip("?")).get(name)
    return values[0] if values else None


# --- line view ---------------------------------------------------------------------------------------
def line_view(view: LineView, key: str) -> html.Div:
    """The schematic of a line: a card per station in flow order (coloured by state, with its buffer's fill and
    the units on its machines) and the alarm list."""
    cards: list[Any] = []
    for i, st in enumerate(view.stations):
        if i:
            cards.append(html.Span("→", className="flow-arrow"))
        dots = [html.Span(className=f"dot state-{s}") for s in st.machines] if len(st.machines) > 1 else []
        cards.append(
            html.Div(
                [
                    html.Div(
                        [html.Span(st.name, className="station-name"), html.Span("⚠", className="alarm-badge")],
                        className="station-head",
                    ),
                    html.Div(st.state.replace("_", " "), className="station-state"),
                    html.Div(dots, className="dots") if dots else None,
                    html.Div(html.Div(className="buffer-fill"), className="buffer-bar"),
                    html.Div(className="station-meta"),
                ],
                id=f"{key}-station-{st.id}",
                className=f"station state-{st.state}",
                title=st.name,
                **{"data-state": st.state, "data-name": st.name},
            )
        )
    return html.Div(
        [
            html.H3(view.label, className="line-title"),
            html.Div(cards, className="stations"),
            html.Div("No alarms", className="no-alarms", id=f"{key}-alarms"),
        ],
        className="line-view",
        id=f"{key}-line",
    )


def legend() -> html.Div:
    """The colour legend of machine states."""
    return html.Div(
        [html.Span(s.replace("_", " "), className=f"legend-item state-{s}") for s in STATE_COLOURS],
        className="legend",
    )


# --- KPI tiles ---------------------------------------------------------------------------------------
def tiles(snapshot: Snapshot) -> list[html.Div]:
    """One tile per KPI: the value of each line (baseline and twin) and the main line's trend (a sparkline)."""
    several = len(snapshot.lines) > 1
    out = []
    for key, title, _, unit in TILES:
        values = [
            html.Div(
                [
                    html.Span(f"{v.label}: ", className="tile-line") if several else None,
                    html.Span("—", className="tile-number"),
                ],
                className="tile-value",
                id=f"kpi-{key}-value" if i == 0 else f"kpi-{key}-value-{i}",
            )
            for i, v in enumerate(snapshot.lines)
        ]
        unit_text = html.Span(f" {unit}" if unit != "%" else "", className="tile-unit")
        out.append(
            html.Div(
                [html.Div([title, unit_text], className="tile-title"), *values, html.Div(className="spark")],
                className="tile",
                id=f"kpi-{key}",
            )
        )
    return out


# --- orders --------------------------------------------------------------------------------------------
def orders_table() -> html.Div:
    """The order list (rows written by the page's script; each order links to its card)."""
    head = html.Tr([html.Th(h) for h in ("Order", "Product", "Progress", "At", "ETA", "Status")])
    return html.Div(
        [
            html.Table([html.Thead(head), html.Tbody(id="orders-body")], className="orders"),
            html.Div(id="orders-more", className="orders-more"),
        ]
    )


def _progress(fraction: float, label: str = "") -> html.Div:
    return html.Div(
        html.Div(label, className="progress-fill", style={"width": f"{100 * fraction:.0f}%"}),
        className="progress",
    )


def order_card(orders: tuple[OrderView, ...], labels: list[str], now: float) -> html.Div:
    """A followed order: its route, where its units are, its progress and ETA; one row per line."""
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
        if o.status in ("done", "late"):
            eta = f"done at {clock_text(o.eta)}" if o.eta is not None else ""
        else:
            eta = f"expected {eta_text(o, now)}"
        parts.append(
            html.Div(
                [
                    html.Div(label, className="order-line") if len(orders) > 1 else None,
                    _progress(o.progress, f"{100 * o.progress:.0f} %"),
                    html.Div(f"{o.status} · {where} · {eta}", className="order-status", **{"data-status": o.status}),
                    html.Div(" → ".join(o.route), className="order-route"),
                ],
                className="order-progress",
                **{"data-at": "|".join(o.stations_now)},
            )
        )
    return html.Div(parts, className="order-card", id="order-card")


# --- the twin's money ----------------------------------------------------------------------------------
def money_panel(investment: str) -> html.Div:
    """The running money difference of the twin (figures written by the page's script, the chart by a callback)."""

    def box(title: str, number_id: str) -> html.Div:
        return html.Div([html.Div(title), html.Div("—", id=number_id, className="money-number")], className="money-box")

    return html.Div(
        [
            html.H3(f"Investment '{investment}': money gained so far", className="money-title"),
            html.Div(
                [
                    box("without co-funding", "money-net"),
                    box("with co-funding", "money-net-funded"),
                    html.Div(id="money-detail", className="money-detail"),
                ],
                className="money-row",
            ),
            dcc.Graph(id="money-graph", config={"displayModeBar": False}, style={"height": "220px"}),
        ],
        className="money-panel",
        id="money-panel",
    )
