"""Safe YAML reading that remembers where every value stands in the file.

Only plain YAML is accepted: no tags beyond the safe ones, no anchors or aliases (so no "billion laughs"),
no duplicate keys, and a size cap. Booleans are only ``true``/``false``, so ``yes``, ``no``, ``on`` and ``off``
stay strings (a product option ``engraving: {choices: {yes: 0.2, no: 0.8}}`` means what it says), and times
such as ``14:00`` stay strings (YAML 1.1 would read them as base-60 numbers).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from simline.errors import Issue

__all__ = ["MAX_BYTES", "LineMap", "read_yaml"]

MAX_BYTES = 2 * 1024 * 1024
"""Largest scenario file accepted."""

Path = tuple[str | int, ...]
LineMap = dict[Path, int]
"""1-based line of each YAML path (keys and list items)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans."""


_YAML11_ONLY = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML11_ONLY]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# YAML 1.2 numbers: no base-60 (so an unquoted 14:00 stays the string "14:00"), no 0b/0 octal forms
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$|^0x[0-9a-fA-F_]+$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?$"
        r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"
    ),
    list("-+0123456789."),
)


class YamlProblem(Exception):
    """The text is not acceptable YAML; carries the issue to report."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


def read_yaml(text: str) -> tuple[Any, LineMap]:
    """Parse ``text`` into plain data and the line of every path in it.

    Raises:
        YamlProblem: The text is too large, not YAML, uses aliases or repeats a key.
    """
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        raise YamlProblem(Issue("", f"file is {size} bytes; scenarios are limited to {MAX_BYTES} bytes"))
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1 if event.start_mark is not None else None
                raise YamlProblem(Issue("", "anchors and aliases (&name, *name) are not allowed", line))
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            lines: LineMap = {}
            if node is not None:
                _walk(node, (), lines)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise YamlProblem(Issue("", f"not valid YAML: {exc.problem or exc}", line)) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(Issue("", f"not valid YAML: {exc}")) from None
    return data, lines


def _walk(node: yaml.Node, path: Path, lines: LineMap) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise YamlProblem(Issue(_dotted((*path, key)), f"key repeated (first on line {seen[key]})", line))
            seen[key] = line
            _walk(value_node, (*path, key), lines)
            lines[(*path, key)] = line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
