"""simline: a smart-factory demonstrator. A discrete-event model of a mass-customisation line, its KPIs, and
(in live mode) its machines over OPC UA and MQTT.

The public API: load a scenario, build and run a :class:`Line`, compute KPIs, run replicated experiments.
"""

from importlib.metadata import PackageNotFoundError, version

from simline.errors import CommandError, ScenarioError, SimlineError
from simline.events import Event, MachineState, Observer
from simline.experiment import ExperimentResult, Summary, run_experiment, run_replication, summarise
from simline.kpis import compute_kpis
from simline.scenario import Scenario, load_scenario, parse_scenario
from simline.sim import Line

try:
    __version__ = version("simline")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "CommandError",
    "Event",
    "ExperimentResult",
    "Line",
    "MachineState",
    "Observer",
    "Scenario",
    "ScenarioError",
    "SimlineError",
    "Summary",
    "__version__",
    "compute_kpis",
    "load_scenario",
    "parse_scenario",
    "run_experiment",
    "run_replication",
    "summarise",
]
