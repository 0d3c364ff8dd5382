"""The one error root of simline and its few subclasses.

User-facing commands catch :class:`SimlineError`, print its message and exit non-zero; anything else is a bug
and is allowed to raise with a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CommandError", "Issue", "ScenarioError", "SimlineError"]


class SimlineError(Exception):
    """Root of every error simline raises on purpose."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found in a scenario file.

    Attributes:
        path: Dotted YAML path of the bad value, e.g. ``stations[2].buffer``; empty for the whole file.
        message: What is wrong and what is allowed.
        line: 1-based line in the file, when known.
    """

    path: str
    message: str
    line: int | None = None

    def format(self, source: str) -> str:
        """Render as ``file:line: path: message``."""
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ScenarioError(SimlineError):
    """A scenario file (or an overlay applied to it) is invalid.

    Attributes:
        source: The file name (or ``<string>``) the issues refer to.
        issues: Every problem found, in file order.
    """

    def __init__(self, source: str, issues: list[Issue]) -> None:
        self.source = source
        self.issues = sorted(issues, key=lambda i: (i.line is None, i.line or 0, i.path))
        count = len(self.issues)
        head = f"{source}: {count} problem{'s' if count != 1 else ''} in the scenario"
        super().__init__("\n".join([head, *(f"  {i.format(source)}" for i in self.issues)]))


class CommandError(SimlineError):
    """A command to a running line (an order, a fault injection, a setpoint) was rejected.

    Attributes:
        field: The field of the command that is wrong (empty when the whole command is).
        reason: Why it was rejected, in words a visitor or client can act on.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)
