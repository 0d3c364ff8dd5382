"""Products: configurable families, their options and the demand mix."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from simline.scenario.base import Id, Strict

__all__ = ["Option", "ProductFamily"]

_Share = Annotated[float, Field(ge=0, le=1)]
_Money = Annotated[float, Field(ge=0)]
_SUM_TOL = 1e-6


class Option(Strict):
    """A configurable option of a family, e.g. ``seal: {choices: {NBR: 0.7, FKM: 0.3}}``.

    ``choices`` maps each value a customer can pick to its share of demand (the shares sum to 1).
    ``price_extra`` and ``cost_extra`` add to the unit price and material cost for a choice.
    """

    choices: dict[str, _Share] = Field(min_length=1)
    price_extra: dict[str, _Money] = Field(default_factory=dict)
    cost_extra: dict[str, _Money] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Option:
        total = sum(self.choices.values())
        if abs(total - 1) > _SUM_TOL:
            raise ValueError(f"choice shares must sum to 1, they sum to {total:g}")
        for field in ("price_extra", "cost_extra"):
            unknown = sorted(set(getattr(self, field)) - set(self.choices))
            if unknown:
                raise ValueError(
                    f"{field} names {', '.join(map(repr, unknown))}, not a choice (choices: {', '.join(self.choices)})"
                )
        return self


class ProductFamily(Strict):
    """A product family with its share of demand, price, material cost and options."""

    family: Id
    name: str = ""
    share: _Share = 1.0
    price: _Money
    material_cost: _Money = 0.0
    options: dict[Id, Option] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_reserved_option(self) -> ProductFamily:
        if "family" in self.options:
            raise ValueError("'family' cannot be an option name: routing conditions use it for the product family")
        return self
