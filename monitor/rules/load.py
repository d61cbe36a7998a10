"""Rule files -> ``RuleSet``: validation that says where and what is wrong.

One rule per file, or several under a top-level ``rules:`` list. Every problem
becomes a ``RuleError`` at its file, line and column; a file with problems
contributes no rule, and all problems of all files are reported together.

Reads files (through ``yamlsource``); builds immutable ``Rule`` objects.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal, TypeVar

from monitor.durations import Rate, parse_duration, parse_rate
from monitor.errors import QueryError, RuleError, RuleSetError
from monitor.match.query import Node, parse_query
from monitor.match.text import FIELDS
from monitor.normalise import primary_language
from monitor.rules.lint import likely_mistakes
from monitor.rules.model import Dedupe, Example, Origin, Rule, RuleSet
from monitor.rules.scalarpos import scalar_offset_position
from monitor.rules.yamlsource import (
    YamlDocument,
    YMap,
    YNode,
    YScalar,
    YSeq,
    read_yaml,
)
from monitor.severity import Severity

RULE_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")
RULE_KEYS = (
    "id", "title", "description", "severity", "query", "all", "any", "none", "fields",
    "sources", "exclude_sources", "languages", "notify", "dedupe", "throttle", "examples",
    "enabled", "tags",
)
RULE_FIELDS = (*FIELDS, "text")

T = TypeVar("T")


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """The YAML files named, or found (recursively, sorted) in the folders named."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            )
        else:
            found.append(path)
    return found


def load_rules(paths: Iterable[Path]) -> RuleSet:
    """Load every rule file; raise ``RuleSetError`` with every error if any file is bad."""
    rules, errors, warnings = collect_rules(paths)
    if errors:
        raise RuleSetError(errors)
    return RuleSet(tuple(rules), tuple(str(w) for w in warnings))


def collect_rules(paths: Iterable[Path]) -> tuple[list[Rule], list[RuleError], list[RuleError]]:
    """Load what can be loaded; return the rules, the errors and the warnings."""
    rules: list[Rule] = []
    errors: list[RuleError] = []
    warnings: list[RuleError] = []
    seen: dict[str, Origin] = {}
    files = rule_files(paths)
    for path in files:
        if not path.exists():
            errors.append(RuleError(path, 1, 1, "no such file or folder"))
            continue
        reader = _FileReader(path)
        file_rules = reader.read()
        errors.extend(reader.errors)
        warnings.extend(reader.warnings)
        if reader.errors:
            continue
        for rule, id_origin in file_rules:
            if rule.id in seen:
                errors.append(RuleError(rule.origin.path, id_origin.line, id_origin.col,
                                        f"duplicate rule id {rule.id!r} (also at {seen[rule.id]})"))
                continue
            seen[rule.id] = id_origin
            rules.append(rule)
    return rules, errors, warnings


