"""Shared building blocks of the scenario schema."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Id", "Strict"]


class Strict(BaseModel):
    """Base of every scenario model: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Id = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
"""An identifier: lower case letters, digits and ``_``, starting with a letter (safe in OPC UA ids and topics)."""
