"""Orders, the units (parts) that flow through the line, and product variants with their resolved routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simline.sim.station import StationRuntime

__all__ = ["Order", "Unit", "Variant"]


@dataclass(frozen=True, slots=True, eq=False)
class Variant:
    """One configuration of a family (family + a choice per option), with its route through the line."""

    key: str
    family: str
    options: tuple[tuple[str, str], ...]
    price: float
    material_cost: float
    route: tuple[StationRuntime, ...]

    def options_text(self) -> str:
        """Options as ``name=value;name=value``."""
        return ";".join(f"{k}={v}" for k, v in self.options)


class Order:
    """A customer order for ``quantity`` units of one variant."""

    __slots__ = ("created", "done", "due", "id", "quantity", "variant")

    def __init__(self, order_id: str, variant: Variant, quantity: int, created: float, due: float) -> None:
        self.id = order_id
        self.variant = variant
        self.quantity = quantity
        self.created = created
        self.due = due
        self.done = 0


class Unit:
    """One unit being made: where it is in its route, whether it is defective, how often it was reworked."""

    __slots__ = ("arrived", "defective", "id", "order", "released", "reworks", "step")

    def __init__(self, unit_id: int, order: Order, released: float) -> None:
        self.id = unit_id
        self.order = order
        self.released = released
        self.arrived = released
        self.step = 0
        self.defective = False
        self.reworks = 0
