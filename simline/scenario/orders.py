"""How orders reach the line: Poisson arrivals with the product mix, or an order book file."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from simline.scenario.base import Strict

__all__ = ["BookedOrder", "OrderBook", "Orders", "PoissonOrders"]


class PoissonOrders(Strict):
    """Orders arrive as a Poisson process, around the clock, with the products' demand mix.

    Each order is for ``quantity`` units of one configuration (lot size 1 by default) and is due
    ``due_in_hours`` after it arrives (the promised lead time).
    """

    kind: Literal["poisson"]
    rate_per_hour: float = Field(gt=0, le=10_000)
    quantity: int = Field(default=1, ge=1, le=10_000)
    due_in_hours: float = Field(default=48.0, gt=0)


class BookedOrder(Strict):
    """One order of an order book: what, how many, when it is released and when it is due (hours from start)."""

    order_id: str | None = Field(default=None, min_length=1, max_length=64)
    release_hour: float = Field(ge=0)
    due_hour: float | None = Field(default=None, ge=0)
    family: str
    options: dict[str, str] = Field(default_factory=dict)
    quantity: int = Field(default=1, ge=1, le=10_000)


class OrderBook(Strict):
    """A fixed list of orders: inline under ``rows``, or read from a CSV ``file`` (relative to the scenario).

    CSV columns: ``release_hour``, ``family``, and optionally ``order_id``, ``due_hour``, ``options``
    (``name=value;name=value``) and ``quantity``. An order without ``due_hour`` is due ``due_in_hours`` after
    its release. Every option of the family must be chosen.
    """

    kind: Literal["order_book"]
    file: str | None = Field(default=None, min_length=1)
    rows: list[BookedOrder] = Field(default_factory=list)
    due_in_hours: float = Field(default=48.0, gt=0)


Orders = Annotated[PoissonOrders | OrderBook, Field(discriminator="kind")]
"""The order source of a scenario."""
