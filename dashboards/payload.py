"""What the big-screen page receives every second: a compact, JSON-ready digest of a snapshot.

The page is built once (:mod:`dashboards.views`); after that only this data travels, and the page's script
(``assets/dashboard.js``) writes it into the elements that are already there: states as classes, texts, widths.
Rebuilding hundreds of components every second made the browser spend most of a core re-creating them.
"""

from __future__ import annotations

import math
from typing import Any

from dashboards.feed import TILES, LineView, OrderView, Snapshot

__all__ = ["clock_text", "eta_text", "euro", "kpi_text", "snapshot_data"]


def clock_text(minutes: float) -> str:
    """Simulated time as ``Day N · hh:mm``."""
    day, rest = divmod(int(minutes), 1440)
    return f"Day {day + 1} · {rest // 60:02d}:{rest % 60:02d}"


def euro(value: float) -> str:
    """Money as ``+1,234 €`` / ``−1,234 €``."""
    sign = "−" if value < 0 else "+"
    return f"{sign}{abs(value):,.0f} €"


def kpi_text(value: float | None, unit: str) -> str:
    """A KPI value for a tile: ``—`` while undefined."""
    if value is None or not math.isfinite(value):
        return "—"
    if unit == "%":
        return f"{100 * value:.1f} %"
    if unit == "units":
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def eta_text(order: OrderView, now: float) -> str:
    """When an order is (or was) done: ``in 1.5 h`` or the clock time it completed."""
    if order.status in ("done", "late"):
        return clock_text(order.eta) if order.eta is not None else ""
    if order.eta is None:
        return "—"
    return f"in {max(0.0, order.eta - now) / 60:.1f} h"


def _line(view: LineView, key: str) -> dict[str, Any]:
    stations = []
    for st in view.stations:
        capacity = "∞" if st.capacity is None else str(st.capacity)
        fill = st.waiting / st.capacity if st.capacity else min(1.0, st.waiting / 20)
        stations.append(
            {
                "id": st.id,
                "state": st.state,
                "machines": list(st.machines) if len(st.machines) > 1 else [],
                "fill": round(100 * fill),
                "meta": f"queue {st.waiting}/{capacity} · on machine {st.in_process}",
                "down": st.down,
            }
        )
    return {"key": key, "stations": stations, "alarms": list(view.alarms)}


def _spark(values: tuple[float | None, ...], unit: str) -> list[float | None]:
    scale = 100.0 if unit == "%" else 1.0
    return [None if v is None or not math.isfinite(v) else round(v * scale, 4) for v in values]


def snapshot_data(snap: Snapshot) -> dict[str, Any]:
    """The digest of ``snap`` the page's script applies (see ``assets/dashboard.js`` for its use)."""
    main = snap.lines[0]
    now = snap.sim_minutes
    orders = [
        {
            "id": o.id,
            "product": o.product + (f" ×{o.quantity}" if o.quantity > 1 else ""),
            "progress": round(100 * o.progress),
            "at": ", ".join(o.stations_now) or ("queued" if o.status == "waiting" else "—"),
            "eta": eta_text(o, now),
            "status": o.status,
            "origin": o.origin,
        }
        for o in main.orders
    ]
    more = main.open_orders - sum(1 for o in main.orders if o.status in ("waiting", "in progress"))
    money = None
    if snap.money is not None:
        m = snap.money.now
        money = {
            "net": euro(m.net),
            "funded": euro(m.net_funded),
            "detail": [
                f"extra contribution margin {euro(m.contribution_delta)}",
                f"investment cost to date {euro(-m.cost)} (funded {euro(-m.cost_funded)})",
                f"over {m.hours:.1f} simulated hours",
            ],
        }
    return {
        "seq": snap.seq,
        "clock": clock_text(now),
        "state": "paused" if snap.paused else "running",
        "speed": f"speed {snap.speed:g}×",
        "shift": "on shift" if snap.working else "off shift",
        "lag": f"lag {snap.lag_seconds:.1f} s" if snap.lag_seconds > 1 else "",
        "tiles": [
            {
                "key": key,
                "values": [kpi_text(v.kpis.get(name), unit) for v in snap.lines],
                "trend": _spark(main.trend[key], unit),
            }
            for key, _, name, unit in TILES
        ],
        "lines": [_line(v, f"l{i}") for i, v in enumerate(snap.lines)],
        "orders": orders,
        "more": f"and {more} more open orders" if more > 0 else "",
        "money": money,
    }
