"""Opt-in full event log (CSV or Parquet) for analysis by research partners.

The log is an observer: runs that do not ask for it build no events at all. Rows are written in batches, so
memory stays bounded however long the run.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import fields
from pathlib import Path
from types import TracebackType
from typing import Any

from simline import events as ev
from simline.errors import SimlineError

__all__ = ["COLUMNS", "EventLog"]

_EVENT_TYPES = [
    ev.OrderCreated,
    ev.StateChanged,
    ev.OperationStarted,
    ev.OperationFinished,
    ev.UnitScrapped,
    ev.UnitReworked,
    ev.UnitFinished,
    ev.OrderCompleted,
    ev.Breakdown,
    ev.Repaired,
    ev.ShiftChanged,
]
COLUMNS: list[str] = ["replication", "event"]
for _t in _EVENT_TYPES:
    for _f in fields(_t):
        if _f.name not in COLUMNS:
            COLUMNS.append(_f.name)
"""Columns of the event log; a field an event does not have is empty."""

_BATCH = 50_000


class EventLog:
    """Writes every event of one replication to a CSV or Parquet file (by the file's suffix)."""

    def __init__(self, path: Path, replication: int = 0) -> None:
        self.path = path
        self.replication = replication
        self.parquet = path.suffix.lower() == ".parquet"
        self._rows: list[dict[str, Any]] = []
        self._writer: Any = None
        self._handle: Any = None
        if self.parquet:
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise SimlineError("Parquet export needs pyarrow: pip install 'simline[parquet]'") from None
        self.count = 0

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def __call__(self, event: ev.Event) -> None:
        row = event.as_row()
        row["replication"] = self.replication
        self._rows.append(row)
        self.count += 1
        if len(self._rows) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in self._rows], schema=_schema())
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.path, table.schema)
            self._writer.write_table(table)
        else:
            if self._handle is None:
                self._handle = self.path.open("w", newline="", encoding="utf-8")
                self._writer = csv.DictWriter(self._handle, COLUMNS)
                self._writer.writeheader()
            self._writer.writerows(self._rows)
        self._rows.clear()

    def close(self) -> None:
        """Write what is left and close the file."""
        self._flush()
        if self.parquet and self._writer is not None:
            self._writer.close()
        if self._handle is not None:
            self._handle.close()

    @staticmethod
    def part_path(path: Path, replication: int) -> Path:
        """Where replication ``replication`` writes its part of ``path`` before the merge."""
        return path.with_name(f".{path.name}.part{replication}{path.suffix}")

    @staticmethod
    def merge(path: Path, parts: list[Path]) -> None:
        """Concatenate the replications' parts into ``path`` and remove them."""
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            with pq.ParquetWriter(path, _schema()) as writer:
                for part in parts:
                    writer.write_table(pq.read_table(part, schema=_schema()))
                    part.unlink()
            return
        with path.open("w", newline="", encoding="utf-8") as out:
            for i, part in enumerate(parts):
                with part.open(encoding="utf-8") as src:
                    if i:
                        src.readline()  # header once
                    shutil.copyfileobj(src, out)
                part.unlink()


def _schema() -> Any:
    import pyarrow as pa

    types = {
        "replication": pa.int32(),
        "time": pa.float64(),
        "machine": pa.int32(),
        "unit_id": pa.int64(),
        "quantity": pa.int32(),
        "due": pa.float64(),
        "lead_time": pa.float64(),
        "downtime": pa.float64(),
        "defective": pa.bool_(),
        "good": pa.bool_(),
        "on_time": pa.bool_(),
        "working": pa.bool_(),
    }
    return pa.schema([(c, types.get(c, pa.string())) for c in COLUMNS])
