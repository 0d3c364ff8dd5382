"""The scenario: YAML in, a typed, validated, immutable description of a line out."""

from simline.scenario.checks import check_scenario
from simline.scenario.line import Calendar, Experiment, FixedTransport, PoolTransport, RouteStep, TimeWindow
from simline.scenario.loader import load_scenario, parse_scenario, scenario_from_data
from simline.scenario.model import Scenario
from simline.scenario.orders import BookedOrder, OrderBook, PoissonOrders
from simline.scenario.products import Option, ProductFamily
from simline.scenario.stations import Failures, Inspection, Power, Processing, Quality, Setup, Station

__all__ = [
    "BookedOrder",
    "Calendar",
    "Experiment",
    "Failures",
    "FixedTransport",
    "Inspection",
    "Option",
    "OrderBook",
    "PoissonOrders",
    "PoolTransport",
    "Power",
    "Processing",
    "ProductFamily",
    "Quality",
    "RouteStep",
    "Scenario",
    "Setup",
    "Station",
    "TimeWindow",
    "check_scenario",
    "load_scenario",
    "parse_scenario",
    "scenario_from_data",
]
