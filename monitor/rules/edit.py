"""Rule files, edited in place: add example headlines to one rule's ``examples``.

The file is changed only where the examples go; every other byte (comments,
key order, quoting, indentation, spacing, blank lines, line endings) stays as
it was. ruamel.yaml's round-trip composer finds where each rule, key and list
item was written; new lines copy the indentation and quoting of their
neighbours. Dumping the whole document again (``YAML.dump``) would re-indent
lists and respace keys and comments, so the text is spliced instead; the
result is then loaded again and must equal the old data plus the new examples,
or nothing is returned.

Pure: text in, text out. Reads and writes no file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from monitor.errors import NewsmonError

ExampleList = Literal["match", "no_match"]
LISTS: tuple[ExampleList, ...] = ("match", "no_match")
_INDICATORS = set("-?:,[]{}#&*!|>'\"%@`")
_YAML11_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}
ITEM, KEY = 0, 1  # insertion ranks


class ExampleEditError(NewsmonError):
    """The examples could not be added without changing anything else."""


@dataclass(frozen=True, slots=True)
class Addition:
    """A headline to add to a rule's ``examples.match`` or ``examples.no_match``."""

    target: ExampleList
    text: str


@dataclass(frozen=True, slots=True)
class ExampleEdit:
    text: str  # the whole new file
    added: tuple[Addition, ...]
    duplicates: tuple[Addition, ...]  # already examples of the rule (in either list)


def add_examples(text: str, rule_id: str, additions: Sequence[Addition]) -> ExampleEdit:
    """``text`` with ``additions`` appended to rule ``rule_id``'s example lists."""
    try:
        root = YAML(typ="rt").compose(text)
    except YAMLError as exc:
        raise ExampleEditError(f"cannot read the rule file: {exc}") from None
    rule = _find_rule(root, rule_id)
    examples = _value(rule, "examples")
    existing = _existing(examples)
    added: list[Addition] = []
    duplicates: list[Addition] = []
    for addition in additions:
        clean = Addition(addition.target, " ".join(addition.text.split()))
        if not clean.text or clean.text in existing:
            duplicates.append(addition)
            continue
        existing.add(clean.text)
        added.append(clean)
    if not added:
        return ExampleEdit(text, (), tuple(duplicates))
    splicer = _Splicer(text, root)
    if examples is None:
        splicer.add_key(rule, "examples", {t: [a.text for a in added if a.target == t]
                                           for t in LISTS})
    else:
        if not isinstance(examples, MappingNode):
            raise ExampleEditError(f"rule {rule_id!r}: 'examples' is not a mapping")
        for target in LISTS:
            texts = [a.text for a in added if a.target == target]
            if not texts:
                continue
            current = _value(examples, target)
            if current is None:
                splicer.add_key(examples, target, texts)
            elif isinstance(current, SequenceNode):
                splicer.append(current, texts)
            else:
                raise ExampleEditError(f"rule {rule_id!r}: 'examples.{target}' is not a list")
    new_text = splicer.result()
    _verify(text, new_text, rule_id, added)
    return ExampleEdit(new_text, tuple(added), tuple(duplicates))


def _find_rule(root: Node | None, rule_id: str) -> MappingNode:
    candidates: list[Node] = [root] if root is not None else []
    if isinstance(root, MappingNode) and _value(root, "id") is None:
        rules = _value(root, "rules")
        candidates = list(rules.value) if isinstance(rules, SequenceNode) else []
    for node in candidates:
        if isinstance(node, MappingNode):
            found = _value(node, "id")
            if isinstance(found, ScalarNode) and str(found.value).strip() == rule_id:
                return node
    raise ExampleEditError(f"rule {rule_id!r} is not in this file")


def _value(mapping: MappingNode, key: str) -> Node | None:
    for key_node, value in mapping.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value  # type: ignore[no-any-return]
    return None


def _existing(examples: Node | None) -> set[str]:
    """Every example of the rule, as text: strings, and the title of field mappings."""
    found: set[str] = set()
    if not isinstance(examples, MappingNode):
        return found
    for target in LISTS:
        items = _value(examples, target)
        for item in items.value if isinstance(items, SequenceNode) else ():
            if isinstance(item, MappingNode):
                item = _value(item, "title") or (item.value[0][1] if item.value else None)
            if isinstance(item, ScalarNode):
                found.add(" ".join(str(item.value).split()))
    return found


