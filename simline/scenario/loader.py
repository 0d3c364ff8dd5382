"""Scenario files in, a validated :class:`Scenario` out, or a :class:`ScenarioError` that says where and why."""

from __future__ import annotations

import copy
import csv
import difflib
import types
import typing
from pathlib import Path as FsPath
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from simline.errors import Issue, ScenarioError
from simline.scenario.checks import check_scenario
from simline.scenario.model import Scenario
from simline.scenario.orders import OrderBook
from simline.scenario.yamlsource import LineMap, YamlProblem, _dotted, read_yaml

__all__ = ["load_scenario", "parse_scenario", "scenario_from_data"]

Path = tuple[str | int, ...]
_MAX_BOOK_ROWS = 200_000


def load_scenario(path: str | FsPath) -> Scenario:
    """Read, validate and cross-check a scenario file.

    Raises:
        ScenarioError: The file cannot be read or is invalid; every problem found is listed with its line.
    """
    file = FsPath(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(str(file), [Issue("", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(file), [Issue("", f"cannot read the file: {exc}")]) from None
    return parse_scenario(text, source=str(file), base_dir=file.parent)


def parse_scenario(text: str, source: str = "<string>", base_dir: FsPath | None = None) -> Scenario:
    """Validate scenario YAML text; ``base_dir`` resolves an order book file.

    Raises:
        ScenarioError: Every problem found, each with its YAML path and line.
    """
    try:
        data, lines = read_yaml(text)
    except YamlProblem as exc:
        raise ScenarioError(source, [exc.issue]) from None
    return scenario_from_data(data, source, lines, base_dir)


def scenario_from_data(
    data: Any,
    source: str = "<data>",
    lines: LineMap | None = None,
    base_dir: FsPath | None = None,
    check_investments: bool = True,
) -> Scenario:
    """Validate already-parsed scenario data (e.g. a scenario with an overlay applied).

    Raises:
        ScenarioError: Every problem found.
    """
    lines = lines or {}
    if not isinstance(data, dict):
        raise ScenarioError(source, [Issue("", "a scenario is a mapping of keys (name, products, stations, ...)")])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, [_issue_from(err, data, lines) for err in exc.errors()]) from None
    book_lines: list[int] = []
    book_name = ""
    if isinstance(scenario.orders, OrderBook) and scenario.orders.file is not None:
        book_name = scenario.orders.file
        scenario, book_lines = _with_book(scenario, source, base_dir or FsPath("."), lines)
    problems = check_scenario(scenario)
    if problems:
        issues = []
        for path, msg in problems:
            if path[:2] == ("orders", "rows") and len(path) > 2 and int(path[2]) < len(book_lines):
                issues.append(_book_issue(book_name, book_lines[int(path[2])], path[3:], msg, lines))
            else:
                issues.append(_issue_at(path, msg, lines))
        raise ScenarioError(source, issues)
    if check_investments:
        _check_investments(scenario, source, lines)
    return scenario


def _check_investments(scenario: Scenario, source: str, lines: LineMap) -> None:
    """Each investment must apply to the scenario and leave it valid."""
    from simline.overlays import apply_investments

    issues: list[Issue] = []
    seen: set[str] = set()
    for i, inv in enumerate(scenario.investments):
        if inv.name in seen:
            issues.append(_issue_at(("investments", i, "name"), f"investment '{inv.name}' is defined twice", lines))
            continue
        seen.add(inv.name)
        try:
            apply_investments(scenario, [inv.name])
        except ScenarioError as exc:
            where: Path = ("investments", i, "changes", _first_breaking_change(scenario, i))
            for issue in exc.issues:
                path = _parse_path(issue.path) if issue.path.startswith("investments[") else where
                message = issue.message if issue.path.startswith("investments[") else f"{issue.path}: {issue.message}"
                issues.append(_issue_at(path, message, lines))
    if issues:
        raise ScenarioError(source, issues)


def _first_breaking_change(scenario: Scenario, index: int) -> int:
    """The first change of investment ``index`` after which the scenario is no longer valid."""
    from simline.overlays import OverlayProblem, apply_change

    data = scenario.model_dump(mode="python")
    changes = scenario.investments[index].changes
    for j, change in enumerate(changes):
        try:
            apply_change(data, change)
            scenario_from_data(copy.deepcopy(data), check_investments=False)
        except (OverlayProblem, ScenarioError):
            return j
    return len(changes) - 1


def _parse_path(dotted: str) -> Path:
    out: list[str | int] = []
    for part in dotted.replace("[", ".[").split("."):
        if part.startswith("[") and part.endswith("]"):
            out.append(int(part[1:-1]))
        elif part:
            out.append(part)
    return tuple(out)


def _book_issue(book: str, csv_line: int, rest: Path, message: str, lines: LineMap) -> Issue:
    field = f"{_dotted(rest)}: " if rest else ""
    return _issue_at(("orders", "file"), f"{book} line {csv_line}: {field}{message}", lines)


def _issue_at(path: Path, message: str, lines: LineMap) -> Issue:
    probe = path
    while probe and probe not in lines:
        probe = probe[:-1]
    return Issue(_dotted(path), message, lines.get(probe))


def _issue_from(err: Any, data: Any, lines: LineMap) -> Issue:
    path: list[str | int] = []
    node = data
    model_path: list[str | int] = []
    for part in err["loc"]:
        model_path.append(part)
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node = node[part]
            path.append(part)
        # else: a union tag or validator name pydantic adds to the location; not part of the YAML path
    kind = err["type"]
    if kind == "extra_forbidden":
        key = path[-1] if path else "?"
        allowed = _allowed_keys(model_path[:-1])
        hint = ""
        if allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            hint += f"; allowed here: {', '.join(allowed)}"
        message = f"unknown key '{key}'{hint}"
    elif kind == "missing":
        key = err["loc"][-1] if err["loc"] else "?"
        message = f"required key '{key}' is missing"
    elif kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        message = f"kind '{ctx.get('tag')}' is not known here (allowed: {ctx.get('expected_tags')})"
    elif kind == "union_tag_not_found":
        message = "needs a 'kind' key saying which variant this is"
    else:
        shown = err.get("input")
        got = "" if isinstance(shown, dict | list) else f" (got {shown!r})"
        message = f"{err['msg']}{got}"
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
    return _issue_at(tuple(path), message, lines)


def _allowed_keys(loc: list[str | int]) -> list[str]:
    tp: Any = Scenario
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _step(tp: Any, part: str | int) -> Any:
    tp = _unwrap(tp)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        members = [_unwrap(m) for m in typing.get_args(tp) if m is not type(None)]
        for m in members:
            if isinstance(m, type) and issubclass(m, BaseModel):
                kind = m.model_fields.get("kind")
                if kind is not None and typing.get_args(kind.annotation) == (part,):
                    return m
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        tp = models[0] if len(models) == 1 else (members[0] if len(members) == 1 else None)
        if tp is None:
            return None
        return _step(tp, part)
    if origin is list:
        return typing.get_args(tp)[0] if isinstance(part, int) else None
    if origin is dict:
        return typing.get_args(tp)[1]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(str(part))
        return field.annotation if field is not None else None
    return None


def _with_book(scenario: Scenario, source: str, base_dir: FsPath, lines: LineMap) -> tuple[Scenario, list[int]]:
    """The scenario with the book's rows read in (before any inline rows) and ``file`` cleared, and the CSV
    line of each row read."""
    book = scenario.orders
    assert isinstance(book, OrderBook) and book.file is not None
    file = (base_dir / book.file).resolve()
    where: Path = ("orders", "file")
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or ())
            needed = {"release_hour", "family"}
            known = {"order_id", "release_hour", "due_hour", "family", "options", "quantity"}
            if not needed <= columns:
                msg = f"{book.file}: needs columns {', '.join(sorted(needed))} (has: {', '.join(sorted(columns))})"
                raise ScenarioError(source, [_issue_at(where, msg, lines)])
            if columns - known:
                extra = ", ".join(sorted(columns - known))
                raise ScenarioError(
                    source,
                    [
                        _issue_at(
                            where,
                            f"{book.file}: unknown columns {extra} (known: {', '.join(sorted(known))})",
                            lines,
                        )
                    ],
                )
            rows: list[dict[str, Any]] = []
            row_lines: list[int] = []
            issues: list[Issue] = []
            for number, raw in enumerate(reader, start=2):
                if len(rows) >= _MAX_BOOK_ROWS:
                    raise ScenarioError(
                        source, [_issue_at(where, f"{book.file}: more than {_MAX_BOOK_ROWS} orders", lines)]
                    )
                row, problem = _book_row(raw)
                if problem:
                    issues.append(_issue_at(where, f"{book.file} line {number}: {problem}", lines))
                else:
                    rows.append(row)
                    row_lines.append(number)
    except FileNotFoundError:
        raise ScenarioError(
            source, [_issue_at(where, f"order book '{book.file}' not found (looked in {file.parent})", lines)]
        ) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ScenarioError(source, [_issue_at(where, f"cannot read order book '{book.file}': {exc}", lines)]) from None
    if issues:
        raise ScenarioError(source, issues)
    data = scenario.model_dump(mode="python")
    data["orders"]["rows"] = rows + data["orders"]["rows"]
    data["orders"]["file"] = None
    try:
        return Scenario.model_validate(data), row_lines
    except ValidationError as exc:
        issues = []
        for e in exc.errors():
            loc = tuple(e["loc"])
            index = loc[2] if len(loc) > 2 and isinstance(loc[2], int) else None
            if index is not None and index < len(row_lines):
                issues.append(_book_issue(book.file, row_lines[index], loc[3:], e["msg"], lines))
            else:
                issues.append(_issue_at(where, f"{book.file}: {e['msg']}", lines))
        raise ScenarioError(source, issues) from None


def _book_row(raw: dict[str, str | None]) -> tuple[dict[str, Any], str]:
    row: dict[str, Any] = {}
    try:
        row["release_hour"] = float(raw.get("release_hour") or "")
        if raw.get("due_hour"):
            row["due_hour"] = float(raw["due_hour"] or "")
        if raw.get("quantity"):
            row["quantity"] = int(raw["quantity"] or "")
    except ValueError as exc:
        return row, f"not a number ({exc})"
    row["family"] = (raw.get("family") or "").strip()
    if raw.get("order_id"):
        row["order_id"] = (raw["order_id"] or "").strip()
    options: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in (raw.get("options") or "").split(";"))):
        name, sep, value = pair.partition("=")
        if not sep:
            return row, f"options must be name=value;name=value, got '{pair}'"
        options[name.strip()] = value.strip()
    row["options"] = options
    return row, ""
