"""Cross-reference checks that a single field cannot make: ids that must exist, shares, bounded rework."""

from __future__ import annotations

from collections.abc import Iterator

from simline.scenario.line import Calendar
from simline.scenario.model import Scenario

__all__ = ["Problem", "check_scenario"]

Path = tuple[str | int, ...]
Problem = tuple[Path, str]
"""A YAML path and what is wrong there."""

_SUM_TOL = 1e-6


def _known(names: object) -> str:
    items = list(names)  # type: ignore[call-overload]
    return ", ".join(str(n) for n in items) if items else "none"


def check_scenario(scenario: Scenario) -> list[Problem]:
    """Every cross-reference problem of a scenario whose fields are each valid.

    Returns:
        The problems as (path, message) pairs; empty when the scenario is consistent.
    """
    return [
        *_check_products(scenario),
        *_check_stations(scenario),
        *_check_routing(scenario),
        *_check_calendar(scenario.calendar),
        *check_order_rows(scenario),
    ]


def _check_products(s: Scenario) -> Iterator[Problem]:
    seen: set[str] = set()
    for i, family in enumerate(s.products):
        if family.family in seen:
            yield ("products", i, "family"), f"family '{family.family}' is defined twice"
        seen.add(family.family)
    total = sum(f.share for f in s.products)
    if abs(total - 1) > _SUM_TOL:
        shares = ", ".join(f"{f.family}={f.share:g}" for f in s.products)
        yield ("products",), f"family shares must sum to 1, they sum to {total:g} ({shares})"


def _options(s: Scenario) -> dict[str, set[str]]:
    options: dict[str, set[str]] = {}
    for family in s.products:
        for name, option in family.options.items():
            options.setdefault(name, set()).update(option.choices)
    return options


def _check_stations(s: Scenario) -> Iterator[Problem]:
    families = [f.family for f in s.products]
    options = _options(s)
    ids = [st.id for st in s.stations]
    seen: set[str] = set()
    for i, st in enumerate(s.stations):
        here: Path = ("stations", i)
        if st.id in seen:
            yield (*here, "id"), f"station '{st.id}' is defined twice"
        seen.add(st.id)
        for fam in st.processing.by_family:
            if fam not in families:
                yield (
                    (*here, "processing", "by_family", fam),
                    f"'{fam}' is not a product family (known: {_known(families)})",
                )
        for opt, choices in st.processing.by_option.items():
            if opt not in options:
                yield (
                    (*here, "processing", "by_option", opt),
                    f"'{opt}' is not a product option (known: {_known(sorted(options))})",
                )
                continue
            for choice in choices:
                if choice not in options[opt]:
                    yield (
                        (*here, "processing", "by_option", opt, choice),
                        f"'{choice}' is not a choice of option '{opt}' (choices: {_known(sorted(options[opt]))})",
                    )
        if st.setup is not None:
            for src, row in st.setup.matrix.items():
                for fam in (src, *row):
                    if fam not in families:
                        yield (
                            (*here, "setup", "matrix", src),
                            f"'{fam}' is not a product family (known: {_known(families)})",
                        )
        if st.failures is not None and st.failures.needs_technician and s.maintenance.technicians is None:
            yield (
                (*here, "failures", "needs_technician"),
                "needs a maintenance crew: set maintenance.technicians to the number of technicians",
            )
        if st.inspection is not None and st.inspection.rework_to is not None and st.inspection.rework_to not in ids:
            yield (
                (*here, "inspection", "rework_to"),
                f"'{st.inspection.rework_to}' is not a station (known: {_known(ids)})",
            )


