"""Stage *match*, compiled: every rule turned once into a program over one shared table
of terms.

A news rule set repeats itself: a thousand rules name the same few hundred people,
places and verbs (``sanction*``, ``troops``, ``"long-range"``). Interpreting each
rule's query tree on its own would look the same term up once per rule that holds
it. Here every distinct (term or regex, fields) pair gets a *slot* in a
``TermTable`` shared by all rules, and each rule becomes a small tree of closures
that asks a ``Run`` (one article going through the rules) for the occurrences in a
slot. The run computes a slot the first time a candidate rule asks and remembers
it, so the cost of an article grows with the distinct terms its candidate rules
use, not with the rules. Character spans are worked out only for rules that
matched, once per occurrence.

The programs give exactly what ``matcher.evaluate_rule`` gives (the same parts, the
same spans): that interpreter stays the reference for ``--explain`` (which clause
failed) and for ``Matcher.match_naive``, and the tests hold the two together.

Pure: the table and the programs are immutable once built; a run lives for one
article.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monitor.match.evaluate import (
    Occurrence,
    Part,
    Parts,
    pair_near,
    regex_spans,
    term_occurrences,
)
from monitor.match.query import And, Field, Near, Node, Not, Or, Regex, Term
from monitor.match.text import Document, expand_field
from monitor.records import Span
from monitor.rules.model import Rule

Program = Callable[["Run"], Parts | None]
RuleProgram = Callable[["Run"], tuple[Span, ...] | None]
_NOTHING: Parts = ()


class TermTable:
    """Every distinct (term or regex, fields) of a rule set, numbered."""

    def __init__(self) -> None:
        self._slots: dict[tuple[Term | Regex, tuple[str, ...]], int] = {}
        self.entries: list[tuple[Term | Regex, tuple[str, ...]]] = []

    def slot(self, node: Term | Regex, fields: tuple[str, ...]) -> int:
        key = (node, fields)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = len(self.entries)
            self.entries.append(key)
        return slot

    def __len__(self) -> int:
        return len(self.entries)


class Run:
    """One article going through the compiled rules: the slots computed so far."""

    __slots__ = ("_entries", "_found", "_spans", "doc")

    def __init__(self, doc: Document, table: TermTable) -> None:
        self.doc = doc
        self._entries = table.entries
        self._found: dict[int, Parts] = {}
        self._spans: dict[Part, Span] = {}

    def found(self, slot: int) -> Parts:
        """The occurrences (or regex spans) of a slot's term in the document; () if none."""
        parts = self._found.get(slot)
        if parts is None:
            parts = self._found[slot] = self._look_up(slot)
        return parts

    def _look_up(self, slot: int) -> Parts:
        node, fields = self._entries[slot]
        if isinstance(node, Term):
            return tuple(term_occurrences(node, self.doc, fields))
        return tuple(regex_spans(node, self.doc, fields))

    def spans(self, parts: set[Part]) -> tuple[Span, ...]:
        """The distinct character spans of a matched rule's parts, in field and text order."""
        known = self._spans
        spans: set[Span] = set()
        for part in parts:
            if isinstance(part, Span):
                spans.add(part)
                continue
            span = known.get(part)
            if span is None:
                name, first, last = part
                text = self.doc.field(name)
                start, end = text.span(first, last)
                span = known[part] = Span(name, start, end, text.raw[start:end])
            spans.add(span)
        return tuple(sorted(spans, key=_span_order))


def _span_order(span: Span) -> tuple[str, int, int]:
    return span.field, span.start, span.end


def compile_rule(rule: Rule, table: TermTable) -> RuleProgram:
    """The rule as one function of a run: its spans when it matches, else ``None``
    (``query``, every ``all``, at least one ``any``, no ``none``)."""
    fields = rule.fields
    required = _all_of(tuple(compile_node(n, fields, table) for n in
                             (*((rule.query,) if rule.query is not None else ()), *rule.all)))
    alternatives = _any_of(tuple(compile_node(n, fields, table) for n in rule.any))
    has_alternatives = bool(rule.any)
    excluded = tuple(compile_node(n, fields, table) for n in rule.none)

    def program(run: Run) -> tuple[Span, ...] | None:
        parts = required(run)
        if parts is None:
            return None
        if has_alternatives:
            found = alternatives(run)
            if found is None:
                return None
            parts += found
        for exclude in excluded:
            if exclude(run) is not None:
                return None
        return run.spans(set(parts))

    return program


def compile_node(node: Node, fields: tuple[str, ...], table: TermTable) -> Program:
    """What in a run's document makes ``node`` match (``None``: it does not)."""
    if isinstance(node, Term | Regex):
        slot = table.slot(node, fields)

        def term(run: Run) -> Parts | None:
            return run.found(slot) or None

        return term
    if isinstance(node, Field):
        return compile_node(node.child, expand_field(node.name), table)
    if isinstance(node, Not):
        child = compile_node(node.child, fields, table)
        return lambda run: None if child(run) is not None else _NOTHING
    if isinstance(node, And):
        return _all_of(tuple(compile_node(c, fields, table) for c in node.children))
    if isinstance(node, Or):
        return _any_of(tuple(compile_node(c, fields, table) for c in node.children))
    return _near(node, fields, table)


def _all_of(children: tuple[Program, ...]) -> Program:
    def all_of(run: Run) -> Parts | None:
        collected: list[Part] = []
        for child in children:
            parts = child(run)
            if parts is None:
                return None
            collected.extend(parts)
        return tuple(collected)

    return all_of


def _any_of(children: tuple[Program, ...]) -> Program:
    def any_of(run: Run) -> Parts | None:
        collected: list[Part] = []
        matched = False
        for child in children:
            parts = child(run)
            if parts is not None:
                matched = True
                collected.extend(parts)
        return tuple(collected) if matched else None

    return any_of


def operand_slots(node: Node, fields: tuple[str, ...], table: TermTable) -> list[int]:
    """The slots of a NEAR operand's terms: a term, a field-prefixed operand, or an OR."""
    if isinstance(node, Term):
        return [table.slot(node, fields)]
    if isinstance(node, Field):
        return operand_slots(node.child, expand_field(node.name), table)
    if isinstance(node, Or):
        return [s for child in node.children for s in operand_slots(child, fields, table)]
    return []


def _gather(run: Run, slots: Sequence[int]) -> list[Occurrence]:
    found: list[Occurrence] = []
    for slot in slots:
        found.extend(run.found(slot))  # type: ignore[arg-type]  # a term's parts: occurrences
    return found


def _near(node: Near, fields: tuple[str, ...], table: TermTable) -> Program:
    left_slots = operand_slots(node.left, fields, table)
    right_slots = operand_slots(node.right, fields, table)
    distance, ordered = node.distance, node.ordered

    def near(run: Run) -> Parts | None:
        lefts = _gather(run, left_slots)
        if not lefts:
            return None
        rights = _gather(run, right_slots)
        if not rights:
            return None
        return pair_near(lefts, rights, distance, ordered)

    return near
