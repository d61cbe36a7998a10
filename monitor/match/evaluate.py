"""Exact evaluation of one query tree against one document.

Terms and phrases find their occurrences through each field's word index; NEAR
pairs occurrences of its operands in the same field; NOT is absence; a field
prefix narrows the fields of everything below it. Every positive match reports
its spans (offsets into the raw field text) so alerts and ``rules test`` can show
why a rule fired.

Internally a match is a tuple of *parts*: word occurrences (field and word
indexes) and regex spans. Occurrences become character spans only when a caller
asks for spans (``evaluate``, or ``spans_of`` once a whole rule has matched), so
a term that matches inside a rule that fails costs no offset bookkeeping.

Pure functions: no I/O, no state between documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeAlias

from monitor.match.query import And, Field, Near, Node, Not, Or, Regex, Term
from monitor.match.text import Document, expand_field
from monitor.records import Span


@dataclass(frozen=True, slots=True)
class Occurrence:
    """A term found in a field: the indexes of its first and last word."""

    field: str
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Result:
    matched: bool
    spans: tuple[Span, ...] = ()


NO_MATCH = Result(False)

Part: TypeAlias = Occurrence | Span
Parts: TypeAlias = tuple[Part, ...]
_NOTHING: Parts = ()


def evaluate(node: Node, doc: Document, fields: tuple[str, ...]) -> Result:
    parts = match_parts(node, doc, fields)
    if parts is None:
        return NO_MATCH
    return Result(True, spans_of(doc, parts))


def match_parts(node: Node, doc: Document, fields: tuple[str, ...]) -> Parts | None:
    """What in ``doc`` makes ``node`` match (``None``: it does not match)."""
    if isinstance(node, Term):
        found = tuple(term_occurrences(node, doc, fields))
        return found or None
    if isinstance(node, Regex):
        spans = tuple(_regex_spans(node, doc, fields))
        return spans or None
    if isinstance(node, Field):
        return match_parts(node.child, doc, expand_field(node.name))
    if isinstance(node, Not):
        return None if match_parts(node.child, doc, fields) is not None else _NOTHING
    if isinstance(node, And):
        collected: list[Part] = []
        for child in node.children:
            parts = match_parts(child, doc, fields)
            if parts is None:
                return None
            collected.extend(parts)
        return tuple(collected)
    if isinstance(node, Or):
        matched = [p for p in (match_parts(c, doc, fields) for c in node.children) if p is not None]
        if not matched:
            return None
        return tuple(part for parts in matched for part in parts)
    return _near(node, doc, fields)


def _near(node: Near, doc: Document, fields: tuple[str, ...]) -> Parts | None:
    lefts = list(operand_occurrences(node.left, doc, fields))
    if not lefts:
        return None
    rights = list(operand_occurrences(node.right, doc, fields))
    if not rights:
        return None
    distance, ordered = node.distance, node.ordered
    paired: set[Occurrence] = set()
    for a in lefts:
        for b in rights:
            if a.field != b.field:
                continue
            if 0 <= b.first - a.last - 1 <= distance or (
                not ordered and 0 <= a.first - b.last - 1 <= distance
            ):
                paired.add(a)
                paired.add(b)
    if not paired:
        return None
    return tuple(sorted(paired, key=lambda o: (o.field, o.first, o.last)))


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
    """Where the term's words stand one after the other, field by field, in text order."""
    first, rest = term.words[0], term.words[1:]
    case_sensitive = term.case_sensitive
    literal, wildcard = first.literal, first.wildcard
    matched: frozenset[str] | None = None
    # Whole-document tests first: an ASCII folded word, or an ASCII wildcard's matches,
    # absent from the document are in none of its fields.
    if not case_sensitive:
        if literal is not None:
            if literal not in doc.words() and literal.isascii():
                return
        else:
            assert wildcard is not None
            matched = doc.matching_words(wildcard)
            if matched is not None and not matched:
                return
    for name in fields:
        text = doc.field(name)
        if not text.raw:
            continue
        if literal is not None:
            starts = text.indexes(literal, case_sensitive)
        elif matched is not None:
            starts = text.indexes_of_any(matched)
        else:
            assert wildcard is not None
            starts = text.matching_indexes(wildcard, case_sensitive)
        if not rest:
            for i in starts:
                yield Occurrence(name, i, i)
            continue
        forms = text.forms(case_sensitive)
        limit = len(forms) - len(rest)
        for i in starts:
            if i < limit and all(w.matches(forms[i + j]) for j, w in enumerate(rest, 1)):
                yield Occurrence(name, i, i + len(rest))


def _regex_spans(node: Regex, doc: Document, fields: tuple[str, ...]) -> Iterator[Span]:
    for name in fields:
        raw = doc.field(name).raw
        if raw:
            for m in node.compiled.finditer(raw):  # type: ignore[attr-defined]
                if m.end() > m.start():
                    yield Span(name, m.start(), m.end(), m.group())


def spans_of(doc: Document, parts: Iterable[Part]) -> tuple[Span, ...]:
    """The character spans of match parts, in the same order."""
    spans: list[Span] = []
    for part in parts:
        if isinstance(part, Span):
            spans.append(part)
        else:
            text = doc.field(part.field)
            start, end = text.span(part.first, part.last)
            spans.append(Span(part.field, start, end, text.raw[start:end]))
    return tuple(spans)