def _check_routing(s: Scenario) -> Iterator[Problem]:
    ids = [st.id for st in s.stations]
    families = [f.family for f in s.products]
    options = _options(s)
    position: dict[str, int] = {}
    for i, step in enumerate(s.routing):
        here: Path = ("routing", i)
        if step.station not in ids:
            yield (*here, "station"), f"'{step.station}' is not a station (known: {_known(ids)})"
            continue
        if step.station in position:
            yield (
                (*here, "station"),
                f"station '{step.station}' appears twice in the routing; use rework for loops",
            )
        position.setdefault(step.station, i)
        for key, values in step.when.items():
            allowed = families if key == "family" else sorted(options.get(key, ()))
            if key != "family" and key not in options:
                yield (
                    (*here, "when", key),
                    f"'{key}' is neither 'family' nor a product option (options: {_known(sorted(options))})",
                )
                continue
            for value in values:
                if value not in allowed:
                    yield (
                        (*here, "when", key),
                        f"'{value}' is not a value of {key} (allowed: {_known(allowed)})",
                    )
    for i, st in enumerate(s.stations):
        if st.id not in position:
            yield ("stations", i, "id"), f"station '{st.id}' is not in the routing"
        insp = st.inspection
        target = insp.rework_to if insp is not None else None
        if target in position and st.id in position and position[target] > position[st.id]:
            yield (
                ("stations", i, "inspection", "rework_to"),
                f"rework goes back to an earlier station; '{target}' comes after '{st.id}' in the routing",
            )


def _check_calendar(cal: Calendar | None) -> Iterator[Problem]:
    if cal is None:
        return
    if len(set(cal.working_days)) != len(cal.working_days):
        yield ("calendar", "working_days"), "a day is listed twice"
    spans = sorted(w.minutes() for w in cal.shifts)
    # compare each shift with the next, and the last with the first of the following day
    nexts = [*spans[1:], (spans[0][0] + 1440, spans[0][1] + 1440)] if len(spans) > 1 else []
    for (a0, a1), (b0, b1) in zip(spans, nexts, strict=False):
        if b0 < a1:
            yield (
                ("calendar", "shifts"),
                f"shifts overlap: {_hhmm(a0)}-{_hhmm(a1)} and {_hhmm(b0)}-{_hhmm(b1)}",
            )
    for i, brk in enumerate(cal.breaks):
        b0, b1 = brk.minutes()
        inside = any(s0 <= b0 + k and b1 + k <= s1 for s0, s1 in spans for k in (0, 1440))
        if not inside:
            yield ("calendar", "breaks", i), f"break {brk.start}-{brk.end} is not inside a shift"


def _hhmm(minutes: int) -> str:
    minutes %= 1440
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def check_order_rows(s: Scenario) -> Iterator[Problem]:
    """Problems in the rows of an order book (families, options, due before release)."""
    from simline.scenario.orders import OrderBook

    if not isinstance(s.orders, OrderBook):
        return
    families = {f.family: f for f in s.products}
    if s.orders.file is None and not s.orders.rows:
        yield ("orders",), "an order book needs a file or at least one entry under rows"
    seen_ids: set[str] = set()
    for i, row in enumerate(s.orders.rows):
        here: Path = ("orders", "rows", i)
        if row.order_id is not None:
            if row.order_id in seen_ids:
                yield (*here, "order_id"), f"order id '{row.order_id}' is used twice"
            seen_ids.add(row.order_id)
        fam = families.get(row.family)
        if fam is None:
            yield (*here, "family"), f"'{row.family}' is not a product family (known: {_known(families)})"
            continue
        for name, value in row.options.items():
            if name not in fam.options:
                yield (
                    (*here, "options", name),
                    f"'{name}' is not an option of {fam.family} (options: {_known(fam.options)})",
                )
            elif value not in fam.options[name].choices:
                choices = _known(fam.options[name].choices)
                yield (*here, "options", name), f"'{value}' is not a choice of {name} (choices: {choices})"
        missing = sorted(set(fam.options) - set(row.options))
        if missing:
            yield (*here, "options"), f"no choice given for {', '.join(missing)}"
        if row.due_hour is not None and row.due_hour < row.release_hour:
            yield (*here, "due_hour"), f"due ({row.due_hour:g} h) before release ({row.release_hour:g} h)"
