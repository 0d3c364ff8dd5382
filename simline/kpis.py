"""KPIs of one run, after ISO 22400-2, as a flat mapping with stable names (documented in docs/kpis.md).

Time elements per machine (OPC 40001-1 annex C / ISO 22400): PBT, planned busy time, is the time on shift
minus planned maintenance; APT, actual production time, is processing time. Per station:
availability = APT/PBT, performance = PRI·PQ/APT, quality = GQ/PQ, OEE = their product. Line values aggregate
the time elements of every machine, with quality measured on the units leaving the line.
"""

from __future__ import annotations

import math

from simline.events import MachineState
from simline.sim.line import Line

__all__ = ["KPI_UNITS", "LIVE_KPIS", "Kpis", "compute_kpis", "state_names"]

Kpis = dict[str, float | None]
"""KPI name → value; ``None`` where a KPI is undefined in this run (e.g. MTTR without failures)."""

P, S, D, M, OFF = (
    MachineState.PROCESSING,
    MachineState.SETUP,
    MachineState.DOWN,
    MachineState.MAINTENANCE,
    MachineState.OFF_SHIFT,
)


def state_names() -> list[str]:
    """The machine states in the order of their values, as used in KPI names."""
    return [s.label for s in MachineState]


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def compute_kpis(line: Line) -> Kpis:
    """Every KPI of ``line`` over the observed window (end of warm-up to now).

    Machine times are booked up to now first, so a live line's KPIs are current between state changes.
    """
    now = line.env.now
    for machine in line.machines:
        machine.flush()
    window = now - min(line.warmup, now)
    hours = window / 60.0
    k: Kpis = {"line.observed_hours": hours}
    sum_pbt = sum_apt = sum_pri = 0.0
    energy_total = 0.0
    active: dict[str, float] = {}
    for st in line.stations:
        spec = st.spec
        stats = st.stats
        n = len(st.machines)
        times = [sum(m.times[s] for m in st.machines) for s in range(len(MachineState))]
        total = sum(times) or 1.0
        on_shift = total - times[OFF]
        pbt = on_shift - times[M]
        apt = times[P]
        pri = stats.planned_runtime
        prefix = f"stations.{st.id}."
        availability = _ratio(apt, pbt)
        performance = _ratio(pri, apt)
        quality = _ratio(stats.good, stats.processed)
        oee = _ratio(pri * stats.good / stats.processed, pbt) if stats.processed else (0.0 if pbt > 0 else None)
        power = spec.power_kw
        blocked_kw = power.idle if power.blocked is None else power.blocked
        standby_kw = power.idle if power.standby is None else power.standby
        kw = (
            power.processing,
            power.setup,
            power.idle,
            blocked_kw,
            power.down,
            power.maintenance,
            power.off_shift,
            standby_kw,
        )
        energy = sum(t * w for t, w in zip(times, kw, strict=True)) / 60.0
        energy_total += energy
        active_share = _ratio(times[P] + times[S] + times[D] + times[M], on_shift)
        active[st.id] = active_share or 0.0
        k.update(
            {
                prefix + "availability": availability,
                prefix + "performance": performance,
                prefix + "quality": quality,
                prefix + "oee": oee,
                prefix + "utilisation": _ratio(times[P] + times[S], on_shift),
                prefix + "active_share": active_share,
                prefix + "processed": float(stats.processed),
                prefix + "good": float(stats.good),
                prefix + "rejected": float(stats.rejected),
                prefix + "setups": float(stats.setups),
                prefix + "failures": float(stats.failures),
                prefix + "maintenances": float(stats.maintenances),
                prefix + "mtbf_h": _ratio(apt / 60.0, stats.failures),
                prefix + "mttr_h": stats.down_time.mean / 60.0 if stats.down_time.count else None,
                prefix + "wip_mean": stats.wip.mean(now),
                prefix + "sojourn_mean_h": stats.sojourn.mean / 60.0 if stats.sojourn.count else None,
                prefix + "buffer_mean": st.buffer.level.mean(now),
                prefix + "buffer_max": float(st.buffer.level.max),
                prefix + "energy_kwh": energy,
            }
        )
        for state in MachineState:
            k[prefix + "state_share." + state.label] = times[state] / total if n else None
        sum_pbt += pbt
        sum_apt += apt
        sum_pri += pri
    ls = line.stats
    out = ls.units_finished + ls.units_scrapped
    first = line.machines[0]
    working_hours = (sum(first.times) - first.times[OFF]) / 60.0
    quality = _ratio(ls.units_good, out)
    availability = _ratio(sum_apt, sum_pbt)
    performance = _ratio(sum_pri, sum_apt)
    oee = availability * performance * quality if None not in (availability, performance, quality) else None  # type: ignore[operator]
    k.update(
        {
            "line.throughput_per_hour": _ratio(ls.units_good, hours),
            "line.units_released": float(ls.units_released),
            "line.units_finished": float(ls.units_finished),
            "line.units_good": float(ls.units_good),
            "line.units_scrapped": float(ls.units_scrapped),
            "line.units_reworked": float(ls.units_reworked),
            "line.scrap_rate": _ratio(ls.units_scrapped, out),
            "line.first_pass_yield": _ratio(ls.units_first_pass, out),
            "line.escaped_defect_rate": _ratio(ls.units_finished - ls.units_good, ls.units_finished),
            "line.orders_created": float(ls.orders_created),
            "line.orders_completed": float(ls.orders_completed),
            "line.on_time_delivery": _ratio(ls.orders_on_time, ls.orders_completed),
            "line.orders_late": float(ls.orders_late),
            "line.tardiness_h": ls.tardiness / 60.0,
            "line.working_hours": working_hours,
            "line.staffed_hours": working_hours * line.staff,
            "line.lead_time_mean_h": ls.lead_time.mean / 60.0 if ls.lead_time.count else None,
            "line.lead_time_p50_h": _nan_none(ls.lead_time_hist.quantile(0.5) / 60.0),
            "line.lead_time_p95_h": _nan_none(ls.lead_time_hist.quantile(0.95) / 60.0),
            "line.wip_mean": ls.wip.mean(now),
            "line.unit_time_mean_h": ls.unit_time.mean / 60.0 if ls.unit_time.count else None,
            "line.exit_rate_per_hour": _ratio(out, hours),
            "line.availability": availability,
            "line.performance": performance,
            "line.quality": quality,
            "line.oee": oee,
            "line.energy_kwh": energy_total,
            "line.energy_per_good_unit_kwh": _ratio(energy_total, ls.units_good),
            "line.revenue": ls.revenue,
            "line.material_cost": ls.material_cost,
        }
    )
    return k


