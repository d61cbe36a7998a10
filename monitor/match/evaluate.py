"""Exact evaluation of query trees against documents, compiled once per rule.

Terms and phrases find their occurrences through each field's word index; NEAR
pairs occurrences of its operands in the same field; NOT is absence; a field
prefix narrows the fields of everything below it. Every positive match reports
its spans (offsets into the raw field text) so alerts and ``rules test`` can show
why a rule fired.

What kind of node a node is, which fields it covers and how its words are written
are known when the rules are loaded, so ``compile_node`` and ``compile_rule``
answer it once: every node becomes a closure holding its fields, its folded words
and its children's closures, and an article costs only the look-ups in its own
text. With thousands of rules, the few candidates the presearch leaves each
article are most of the matching time (benchmarks/README.md, match).

Internally a match is a tuple of *parts*: word places ``(field, first, last)`` and
regex spans. Places become character spans only when a whole rule has matched
(``compile_rule``) or a caller asks (``evaluate``), so a term that matches inside
a rule that fails costs no offset bookkeeping.

Pure: no I/O; a compiled node keeps nothing between documents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeAlias

from monitor.match.query import And, Field, Near, Node, Not, Or, Regex, Term, WordPattern
from monitor.match.text import Document, FieldText, expand_field
from monitor.records import Span
from monitor.rules.model import Rule

Place: TypeAlias = tuple[str, int, int]  # field, first word, last word
Part: TypeAlias = Place | Span
Parts: TypeAlias = tuple[Part, ...]
# A compiled node: what in the document makes it match (None: it does not). The set is
# the document's folded words (``Document.words``), looked up once per rule.
Probe: TypeAlias = Callable[[Document, set[str]], Parts | None]
# A compiled rule: its spans, sorted and without repeats, or the clause that failed.
RuleProbe: TypeAlias = Callable[[Document], tuple[Span, ...] | str]
_NOTHING: Parts = ()


@dataclass(frozen=True, slots=True)
class Result:
    matched: bool
    spans: tuple[Span, ...] = ()


NO_MATCH = Result(False)


def evaluate(node: Node, doc: Document, fields: tuple[str, ...]) -> Result:
    """One query tree against one document; spans in the order of the tree's parts."""
    parts = compile_node(node, fields)(doc, doc.words())
    if parts is None:
        return NO_MATCH
    return Result(True, tuple(_span(doc, part) for part in parts))


def compile_rule(rule: Rule) -> RuleProbe:
    """The rule's ``query``, ``all``, ``any`` and ``none`` as one closure, which returns
    the rule's spans or the name of the clause that failed (``"query"``, ``"all[1]"``,
    ``"any"``, ``"none[0]"``: for ``rules test --explain``)."""
    fields = rule.fields
    required = [("query", compile_node(rule.query, fields))] if rule.query is not None else []
    required += [(f"all[{i}]", compile_node(n, fields)) for i, n in enumerate(rule.all)]
    alternatives = [compile_node(n, fields) for n in rule.any]
    excluded = [(f"none[{i}]", compile_node(n, fields)) for i, n in enumerate(rule.none)]

    def probe(doc: Document) -> tuple[Span, ...] | str:
        words = doc.words()
        parts: list[Part] = []
        for clause, node in required:
            found = node(doc, words)
            if found is None:
                return clause
            parts.extend(found)
        if alternatives:
            matched = False
            for node in alternatives:
                found = node(doc, words)
                if found is not None:
                    matched = True
                    parts.extend(found)
            if not matched:
                return "any"
        for clause, node in excluded:
            if node(doc, words) is not None:
                return clause
        return spans(doc, parts)

    return probe


def spans(doc: Document, parts: Iterable[Part]) -> tuple[Span, ...]:
    """The character spans of a matched rule's parts, sorted, each once."""
    found = {_span(doc, part) for part in set(parts)}
    return tuple(sorted(found, key=lambda s: (s.field, s.start, s.end)))


def _span(doc: Document, part: Part) -> Span:
    if isinstance(part, Span):
        return part
    name, first, last = part
    text = doc.fields[name]
    start, end = text.span(first, last)
    return Span(name, start, end, text.raw[start:end])


def compile_node(node: Node, fields: tuple[str, ...]) -> Probe:
    if isinstance(node, Term):
        return _term(node, fields)
    if isinstance(node, Regex):
        return _regex(node, fields)
    if isinstance(node, Field):
        return compile_node(node.child, expand_field(node.name))
    if isinstance(node, Not):
        return _not(compile_node(node.child, fields))
    if isinstance(node, And):
        return _and([compile_node(c, fields) for c in node.children])
    if isinstance(node, Or):
        return _or([compile_node(c, fields) for c in node.children])
    return _near(node, fields)


def _not(child: Probe) -> Probe:
    def probe(doc: Document, words: set[str]) -> Parts | None:
        return None if child(doc, words) is not None else _NOTHING
    return probe


