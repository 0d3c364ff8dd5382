"""Investments as overlays: each lever is a patch to the scenario's data, re-validated as a whole scenario.

So an investment changes the line *causally* (a faster setup, a new inspection, one more machine) and the same
model, with the same random streams, shows what that does to the KPIs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from simline.errors import Issue, ScenarioError
from simline.scenario import investments as lv
from simline.scenario.investments import Investment
from simline.scenario.model import Scenario

__all__ = ["Alternative", "OverlayProblem", "alternative", "apply_change", "apply_investments"]

Data = dict[str, Any]


class OverlayProblem(Exception):
    """A change cannot be applied to this scenario (unknown station, station without failures, bad path)."""


_SCALED = {
    "fixed": ("value",),
    "uniform": ("low", "high"),
    "triangular": ("low", "mode", "high"),
    "normal": ("mean", "sd"),
    "lognormal": ("mean", "sd"),
    "exponential": ("mean",),
}


def _scale(dist: Data, factor: float) -> Data:
    out = dict(dist)
    if out["kind"] == "empirical":
        out["values"] = [v * factor for v in out["values"]]
        return out
    for key in _SCALED[out["kind"]]:
        out[key] = out[key] * factor
    if out["kind"] in ("fixed",) or factor > 0:
        return out
    return {"kind": "fixed", "value": 0.0}


def _stations(data: Data, ids: Sequence[str], need: str | None = None) -> list[Data]:
    by_id = {st["id"]: st for st in data["stations"]}
    if not ids:
        return [st for st in data["stations"] if need is None or st.get(need) is not None]
    chosen = []
    for sid in ids:
        station = by_id.get(sid)
        if station is None:
            raise OverlayProblem(f"'{sid}' is not a station (known: {', '.join(by_id)})")
        if need is not None and station.get(need) is None:
            raise OverlayProblem(f"station '{sid}' has no {need} to act on")
        chosen.append(station)
    return chosen


def apply_change(data: Data, change: lv.Change) -> None:
    """Apply one lever to scenario data in place.

    Raises:
        OverlayProblem: The change does not fit this scenario.
    """
    match change:
        case lv.PredictiveMaintenance():
            for st in _stations(data, change.stations, "failures"):
                st["failures"]["predictive"] = {
                    "detection_share": change.detection_share,
                    "maintenance_time": change.maintenance_time.model_dump(),
                }
        case lv.Andon():
            for st in _stations(data, change.stations, "failures"):
                st["failures"]["response_time"] = _scale(st["failures"]["response_time"], change.response_time_factor)
        case lv.QuickChangeover():
            for st in _stations(data, change.stations, "setup"):
                setup = st["setup"]
                setup["default"] = _scale(setup["default"], change.setup_factor)
                setup["matrix"] = {
                    a: {b: _scale(d, change.setup_factor) for b, d in row.items()} for a, row in setup["matrix"].items()
                }
        case lv.InlineInspection():
            (st,) = _stations(data, [change.station])
            st["inspection"] = change.model_dump(exclude={"lever", "station"})
        case lv.AutomatedTransport():
            data["transport"] = {
                "kind": "pool",
                "name": change.name,
                "size": change.size,
                "time": change.time.model_dump(),
                "staffed": False,
            }
        case lv.MesSequencing():
            for st in _stations(data, change.stations):
                st["dispatch"] = change.rule
        case lv.EnergyManagement():
            for st in _stations(data, change.stations):
                power = st["power_kw"]
                power["standby_after_minutes"] = change.standby_after_minutes
                power["standby"] = power["idle"] * change.standby_power_share
        case lv.ExtraCapacity():
            (st,) = _stations(data, [change.station])
            st["machines"] += change.machines
        case lv.SetValue():
            _set_path(data, change.path, change.value)
        case _:  # pragma: no cover - the schema admits no other lever
            raise OverlayProblem(f"unknown lever {change!r}")


_KEYED = {"stations": "id", "products": "family", "investments": "name", "routing": "station"}


def _set_path(data: Data, path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        here = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            key = _KEYED.get(parts[depth - 1]) if depth else None
            match = [item for item in node if isinstance(item, dict) and key and item.get(key) == part]
            if match:
                node = match[0]
            elif part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise OverlayProblem(f"path '{path}': nothing called '{part}' at '{here}'")
        elif isinstance(node, dict):
            if part not in node or node[part] is None:
                raise OverlayProblem(f"path '{path}': '{part}' is not set at '{here}' (keys: {', '.join(node)})")
            node = node[part]
        else:
            parent = ".".join(parts[:depth])
            raise OverlayProblem(f"path '{path}': '{parent}' is a value, not a mapping")
    last = parts[-1]
    if isinstance(node, list):
        raise OverlayProblem(f"path '{path}': cannot set '{last}' inside a list; address the item by its id")
    if not isinstance(node, dict):
        parent = ".".join(parts[:-1])
        raise OverlayProblem(f"path '{path}': '{parent}' is a value, not a mapping")
    node[last] = value


def _problem(index: int, where: str, message: str) -> ScenarioError:
    return ScenarioError("<investment>", [Issue(f"investments[{index}].{where}", message)])


def apply_investments(scenario: Scenario, names: Sequence[str]) -> Scenario:
    """The scenario with the changes of the named investments applied, in order, and validated again.

    Raises:
        ScenarioError: An investment is unknown, a change does not fit, or the result is not a valid scenario.
    """
    from simline.scenario.loader import scenario_from_data

    data = scenario.model_dump(mode="python")
    index = {inv.name: i for i, inv in enumerate(scenario.investments)}
    for name in names:
        if name not in index:
            known = ", ".join(index) or "none"
            raise ScenarioError(
                "<investment>", [Issue("investments", f"'{name}' is not an investment (known: {known})")]
            )
        inv = scenario.investments[index[name]]
        for j, change in enumerate(inv.changes):
            try:
                apply_change(data, change)
            except OverlayProblem as exc:
                raise _problem(index[name], f"changes[{j}]", str(exc)) from None
    try:
        return scenario_from_data(copy.deepcopy(data), source="<investment>", check_investments=False)
    except ScenarioError as exc:
        label = "+".join(names)
        issues = [Issue(i.path, f"{i.message} (after applying '{label}')") for i in exc.issues]
        raise ScenarioError(f"investment '{label}'", issues) from None


class Alternative:
    """A scenario to compare with the baseline: one investment or a combination, with its summed costs."""

    def __init__(self, scenario: Scenario, names: Sequence[str]) -> None:
        self.names = list(names)
        self.label = "+".join(names)
        self.investments: list[Investment] = [scenario.investment(n) for n in names]
        self.scenario = apply_investments(scenario, names)
        self.capex = sum(i.capex for i in self.investments)
        self.opex_per_year = sum(i.opex_per_year for i in self.investments)
        self.useful_life_years = min(i.useful_life_years for i in self.investments)
        self.installation_downtime_hours = sum(i.installation_downtime_hours for i in self.investments)
        self.grant_eligible_cost = sum(i.capex for i in self.investments if i.grant_eligible)
        self.tax_credit_eligible_cost = sum(i.capex for i in self.investments if i.tax_credit_eligible)
        self.residual_value = sum(i.residual_value for i in self.investments)
        self.description = "; ".join(i.description for i in self.investments if i.description)


def alternative(scenario: Scenario, spec: str) -> Alternative:
    """The alternative named ``spec``: an investment name or names joined with ``+``.

    Raises:
        ScenarioError: A name is unknown or the changes do not fit.
    """
    names = [n.strip() for n in spec.split("+") if n.strip()]
    if not names:
        raise ScenarioError("<investment>", [Issue("investments", "no investment named")])
    for name in names:
        try:
            scenario.investment(name)
        except KeyError:
            known = ", ".join(i.name for i in scenario.investments) or "none"
            raise ScenarioError(
                "<investment>", [Issue("investments", f"'{name}' is not an investment (known: {known})")]
            ) from None
    if len(set(names)) != len(names):
        raise ScenarioError("<investment>", [Issue("investments", f"'{spec}' names an investment twice")])
    return Alternative(scenario, names)
