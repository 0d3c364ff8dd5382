"""Orders from outside the scenario (a visitor at the kiosk, an MES, an OPC UA or MQTT client), parsed and checked
by one set of rules for every entry point."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from simline.errors import CommandError

__all__ = ["MAX_ORDER_TEXT", "TokenBucket", "parse_options"]

MAX_ORDER_TEXT = 4096
"""Longest accepted options text (bytes)."""


def parse_options(text: str | dict[str, Any] | None) -> dict[str, str]:
    """Option choices from a JSON object, ``name=value;name=value`` text, or a mapping.

    Raises:
        CommandError: The text is too long, not one of the two forms, or has non-text values.
    """
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        data: Any = text
    else:
        if len(text.encode("utf-8")) > MAX_ORDER_TEXT:
            raise CommandError("options", f"longer than {MAX_ORDER_TEXT} bytes")
        stripped = text.strip()
        if stripped.startswith("{"):
            try:
                data = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise CommandError("options", f"not valid JSON: {exc.msg} at character {exc.pos}") from None
        else:
            data = {}
            for pair in filter(None, (p.strip() for p in stripped.split(";"))):
                name, sep, value = pair.partition("=")
                if not sep or not name.strip():
                    raise CommandError("options", f"expected name=value;name=value, got '{pair}'")
                data[name.strip()] = value.strip()
    if not isinstance(data, dict):
        raise CommandError("options", "must be an object mapping option names to choices")
    out: dict[str, str] = {}
    for name, value in data.items():
        if not isinstance(value, str):
            raise CommandError(f"options.{name}", f"the choice must be text, got {value!r}")
        out[str(name)] = value
    return out


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        """Take one token if there is one."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
