"""Static, self-contained HTML report of a comparison (plotly, works offline). Being written."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_report(comparison: Any, path: Path) -> None:
    """Write the HTML report of ``comparison`` to ``path``."""
    raise NotImplementedError
