"""The visitors' kiosk (``/kiosk``, phone-sized): pick a product's options from the scenario, place the order,
get its number and follow it through the line to completion.

The choices offered are the scenario's; the order is checked again on the live loop by the same rules as every
other entry point, so a forged request gets a clear refusal and the line keeps running.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dash import ALL, Dash, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboards import views
from dashboards.bridge import Bridge
from dashboards.feed import Feed, OrderView

if TYPE_CHECKING:
    from dashboards.app import PageInfo

__all__ = ["page", "register"]


def page(info: PageInfo) -> html.Div:
    """The kiosk page."""
    families = [{"label": name, "value": family} for family, (name, _) in info.products.items()]
    first = families[0]["value"] if families else None
    return html.Div(
        [
            html.H1("Order your own"),
            html.P(f"{info.title}: choose, order, and watch it being made on the big screen.", className="lead"),
            html.Div(
                [
                    html.Label("Product", className="kiosk-label"),
                    dcc.RadioItems(families, first, id="kiosk-family", className="choices", inputClassName="choice"),
                ],
                className="kiosk-field",
                style={"display": "none"} if len(families) == 1 else None,
            ),
            html.Div(id="kiosk-options"),
            html.Button("Place order", id="kiosk-place", className="big-button"),
            html.Div(id="kiosk-message", className="kiosk-message"),
            html.Div(id="kiosk-follow"),
            dcc.Interval(id="kiosk-tick", interval=info.update_ms),
        ],
        className="kiosk-page",
    )


def option_fields(info: PageInfo, family: str | None) -> list[html.Div]:
    """One choice list per option of ``family``."""
    if family not in info.products:
        return []
    _, options = info.products[family]
    return [
        html.Div(
            [
                html.Label(name.replace("_", " ").capitalize(), className="kiosk-label"),
                dcc.RadioItems(
                    choices,
                    choices[0]["value"],
                    id={"type": "kiosk-option", "name": name},
                    className="choices",
                    inputClassName="choice",
                ),
            ],
            className="kiosk-field",
        )
        for name, choices in options.items()
    ]


def register(
    app: Dash, feed: Feed, bridge: Bridge, info: PageInfo, orders_of: Callable[[str], tuple[OrderView, ...]]
) -> None:
    """Add the kiosk's callbacks to ``app`` (``orders_of``: an order in every line, shared with the big screen)."""

    @app.callback(Output("kiosk-options", "children"), Input("kiosk-family", "value"))
    def options(family: str | None) -> list[html.Div]:
        return option_fields(info, family)

    @app.callback(
        Output("kiosk-message", "children"),
        Output("url", "search"),
        Input("kiosk-place", "n_clicks"),
        State("kiosk-family", "value"),
        State({"type": "kiosk-option", "name": ALL}, "value"),
        State({"type": "kiosk-option", "name": ALL}, "id"),
        prevent_initial_call=True,
    )
    def place(clicks: int | None, family: str | None, values: list[Any], ids: list[dict[str, str]]) -> Any:
        if not clicks:
            raise PreventUpdate
        chosen = {i["name"]: v for i, v in zip(ids, values, strict=True)}
        outcome = bridge.place_order(family, chosen)
        if not outcome.ok:
            return html.Span(outcome.message, className="error", id="kiosk-error"), no_update
        text = [html.Span("Thank you! Your order number is "), html.Strong(outcome.order_id, id="kiosk-order-id")]
        return html.Span(text, className="ok"), f"?order={outcome.order_id}"

    @app.callback(Output("kiosk-follow", "children"), Input("kiosk-tick", "n_intervals"), Input("url", "search"))
    def follow(_: int | None, search: str | None) -> Any:
        order_id = views.query(search, "order")
        if not order_id:
            return None
        return views.order_card(orders_of(order_id), info.labels, feed.latest.sim_minutes)