class _FileReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[RuleError] = []
        self.warnings: list[RuleError] = []
        self.doc: YamlDocument | None = None

    def error(self, node: YNode | Origin, message: str) -> None:
        line, col = (node.line, node.col) if isinstance(node, Origin) else (
            node.pos.line, node.pos.col)
        self.errors.append(RuleError(self.path, line, col, message))

    def warn(self, node: YNode, message: str) -> None:
        self.warnings.append(RuleError(self.path, node.pos.line, node.pos.col, message,
                                       severity="warning"))

    def read(self) -> list[tuple[Rule, Origin]]:
        try:
            self.doc = read_yaml(self.path)
        except RuleError as exc:
            self.errors.append(exc)
            return []
        root = self.doc.root
        if isinstance(root, YMap) and "rules" in root.items and "id" not in root.items:
            extra = [k for k in root.items if k != "rules"]
            for key in extra:
                self.error(_key_origin(self.path, root, key),
                           f"unknown top-level key {key!r} next to 'rules:'")
            rules_node = root.items["rules"][1]
            if not isinstance(rules_node, YSeq):
                self.error(rules_node, "'rules' must be a list of rules")
                return []
            entries = list(rules_node.items)
        else:
            entries = [root]
        out: list[tuple[Rule, Origin]] = []
        for entry in entries:
            built = self.rule(entry)
            if built is not None:
                out.append(built)
        return out

    def rule(self, node: YNode) -> tuple[Rule, Origin] | None:
        if not isinstance(node, YMap):
            self.error(node, "a rule must be a mapping of keys (id, title, query, ...)")
            return None
        before = len(self.errors)
        origin = Origin(self.path, node.pos.line, node.pos.col)
        for key in node.items:
            if key not in RULE_KEYS:
                close = difflib.get_close_matches(key, RULE_KEYS, n=1)
                hint = f": did you mean {close[0]!r}?" if close else ""
                self.error(_key_origin(self.path, node, key), f"unknown key {key!r}{hint}")
        rule_id = self.string(node, "id", required=True)
        id_node = node.items["id"][1] if "id" in node.items else node
        if rule_id and not RULE_ID.fullmatch(rule_id):
            self.error(id_node, f"invalid id {rule_id!r}: use lowercase letters, digits, - and _,"
                                " starting with a letter or digit")
        title = self.string(node, "title", required=True) or ""
        severity = self.choice(node, "severity", Severity, Severity.MEDIUM)
        fields = self.string_list(node, "fields", allowed=RULE_FIELDS) or ["title", "summary",
                                                                           "content"]
        query = self.query(node, "query")
        all_ = self.query_list(node, "all")
        any_ = self.query_list(node, "any")
        none = self.query_list(node, "none")
        if query is None and not all_ and not any_ and len(self.errors) == before:
            self.error(node, "a rule needs at least one positive query: 'query', 'all' or 'any'")
        examples_match, examples_no_match = self.examples(node)
        if not examples_match and not examples_no_match and "examples" not in node.items:
            self.warn(node, "rule has no examples: add examples.match and examples.no_match")
        notify = self.string_list(node, "notify") or []
        notify_origin = _value_origin(self.path, node, "notify")
        dedupe = self.dedupe(node)
        throttle = self.throttle(node)
        enabled = self.boolean(node, "enabled", True)
        if len(self.errors) > before or rule_id is None:
            return None
        expanded: list[str] = []
        for name in fields:
            expanded.extend(("summary", "content") if name == "text" else (name,))
        rule = Rule(
            id=rule_id,
            title=title,
            origin=origin,
            severity=severity,
            description=self.string(node, "description") or "",
            query=query,
            all=tuple(all_),
            any=tuple(any_),
            none=tuple(none),
            fields=tuple(dict.fromkeys(expanded)),
            sources=tuple(self.string_list(node, "sources") or ["*"]),
            exclude_sources=tuple(self.string_list(node, "exclude_sources") or []),
            languages=self.languages(node),
            notify=tuple(notify),
            notify_origin=notify_origin,
            dedupe=dedupe,
            throttle=throttle,
            examples_match=tuple(examples_match),
            examples_no_match=tuple(examples_no_match),
            enabled=enabled,
            tags=tuple(self.string_list(node, "tags") or []),
        )
        return rule, Origin(self.path, id_node.pos.line, id_node.pos.col)

    # --- typed getters: each reports a wrong type at the value's position ---------------

    def value(self, node: YMap, key: str) -> YNode | None:
        entry = node.items.get(key)
        return entry[1] if entry else None

    def string(
        self, node: YMap, key: str, required: bool = False, label: str | None = None
    ) -> str | None:
        value = self.value(node, key)
        if value is None:
            if required:
                self.error(node, f"missing required key {key!r}")
            return None
        if isinstance(value, YScalar) and isinstance(value.value, str) and value.value.strip():
            return value.value.strip()
        self.error(value, f"{label or key}: expected a non-empty string, got {_describe(value)}")
        return None

    def boolean(self, node: YMap, key: str, default: bool) -> bool:
        value = self.value(node, key)
        if value is None:
            return default
        if isinstance(value, YScalar) and isinstance(value.value, bool):
            return value.value
        self.error(value, f"{key}: expected true or false, got {_describe(value)}")
        return default

    def choice(self, node: YMap, key: str, kind: Callable[[str], T], default: T) -> T:
        text = self.string(node, key)
        if text is None:
            return default
        try:
            return kind(text.lower())
        except ValueError:
            options = ", ".join(str(v) for v in kind.__members__.values()) if hasattr(
                kind, "__members__") else ""
            self.error(self.value(node, key) or node,
                       f"{key}: {text!r} is not one of {options}")
            return default

    def languages(self, node: YMap) -> tuple[str, ...]:
        """A rule's languages as articles carry them: primary subtags (``primary_language``)."""
        out: list[str] = []
        for tag in self.string_list(node, "languages") or []:
            primary = primary_language(tag) or tag.lower()
            if primary != tag.lower():
                self.warn(self.value(node, "languages") or node, f"languages: {tag!r} is compared"
                          f" as {primary!r}: an article keeps only the first part of its"
                          " language tag")
            out.append(primary)
        return tuple(dict.fromkeys(out))

    def string_list(
        self, node: YMap, key: str, allowed: Sequence[str] | None = None
    ) -> list[str] | None:
        value = self.value(node, key)
        if value is None:
            return None
        items: Sequence[YNode] = value.items if isinstance(value, YSeq) else (value,)
        if isinstance(value, YMap):
            self.error(value, f"{key}: expected a list of strings, got a mapping")
            return None
        out: list[str] = []
        for index, item in enumerate(items):
            if isinstance(item, YScalar) and isinstance(item.value, str) and item.value.strip():
                text = item.value.strip()
                if allowed is not None and text not in allowed:
                    self.error(item, f"{key}[{index}]: unknown {key[:-1]} {text!r}"
                                     f" (one of {', '.join(allowed)})")
                out.append(text)
            else:
                hint = " (quote it: YAML reads some words as booleans or numbers)" if isinstance(
                    item, YScalar) and item.value is not None else ""
                self.error(item, f"{key}[{index}]: expected a string, got {_describe(item)}{hint}")
        return out

    def query(self, node: YMap, key: str) -> Node | None:
        value = self.value(node, key)
        if value is None:
            return None
        return self.parse(value, key)

    def query_list(self, node: YMap, key: str) -> list[Node]:
        value = self.value(node, key)
        if value is None:
            return []
        items: Sequence[YNode] = value.items if isinstance(value, YSeq) else (value,)
        parsed = [self.parse(item, f"{key}[{i}]") for i, item in enumerate(items)]
        return [p for p in parsed if p is not None]

    def parse(self, value: YNode, key: str) -> Node | None:
        if not (isinstance(value, YScalar) and isinstance(value.value, str)):
            self.error(value, f"{key}: expected a query string, got {_describe(value)}")
            return None
        try:
            tree = parse_query(value.value)
        except QueryError as exc:
            assert self.doc is not None
            where = scalar_offset_position(self.doc, value, exc.offset)
            self.errors.append(RuleError(self.path, where.line, where.col, f"{key}: {exc.message}"))
            return None
        self.lint(tree, value, key)
        return tree

    def lint(self, tree: Node, value: YScalar, key: str) -> None:
        assert self.doc is not None
        for offset, message in likely_mistakes(tree):
            where = scalar_offset_position(self.doc, value, offset)
            self.warnings.append(RuleError(self.path, where.line, where.col,
                                           f"{key}: {message}", severity="warning"))

    def examples(self, node: YMap) -> tuple[list[Example], list[Example]]:
        value = self.value(node, "examples")
        if value is None:
            return [], []
        if not isinstance(value, YMap):
            self.error(value, "examples: expected a mapping with 'match' and 'no_match' lists")
            return [], []
        for key in value.items:
            if key not in ("match", "no_match"):
                self.error(_key_origin(self.path, value, key),
                           f"examples: unknown key {key!r} (use 'match' and 'no_match')")
        return self.example_list(value, "match"), self.example_list(value, "no_match")

    def example_list(self, node: YMap, key: str) -> list[Example]:
        value = self.value(node, key)
        if value is None:
            return []
        if not isinstance(value, YSeq):
            self.error(value, f"examples.{key}: expected a list")
            return []
        out: list[Example] = []
        for index, item in enumerate(value.items):
            origin = Origin(self.path, item.pos.line, item.pos.col)
            if isinstance(item, YScalar) and isinstance(item.value, str):
                out.append(Example((("title", item.value), ("content", item.value)), origin))
            elif isinstance(item, YMap):
                fields: list[tuple[str, str]] = []
                for field_name, (_, field_value) in item.items.items():
                    if field_name not in FIELDS:
                        self.error(field_value, f"examples.{key}[{index}]: unknown field"
                                                f" {field_name!r} (one of {', '.join(FIELDS)})")
                    elif not (isinstance(field_value, YScalar)
                              and isinstance(field_value.value, str)):
                        self.error(field_value, f"examples.{key}[{index}].{field_name}:"
                                                " expected a string")
                    else:
                        fields.append((field_name, field_value.value))
                out.append(Example(tuple(fields), origin))
            else:
                self.error(item, f"examples.{key}[{index}]: expected a string or a mapping of"
                                 " fields")
        return out

    def dedupe(self, node: YMap) -> Dedupe:
        value = self.value(node, "dedupe")
        if value is None:
            return Dedupe()
        if not isinstance(value, YMap):
            self.error(value, "dedupe: expected a mapping like {scope: story, window: 72h}")
            return Dedupe()
        for key in value.items:
            if key not in ("scope", "window"):
                self.error(_key_origin(self.path, value, key),
                           f"dedupe: unknown key {key!r} (use 'scope' and 'window')")
        scope_text = self.string(value, "scope", label="dedupe.scope") or "story"
        scope: Literal["story", "article"] = "story"
        if scope_text == "article":
            scope = "article"
        elif scope_text != "story":
            self.error(self.value(value, "scope") or value,
                       f"dedupe.scope: {scope_text!r} is not one of story, article")
        window_text = self.string(value, "window", label="dedupe.window")
        window = Dedupe().window
        if window_text is not None:
            try:
                window = parse_duration(window_text)
            except ValueError as exc:
                self.error(self.value(value, "window") or value, f"dedupe.window: {exc}")
        return Dedupe(scope, window)

    def throttle(self, node: YMap) -> Rate | None:
        text = self.string(node, "throttle")
        if text is None:
            return None
        try:
            return parse_rate(text)
        except ValueError as exc:
            self.error(self.value(node, "throttle") or node, f"throttle: {exc}")
            return None


def _key_origin(path: Path, node: YMap, key: str) -> Origin:
    pos = node.items[key][0]
    return Origin(path, pos.line, pos.col)


def _value_origin(path: Path, node: YMap, key: str) -> Origin | None:
    entry = node.items.get(key)
    return Origin(path, entry[1].pos.line, entry[1].pos.col) if entry else None


def _describe(node: YNode) -> str:
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    value = node.value
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    return f"{value!r}"