class _Splicer:
    """Insertions into the original text, applied from the end so positions hold."""

    def __init__(self, text: str, root: Node) -> None:
        self.text = text
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.inserts: list[tuple[int, int, int, str]] = []  # index, rank, order, text
        self.map_step, self.seq_offset = _indentation(root)

    def result(self) -> str:
        """The text with every insertion. At one place: list items before new keys (the
        items belong to the list that ends there), then in the order they were made."""
        out = self.text
        end = len(out)
        if not out.endswith("\n") and any(i[0] == end for i in self.inserts):
            self.inserts.append((end, -1, 0, self.newline))  # the last line gets its break
        for index, _, _, piece in sorted(self.inserts, key=lambda i: i[:3], reverse=True):
            out = out[:index] + piece + out[index:]
        return out

    def _insert(self, index: int, piece: str, rank: int) -> None:
        self.inserts.append((index, rank, len(self.inserts), piece))

    def append(self, seq: SequenceNode, texts: list[str]) -> None:
        style = _shared_quote_style(seq)
        if seq.flow_style:
            items = ", ".join(scalar(t, style, flow=True) for t in texts)
            if seq.value:
                self._insert(seq.value[-1].end_mark.index, ", " + items, ITEM)
            else:
                self._insert(seq.start_mark.index + 1, items, ITEM)
            return
        first = seq.value[0]
        gap = first.start_mark.column - seq.start_mark.column
        if first.start_mark.line != seq.start_mark.line or gap < 2:
            gap = 2
        prefix = " " * seq.start_mark.column + "-" + " " * (gap - 1)
        self._lines(self._after(seq), [prefix + scalar(t, style) for t in texts], ITEM)

    def add_key(self, mapping: MappingNode, key: str,
                value: list[str] | dict[ExampleList, list[str]]) -> None:
        if mapping.flow_style:
            index = mapping.value[-1][1].end_mark.index if mapping.value else (
                mapping.start_mark.index + 1)
            piece = f"{key}: {_flow(value)}"
            self._insert(index, (", " if mapping.value else "") + piece, KEY)
            return
        column = mapping.start_mark.column
        lines = [" " * column + f"{key}:"]
        if isinstance(value, dict):
            inner = column + self.map_step
            for name, texts in value.items():
                if texts:
                    lines.append(" " * inner + f"{name}:")
                    lines.extend(self._items(inner, texts))
        elif any(isinstance(v, SequenceNode) and v.flow_style for _, v in mapping.value):
            lines[0] += " " + _flow(value)  # its sibling lists are written [a, b]: so is this
        else:
            offsets = [v.start_mark.column - k.start_mark.column for k, v in mapping.value
                       if isinstance(v, SequenceNode) and v.start_mark.line > k.start_mark.line]
            lines.extend(self._items(column, value, offsets[0] if offsets else None))
        self._lines(self._after(mapping), lines, KEY)

    def _items(self, key_column: int, texts: list[str], offset: int | None = None) -> list[str]:
        """Block list items, their dashes as far right of the key as the file's (or a
        sibling list's) dashes are."""
        dash = key_column + (self.seq_offset if offset is None else offset)
        return [" " * dash + "- " + scalar(t, None) for t in texts]

    def _after(self, node: Node) -> int:
        """Where the line after a block node's last line starts (or the file ends)."""
        while isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
            last = node.value[-1]
            node = last[1] if isinstance(node, MappingNode) else last
        end: int = node.end_mark.index
        if end > 0 and self.text[end - 1] == "\n":
            return end
        newline = self.text.find("\n", end)
        return len(self.text) if newline < 0 else newline + 1

    def _lines(self, index: int, lines: list[str], rank: int) -> None:
        self._insert(index, "".join(line + self.newline for line in lines), rank)


def _indentation(root: Node) -> tuple[int, int]:
    """The file's own steps: how far a nested mapping's keys, and a list's dashes, sit
    to the right of their key. Defaults: 2 and 2 (``key:\\n  - item``)."""
    map_step = seq_offset = None
    stack = [root]
    while stack and (map_step is None or seq_offset is None):
        node = stack.pop()
        if isinstance(node, MappingNode):
            for key, value in node.value:
                below = value.start_mark.line > key.start_mark.line
                if below and not getattr(value, "flow_style", True):
                    step = value.start_mark.column - key.start_mark.column
                    if isinstance(value, MappingNode) and map_step is None and step > 0:
                        map_step = step
                    elif isinstance(value, SequenceNode) and seq_offset is None and step >= 0:
                        seq_offset = step
                stack.append(value)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return map_step or 2, 2 if seq_offset is None else seq_offset


def _shared_quote_style(seq: SequenceNode) -> str | None:
    styles = {item.style for item in seq.value if isinstance(item, ScalarNode)}
    return styles.pop() if len(styles) == 1 and styles <= {"'", '"'} else None


def _flow(value: list[str] | dict[ExampleList, list[str]]) -> str:
    if isinstance(value, dict):
        pairs = [f"{name}: {_flow(texts)}" for name, texts in value.items() if texts]
        return "{" + ", ".join(pairs) + "}"
    return "[" + ", ".join(scalar(t, None, flow=True) for t in value) + "]"


def scalar(text: str, style: str | None, flow: bool = False) -> str:
    """One line of YAML that reads back as ``text``: in ``style`` ('"' or "'") when
    given and possible, else plain when that is unambiguous, else double-quoted."""
    if style == "'" and _printable(text):
        return "'" + text.replace("'", "''") + "'"
    if style is None and _plain_ok(text, flow):
        return text
    return _double_quoted(text)


def _plain_ok(text: str, flow: bool) -> bool:
    if not text or text != text.strip() or not _printable(text) or text[0] in _INDICATORS:
        return False
    if ": " in text or " #" in text or text.endswith(":") or text.lower() in _YAML11_WORDS:
        return False
    if flow and any(c in text for c in ",[]{}"):
        return False
    try:
        loaded = YAML(typ="safe", pure=True).load(f"- {text}\n")
    except YAMLError:
        return False
    return bool(loaded == [text])


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufeff\ufffe\uffff]")


def _printable(text: str) -> bool:
    return _UNPRINTABLE.search(text) is None


def _double_quoted(text: str) -> str:
    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return '"' + _UNPRINTABLE.sub(escape, text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def _verify(old: str, new: str, rule_id: str, added: list[Addition]) -> None:
    """The new text must read as the old data plus exactly the new examples."""
    loader = YAML(typ="safe", pure=True)
    try:
        before, after = loader.load(old), loader.load(new)
    except YAMLError as exc:
        raise ExampleEditError(f"adding the examples would break the file: {exc}") from None
    rules: Any = before["rules"] if "id" not in before else [before]
    rule = next(r for r in rules if isinstance(r, dict) and str(r.get("id")).strip() == rule_id)
    examples = rule.setdefault("examples", {})
    for addition in added:
        examples.setdefault(addition.target, []).append(addition.text)
    if before != after:
        raise ExampleEditError("cannot add the examples without changing anything else;"
                               " add them by hand: "
                               + "; ".join(f"{a.target}: {a.text!r}" for a in added))
