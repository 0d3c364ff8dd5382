"""Small builders shared by the statistical and invariant tests: tandem-line scenarios and WIP bookkeeping."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from simline.events import MachineState
from simline.scenario import Scenario, parse_scenario
from simline.sim import Line

HOLDING = {MachineState.PROCESSING, MachineState.SETUP, MachineState.BLOCKED, MachineState.DOWN}
"""Activity states in which a machine holds a unit (failures only strike during setup or processing)."""


def exponential(mean: float) -> dict[str, Any]:
    """An exponential duration (minutes) as scenario data."""
    return {"kind": "exponential", "mean": mean}


def tandem_yaml(
    processing: Sequence[Any],
    *,
    rate_per_hour: float,
    horizon_hours: float,
    warmup_hours: float = 0.0,
    replications: int = 5,
    seed: int = 1,
    machines: Sequence[int] | None = None,
    buffers: Sequence[int | None] | None = None,
    station_extra: Sequence[Mapping[str, Any]] | None = None,
    **top: Any,
) -> str:
    """YAML of a serial line s1 → s2 → … with Poisson orders of one family (one unit per order).

    ``processing[i]`` is the base processing-time distribution of station ``s{i+1}``; ``buffers[i]`` None means
    unlimited; ``station_extra[i]`` is merged into that station; ``top`` adds or replaces top-level keys
    (``transport``, ``calendar``, ...).
    """
    stations = []
    for i, dist in enumerate(processing):
        st: dict[str, Any] = {"id": f"s{i + 1}", "processing": {"base": dist}}
        if machines is not None:
            st["machines"] = machines[i]
        if buffers is not None and buffers[i] is not None:
            st["buffer"] = buffers[i]
        if station_extra is not None:
            st.update(station_extra[i])
        stations.append(st)
    data: dict[str, Any] = {
        "name": "tandem",
        "products": [{"family": "a", "price": 1.0}],
        "orders": {"kind": "poisson", "rate_per_hour": rate_per_hour},
        "stations": stations,
        "routing": [{"station": st["id"]} for st in stations],
        "experiment": {
            "horizon_hours": horizon_hours,
            "warmup_hours": warmup_hours,
            "replications": replications,
            "seed": seed,
        },
    }
    data.update(top)
    return yaml.safe_dump(data, sort_keys=False)


def tandem(processing: Sequence[Any], **kwargs: Any) -> Scenario:
    """The validated scenario of :func:`tandem_yaml`."""
    return parse_scenario(tandem_yaml(processing, **kwargs))


class TransitCounter:
    """Counts deliveries of the line's transport, so that units in transit = moves started − delivered.

    Wraps ``line.transport.deliver`` (read by every move when it starts); attach before running.
    """

    def __init__(self, line: Line) -> None:
        self.line = line
        self.delivered = 0
        inner = line.transport.deliver

        def deliver(unit: Any, station: Any, *args: Any) -> None:
            self.delivered += 1
            inner(unit, station, *args)

        line.transport.deliver = deliver

    @property
    def in_transit(self) -> int:
        return self.line.transport.moves - self.delivered


def units_on_machines(line: Line, station_id: str) -> int:
    """Machines of a station that hold a unit by their activity state (exact while the line is on shift)."""
    return sum(m.state in HOLDING for m in line.by_id[station_id].machines)


def assert_conserved(line: Line, transit: TransitCounter) -> None:
    """Released = finished + scrapped + in system, and every unit in the system is somewhere (model stopped).

    Off shift a machine may hold a unit it took while idle and wait for the shift in state ``idle``; then the
    units on machines are only bounded, and the station's own counter stands in for them.
    """
    assert line.released_total == line.finished_total + line.scrapped_total + line.wip
    assert transit.in_transit >= 0
    at_stations = 0
    for st in line.stations:
        level = st.stats.wip.level
        waiting, holding = st.buffer.waiting, units_on_machines(line, st.id)
        assert waiting + holding <= level <= waiting + len(st.machines), f"{st.id}: {level=} {waiting=} {holding=}"
        if not line.off_shift:
            assert level == waiting + holding, f"{st.id}: station WIP counter {level} but {waiting + holding} there"
        at_stations += level
    assert line.wip == at_stations + transit.in_transit + sum(line.backlog(st.id) for st in line.stations)
    assert line.stats.wip.level == line.wip
