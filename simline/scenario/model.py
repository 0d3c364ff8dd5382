"""The root of a scenario: the validated, immutable description of a line and its experiment."""

from __future__ import annotations

from pydantic import Field

from simline.scenario.base import Strict
from simline.scenario.investments import Economics, Funding, Investment
from simline.scenario.line import (
    Calendar,
    Experiment,
    FixedTransport,
    Maintenance,
    RouteStep,
    Transport,
)
from simline.scenario.orders import Orders
from simline.scenario.products import ProductFamily
from simline.scenario.stations import Station

__all__ = ["Scenario"]


class Scenario(Strict):
    """A production line, its products, its demand and the experiment to run on it.

    Built only by :func:`simline.scenario.load_scenario` (or :meth:`Scenario.model_validate` followed by
    :func:`simline.scenario.check_scenario`), so everything the model reads has been validated.
    """

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    products: list[ProductFamily] = Field(min_length=1)
    orders: Orders
    stations: list[Station] = Field(min_length=1)
    routing: list[RouteStep] = Field(min_length=1)
    transport: Transport = Field(default_factory=lambda: FixedTransport(kind="fixed"))
    maintenance: Maintenance = Field(default_factory=Maintenance)
    calendar: Calendar | None = None
    experiment: Experiment
    economics: Economics = Field(default_factory=Economics)
    funding: Funding | None = None
    investments: list[Investment] = Field(default_factory=list)

    def investment(self, name: str) -> Investment:
        """The investment with this name.

        Raises:
            KeyError: No investment has this name.
        """
        for investment in self.investments:
            if investment.name == name:
                return investment
        raise KeyError(name)

    def station(self, station_id: str) -> Station:
        """The station with this id.

        Raises:
            KeyError: No station has this id.
        """
        for station in self.stations:
            if station.id == station_id:
                return station
        raise KeyError(station_id)