def _nan_none(x: float) -> float | None:
    return None if math.isnan(x) else x


KPI_UNITS: dict[str, str] = {
    "throughput_per_hour": "units/h",
    "exit_rate_per_hour": "units/h",
    "lead_time_mean_h": "h",
    "lead_time_p50_h": "h",
    "lead_time_p95_h": "h",
    "unit_time_mean_h": "h",
    "sojourn_mean_h": "h",
    "mtbf_h": "h",
    "mttr_h": "h",
    "energy_kwh": "kWh",
    "energy_per_good_unit_kwh": "kWh",
    "revenue": "EUR",
    "material_cost": "EUR",
    "observed_hours": "h",
    "tardiness_h": "h",
    "working_hours": "h",
    "staffed_hours": "person-h",
    "wip_mean": "units",
    "buffer_mean": "units",
    "buffer_max": "units",
}
"""Unit of each KPI by its last name part; KPIs not listed are counts or shares (0–1)."""


LIVE_KPIS: dict[str, str] = {
    "OEE": "line.oee",
    "Availability": "line.availability",
    "Performance": "line.performance",
    "Quality": "line.quality",
    "ThroughputPerHour": "line.throughput_per_hour",
    "WIP": "line.wip_mean",
    "OnTimeDelivery": "line.on_time_delivery",
    "LeadTimeMeanHours": "line.lead_time_mean_h",
    "ScrapRate": "line.scrap_rate",
    "EnergyPerGoodUnit": "line.energy_per_good_unit_kwh",
}
"""The line KPIs a live line publishes, by their protocol name (OPC UA ``Line.KPIs.<name>``, Sparkplug
``KPIs/<name>``)."""
