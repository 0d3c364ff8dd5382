"""The live dashboard (Dash): the big-screen page at ``/`` and the visitors' kiosk at ``/kiosk``.

The pages are built once per load (:mod:`dashboards.views`). Every second a callback sends the big screen the
digest of the feed's latest snapshot (:mod:`dashboards.payload`; computed once per snapshot for all browsers, and
not sent again to a browser that has it), and the page's script ``assets/dashboard.js`` writes it into the
elements in place. Callbacks never touch the model; orders and trainer commands go through the
:class:`~dashboards.bridge.Bridge` to the live loop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dash
from dash import ClientsideFunction, Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboards import kiosk, views
from dashboards.bridge import Bridge
from dashboards.feed import Feed, OrderView, Snapshot
from dashboards.live_figures import money_figure, telemetry_figure
from dashboards.payload import snapshot_data

__all__ = ["PageInfo", "create_app"]

ASSETS = Path(__file__).parent / "assets"
UPDATE_MS = 1000
"""How often the pages refresh (milliseconds)."""
TELEMETRY_MS = 2000
MONEY_MS = 3000


@dataclass(frozen=True)
class PageInfo:
    """What the pages show besides the snapshot.

    Attributes:
        title: The scenario's name.
        products: Family → (display name, option → choices as ``{label, value}``).
        kiosk_url: The kiosk's address for visitors' phones (shown and in the QR code).
        qr_src: The QR code of ``kiosk_url`` as an image data URI.
        trainer_key: The key trainer commands need (``None``: no key, the dashboard is on loopback only).
    """

    title: str
    products: dict[str, tuple[str, dict[str, list[dict[str, str]]]]]
    kiosk_url: str
    qr_src: str
    trainer_key: str | None = None
    update_ms: int = UPDATE_MS
    labels: list[str] = field(default_factory=lambda: ["Line"])


class _Cache:
    """The last render per key, valid while the snapshot is the same."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Any, tuple[int, Any]] = {}

    def get(self, key: Any, seq: int, render: Any) -> Any:
        with self._lock:
            hit = self._items.get(key)
        if hit is not None and hit[0] == seq:
            return hit[1]
        value = render()
        with self._lock:
            if len(self._items) > 256:
                self._items.clear()
            self._items[key] = (seq, value)
        return value


