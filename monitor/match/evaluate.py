"""Exact evaluation of one query tree against one document.

Terms and phrases find their occurrences through each field's word index; NEAR
pairs occurrences of its operands in the same field; NOT is absence; a field
prefix narrows the fields of everything below it. Every positive match reports
its spans (offsets into the raw field text) so alerts and ``rules test`` can show
why a rule fired.

Pure functions: no I/O, no state between documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from monitor.match.query import And, Field, Near, Node, Not, Or, Regex, Term
from monitor.match.text import Document, FieldText, expand_field
from monitor.records import Span


@dataclass(frozen=True, slots=True)
class Occurrence:
    """A term found in a field: word indexes ``first..last`` and character span."""

    field: str
    first: int
    last: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Result:
    matched: bool
    spans: tuple[Span, ...] = ()


NO_MATCH = Result(False)


def evaluate(node: Node, doc: Document, fields: tuple[str, ...]) -> Result:
    if isinstance(node, Term):
        found = list(term_occurrences(node, doc, fields))
        return Result(bool(found), _spans(doc, found)) if found else NO_MATCH
    if isinstance(node, Regex):
        spans = tuple(_regex_spans(node, doc, fields))
        return Result(bool(spans), spans) if spans else NO_MATCH
    if isinstance(node, Field):
        return evaluate(node.child, doc, expand_field(node.name))
    if isinstance(node, Not):
        return NO_MATCH if evaluate(node.child, doc, fields).matched else Result(True)
    if isinstance(node, And):
        collected: list[Span] = []
        for child in node.children:
            result = evaluate(child, doc, fields)
            if not result.matched:
                return NO_MATCH
            collected.extend(result.spans)
        return Result(True, tuple(collected))
    if isinstance(node, Or):
        matched = [r for r in (evaluate(c, doc, fields) for c in node.children) if r.matched]
        if not matched:
            return NO_MATCH
        return Result(True, tuple(s for r in matched for s in r.spans))
    return _near(node, doc, fields)


def _near(node: Near, doc: Document, fields: tuple[str, ...]) -> Result:
    lefts = list(operand_occurrences(node.left, doc, fields))
    if not lefts:
        return NO_MATCH
    rights = list(operand_occurrences(node.right, doc, fields))
    pairs: list[Occurrence] = []
    for a in lefts:
        for b in rights:
            if a.field == b.field and _within(a, b, node.distance, node.ordered):
                pairs.extend((a, b))
    if not pairs:
        return NO_MATCH
    unique = sorted(set(pairs), key=lambda o: (o.field, o.start))
    return Result(True, _spans(doc, unique))


def _within(a: Occurrence, b: Occurrence, distance: int, ordered: bool) -> bool:
    if 0 <= b.first - a.last - 1 <= distance:
        return True
    return not ordered and 0 <= a.first - b.last - 1 <= distance


def operand_occurrences(node: Node, doc: Document, fields: tuple[str, ...]) -> Iterator[Occurrence]:
    """Occurrences of a NEAR operand: a term, a field-prefixed operand, or an OR of them."""
    if isinstance(node, Term):
        yield from term_occurrences(node, doc, fields)
    elif isinstance(node, Field):
        yield from operand_occurrences(node.child, doc, expand_field(node.name))
    elif isinstance(node, Or):
        for child in node.children:
            yield from operand_occurrences(child, doc, fields)


def term_occurrences(term: Term, doc: Document, fields: tuple[str, ...]) -> Iterator[Occurrence]:
    first = term.words[0]
    size = len(term.words)
    for name in fields:
        text = doc.field(name)
        if not text.raw:
            continue
        words = text.words
        for i in _candidates(term, text):
            if i + size > len(words):
                continue
            if all(
                _word_matches(term, j, words[i + j].exact, words[i + j].folded)
                for j in range(1 if first.literal is not None and not term.case_sensitive else 0,
                               size)
            ):
                yield Occurrence(name, i, i + size - 1, words[i].start, words[i + size - 1].end)


def _candidates(term: Term, text: FieldText) -> list[int] | range:
    first = term.words[0]
    if first.literal is not None and not term.case_sensitive:
        return text.positions.get(first.literal, [])
    return range(len(text.words))


def _word_matches(term: Term, j: int, exact_form: str, folded_form: str) -> bool:
    return term.words[j].matches(exact_form if term.case_sensitive else folded_form)


def _regex_spans(node: Regex, doc: Document, fields: tuple[str, ...]) -> Iterator[Span]:
    for name in fields:
        raw = doc.field(name).raw
        if raw:
            for m in node.compiled.finditer(raw):  # type: ignore[attr-defined]
                if m.end() > m.start():
                    yield Span(name, m.start(), m.end(), m.group())


def _spans(doc: Document, found: list[Occurrence]) -> tuple[Span, ...]:
    return tuple(
        Span(o.field, o.start, o.end, doc.field(o.field).raw[o.start : o.end]) for o in found
    )