def _and(children: list[Probe]) -> Probe:
    def probe(doc: Document, words: set[str]) -> Parts | None:
        collected: list[Part] = []
        for child in children:
            parts = child(doc, words)
            if parts is None:
                return None
            collected.extend(parts)
        return tuple(collected)
    return probe


def _or(children: list[Probe]) -> Probe:
    def probe(doc: Document, words: set[str]) -> Parts | None:
        collected: list[Part] = []
        matched = False
        for child in children:
            parts = child(doc, words)
            if parts is not None:
                matched = True
                collected.extend(parts)
        return tuple(collected) if matched else None
    return probe


def _regex(node: Regex, fields: tuple[str, ...]) -> Probe:
    finditer = node.compiled.finditer  # type: ignore[attr-defined]

    def probe(doc: Document, words: set[str]) -> Parts | None:
        found: list[Part] = []
        for name in fields:
            raw = doc.fields[name].raw
            if raw:
                found.extend(Span(name, m.start(), m.end(), m.group())
                             for m in finditer(raw) if m.end() > m.start())
        return tuple(found) or None
    return probe


# --- terms and NEAR: where words stand ---------------------------------------------------

Places: TypeAlias = Callable[[Document, set[str]], list[Place]]


def _term(term: Term, fields: tuple[str, ...]) -> Probe:
    places = term_places(term, fields)

    def probe(doc: Document, words: set[str]) -> Parts | None:
        return tuple(places(doc, words)) or None
    return probe


def _near(node: Near, fields: tuple[str, ...]) -> Probe:
    left, right = operand_places(node.left, fields), operand_places(node.right, fields)
    distance, ordered = node.distance, node.ordered

    def probe(doc: Document, words: set[str]) -> Parts | None:
        lefts = left(doc, words)
        if not lefts:
            return None
        rights = right(doc, words)
        if not rights:
            return None
        paired: set[Place] = set()
        for a in lefts:
            a_field, a_first, a_last = a
            for b in rights:
                if b[0] == a_field and (0 <= b[1] - a_last - 1 <= distance or (
                        not ordered and 0 <= a_first - b[2] - 1 <= distance)):
                    paired.add(a)
                    paired.add(b)
        return tuple(sorted(paired)) or None
    return probe


def operand_places(node: Node, fields: tuple[str, ...]) -> Places:
    """Where a NEAR operand stands: a term, a field-prefixed operand, or an OR of them."""
    if isinstance(node, Term):
        return term_places(node, fields)
    if isinstance(node, Field):
        return operand_places(node.child, expand_field(node.name))
    if isinstance(node, Or):
        children = [operand_places(c, fields) for c in node.children]

        def places(doc: Document, words: set[str]) -> list[Place]:
            found: list[Place] = []
            for child in children:
                found.extend(child(doc, words))
            return found
        return places
    return lambda doc, words: []  # the parser allows nothing else as an operand


def term_places(term: Term, fields: tuple[str, ...]) -> Places:
    """Where the term's words stand one after the other, field by field, in text order."""
    first, rest = term.words[0], term.words[1:]
    case_sensitive = term.case_sensitive
    literal = first.literal
    if literal is not None:
        # An ASCII folded word absent from the document is in none of its fields.
        absent_test = literal if not case_sensitive and literal.isascii() else None

        def starts_of(doc: Document, words: set[str]) -> list[tuple[str, FieldText, list[int]]]:
            if absent_test is not None and absent_test not in words:
                return []
            found = []
            for name in fields:
                text = doc.fields[name]
                if text.raw:
                    indexes = text.indexes(literal, case_sensitive)
                    if indexes:
                        found.append((name, text, indexes))
            return found
    else:
        wildcard = first.wildcard
        assert wildcard is not None
        whole_document = not case_sensitive and wildcard.pattern.isascii()

        def starts_of(doc: Document, words: set[str]) -> list[tuple[str, FieldText, list[int]]]:
            matched = doc.matching_words(wildcard) if whole_document else None
            if matched is not None and not matched:
                return []
            found = []
            for name in fields:
                text = doc.fields[name]
                if text.raw:
                    indexes = (text.indexes_of_any(matched) if matched is not None
                               else text.matching_indexes(wildcard, case_sensitive))
                    if indexes:
                        found.append((name, text, indexes))
            return found

    if not rest:
        def places(doc: Document, words: set[str]) -> list[Place]:
            return [(name, i, i) for name, _, indexes in starts_of(doc, words) for i in indexes]
        return places

    followers = _followers(rest)
    length = len(rest)

    def phrase_places(doc: Document, words: set[str]) -> list[Place]:
        found: list[Place] = []
        for name, text, indexes in starts_of(doc, words):
            forms = text.forms(case_sensitive)
            limit = len(forms) - length
            for i in indexes:
                if i < limit and all(test(forms[i + j]) for j, test in followers):
                    found.append((name, i, i + length))
        return found
    return phrase_places


def _followers(rest: tuple[WordPattern, ...]) -> list[tuple[int, Callable[[str], bool]]]:
    """A test for each word after the first of a phrase, with its distance from the first."""
    return [(offset, word.matches) for offset, word in enumerate(rest, 1)]