def create_app(feed: Feed, bridge: Bridge, info: PageInfo) -> Dash:
    """The Dash app of a live line."""
    app = Dash(
        __name__,
        assets_folder=str(ASSETS),
        title=f"simline · {info.title}",
        update_title=None,
        suppress_callback_exceptions=True,
        serve_locally=True,
        compress=False,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.layout = html.Div(
        [dcc.Location(id="url", refresh=False), dcc.Store(id="page-path"), html.Div(id="page")], id="root"
    )
    app.validation_layout = html.Div([app.layout, main_page(feed.latest, info), kiosk.page(info)])
    cache = _Cache()

    @app.callback(
        Output("page", "children"), Output("page-path", "data"), Input("url", "pathname"), State("page-path", "data")
    )
    def route(pathname: str | None, rendered: str | None) -> tuple[Any, str]:
        path = "/kiosk" if (pathname or "/").rstrip("/").endswith("/kiosk") else "/"
        if path == rendered:
            raise PreventUpdate
        return (kiosk.page(info) if path == "/kiosk" else main_page(feed.latest, info)), path

    @app.callback(
        Output("snap", "data"),
        Output("snap-seq", "data"),
        Input("tick", "n_intervals"),
        State("snap-seq", "data"),
    )
    def refresh(_: int | None, shown: int | None) -> tuple[dict[str, Any], int]:
        snap = feed.latest
        if snap.seq == shown:  # this browser has it already
            raise PreventUpdate
        return cache.get("main", snap.seq, lambda: snapshot_data(snap)), snap.seq

    app.clientside_callback(
        ClientsideFunction(namespace="simline", function_name="apply"),
        Output("snap-applied", "data"),
        Input("snap", "data"),
    )

    if feed.alternative is not None:

        @app.callback(Output("money-graph", "figure"), Input("money-tick", "n_intervals"))
        def money(_: int | None) -> dict[str, Any]:  # a chart is costly to redraw: every few seconds
            snap = feed.latest
            if snap.money is None:
                raise PreventUpdate
            return cache.get("money", snap.seq, lambda: money_figure(snap.money))  # type: ignore[arg-type]

    def orders_of(order_id: str) -> tuple[OrderView, ...]:
        """An order in every line, read from the loop once per snapshot however many pages follow it."""
        return cache.get(("order", order_id), feed.latest.seq, lambda: bridge.order(order_id))  # type: ignore[no-any-return]

    @app.callback(Output("followed", "children"), Input("tick", "n_intervals"), Input("url", "search"))
    def followed(_: int | None, search: str | None) -> Any:
        order_id = views.query(search, "order")
        snap = feed.latest
        if not order_id:
            if dash.ctx.triggered_id == "tick":
                raise PreventUpdate  # the hint is shown already
            return html.Div("Click an order to follow it.", className="hint")
        return views.order_card(orders_of(order_id), info.labels, snap.sim_minutes)

    @app.callback(
        Output("telemetry-graph", "figure"), Input("telemetry-tick", "n_intervals"), Input("telemetry-station", "value")
    )
    def telemetry(_: int | None, station: str | None) -> dict[str, Any]:
        snap = feed.latest
        station = station or (snap.stations[0][0] if snap.stations else None)
        if station is None:
            raise PreventUpdate
        names = {sid: name for sid, name, _ in snap.stations}
        data = cache.get(("telemetry", station), snap.seq, lambda: bridge.telemetry(station))
        return telemetry_figure(data, f"{names.get(station, station)}: condition rises towards 1 before a failure")

    @app.callback(Output("trainer-key", "data"), Input("url", "search"), State("trainer-key", "data"))
    def remember_key(search: str | None, known: str | None) -> str | None:
        return views.query(search, "key") or known

    @app.callback(
        Output("trainer-message", "children"),
        Input("btn-pause", "n_clicks"),
        Input("btn-resume", "n_clicks"),
        Input("btn-speed", "n_clicks"),
        Input("btn-fault", "n_clicks"),
        Input("btn-reset", "n_clicks"),
        State("speed-input", "value"),
        State("fault-station", "value"),
        State("fault-machine", "value"),
        State("fault-minutes", "value"),
        State("trainer-key", "data"),
        prevent_initial_call=True,
    )
    def trainer(*args: Any) -> Any:
        speed, station, machine, minutes, key = args[5:]
        button = dash.ctx.triggered_id
        if button is None:
            raise PreventUpdate
        if info.trainer_key is not None and key != info.trainer_key:
            return html.Span("Trainer controls need the trainer's link (with its key).", className="error")
        action = str(button).removeprefix("btn-")
        outcome = bridge.command(action, station, machine, speed if action == "speed" else minutes)
        return html.Span(outcome.message, className="ok" if outcome.ok else "error")

    kiosk.register(app, feed, bridge, info, orders_of)
    return app


def main_page(snap: Snapshot, info: PageInfo) -> html.Div:
    """The big-screen page: header with the QR code, the twin's money, KPI tiles, line view(s), orders,
    telemetry and the trainer controls."""
    stations = [{"label": name, "value": sid} for sid, name, _ in snap.stations]
    first = stations[0]["value"] if stations else None
    return html.Div(
        [
            html.Header(
                [
                    html.Div(
                        [
                            html.H1(info.title),
                            html.Div(id="clock", className="clock"),
                            html.Div(
                                [
                                    html.Span("running", className="badge running", id="run-state"),
                                    html.Span(id="speed-text"),
                                    html.Span(id="shift-text"),
                                    html.Span(id="lag-text", className="lag"),
                                ],
                                className="status",
                            ),
                        ],
                        className="head-text",
                    ),
                    html.A(
                        [
                            html.Img(src=info.qr_src, id="kiosk-qr", alt=f"QR code: {info.kiosk_url}"),
                            html.Div("Scan to order your own", className="qr-caption"),
                            html.Div(info.kiosk_url, className="qr-url", id="kiosk-url"),
                        ],
                        href=info.kiosk_url,
                        className="qr",
                        target="_blank",
                    ),
                ],
                className="header",
            ),
            views.money_panel(snap.money.investment) if snap.money is not None else None,
            html.Div(views.tiles(snap), id="tiles", className="tiles"),
            html.Div([views.legend(), *(views.line_view(v, f"l{i}") for i, v in enumerate(snap.lines))], id="lines"),
            html.Div(
                [
                    html.Section([html.H2("Orders"), views.orders_table()], className="panel orders-panel"),
                    html.Section([html.H2("Followed order"), html.Div(id="followed")], className="panel follow-panel"),
                ],
                className="row",
            ),
            html.Section(
                [
                    html.H2("Telemetry"),
                    dcc.Dropdown(stations, first, id="telemetry-station", clearable=False, className="station-pick"),
                    dcc.Graph(id="telemetry-graph", config={"displayModeBar": False}),
                ],
                className="panel",
            ),
            trainer_panel(stations, snap.speed),
            dcc.Interval(id="tick", interval=info.update_ms),
            dcc.Interval(id="telemetry-tick", interval=max(info.update_ms, TELEMETRY_MS)),
            dcc.Store(id="trainer-key", storage_type="session"),
            dcc.Interval(id="money-tick", interval=max(info.update_ms, MONEY_MS)),
            dcc.Store(id="snap"),
            dcc.Store(id="snap-seq"),
            dcc.Store(id="snap-applied"),
        ],
        className="main-page",
    )


def trainer_panel(stations: list[dict[str, str]], speed: float) -> html.Details:
    """Trainer controls: pause/resume, speed, fault injection and reset."""
    first = stations[0]["value"] if stations else None
    return html.Details(
        [
            html.Summary("Trainer controls"),
            html.Div(
                [
                    html.Button("Pause", id="btn-pause"),
                    html.Button("Resume", id="btn-resume"),
                    html.Label(
                        [
                            "Speed ",
                            dcc.Input(
                                id="speed-input",
                                className="number-input",
                                type="number",
                                value=speed,
                                step="any",
                            ),
                        ]
                    ),
                    html.Button("Set speed", id="btn-speed"),
                ],
                className="controls",
            ),
            html.Div(
                [
                    dcc.Dropdown(stations, first, id="fault-station", clearable=False, className="station-pick"),
                    html.Label(["Machine ", dcc.Input(id="fault-machine", type="number", value=0, min=0, step=1)]),
                    html.Label(
                        [
                            "Repair minutes ",
                            dcc.Input(id="fault-minutes", type="number", step="any", placeholder="station default"),
                        ]
                    ),
                    html.Button("Inject fault", id="btn-fault", className="danger"),
                    html.Button("Reset", id="btn-reset"),
                ],
                className="controls",
            ),
            html.Div(id="trainer-message", className="trainer-message"),
        ],
        className="panel trainer",
        id="trainer",
    )
