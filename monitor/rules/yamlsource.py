"""Rule files as YAML trees that remember where every value was written.

PyYAML composes the document into nodes (with line and column); we build our
own small tree from them instead of Python objects, because:

- aliases (``*name``) are refused: an alias bomb is built instantly and then
  never finishes being walked;
- duplicate keys are errors (YAML keeps the last one silently);
- plain scalars resolve as YAML 1.2 core does (``no``, ``on``, ``yes`` stay strings;
  only ``true``/``false`` are booleans), and every value keeps its position so a
  wrong type is reported at its line and column.

Reads one file; knows nothing about rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from monitor.errors import RuleError

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000


@dataclass(frozen=True, slots=True)
class Pos:
    line: int  # 1-based
    col: int  # 1-based
    index: int  # 0-based character offset in the file


@dataclass(frozen=True, slots=True)
class YScalar:
    value: str | int | float | bool | None
    pos: Pos
    end: Pos
    style: str | None  # None for plain, or one of ' " | >


@dataclass(frozen=True, slots=True)
class YSeq:
    items: tuple[YNode, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class YMap:
    items: dict[str, tuple[Pos, YNode]]  # key -> (key position, value)
    pos: Pos


YNode = YScalar | YSeq | YMap


@dataclass(frozen=True, slots=True)
class YamlDocument:
    path: Path
    text: str
    root: YNode


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.MarkedYAMLError(
                problem="aliases (*name) are not allowed in rule files",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


def read_yaml(path: Path) -> YamlDocument:
    """Read and compose one YAML file; every problem is a ``RuleError`` with a position."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RuleError(path, 1, 1, f"file too large ({size} bytes; at most {MAX_FILE_BYTES})")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(path, 1, 1, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RuleError(path, 1, 1, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    loader = _NoAliasLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise RuleError(path, line, col, f"invalid YAML: {message}") from None
    except yaml.YAMLError as exc:
        raise RuleError(path, 1, 1, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    if node is None:
        raise RuleError(path, 1, 1, "empty file: expected a rule or a 'rules:' list")
    counter = [0]
    return YamlDocument(path, text, _convert(path, node, counter))


def _pos(mark: Any) -> Pos:
    return Pos(mark.line + 1, mark.column + 1, mark.index)


def _convert(path: Path, node: yaml.Node, counter: list[int]) -> YNode:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise RuleError(path, *_at(node), f"document too large: more than {MAX_NODES} values")
    if isinstance(node, yaml.ScalarNode):
        return YScalar(_resolve(node), _pos(node.start_mark), _pos(node.end_mark), node.style)
    if isinstance(node, yaml.SequenceNode):
        return YSeq(tuple(_convert(path, item, counter) for item in node.value),
                    _pos(node.start_mark))
    if isinstance(node, yaml.MappingNode):
        items: dict[str, tuple[Pos, YNode]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise RuleError(path, *_at(key_node), "a key must be a plain name")
            key = str(key_node.value)
            if key == "<<":
                raise RuleError(path, *_at(key_node), "merge keys (<<) are not allowed")
            if key in items:
                first = items[key][0]
                raise RuleError(
                    path, *_at(key_node), f"duplicate key {key!r} (first at line {first.line})"
                )
            items[key] = (_pos(key_node.start_mark), _convert(path, value_node, counter))
        return YMap(items, _pos(node.start_mark))
    raise RuleError(path, *_at(node), f"unsupported YAML node {type(node).__name__}")


def _at(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def _resolve(node: yaml.ScalarNode) -> str | int | float | bool | None:
    """YAML 1.2 core schema for plain scalars; quoted and block scalars are strings."""
    text = str(node.value)
    if node.style is not None:
        return text
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.fullmatch(text):
        return int(text, 0) if text.startswith(("0o", "0x")) else int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text

