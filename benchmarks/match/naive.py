"""The naive baseline: every rule on every article, one compiled Python regex per term.

What one would write first: each term (word, wildcard, phrase) becomes a
case-insensitive regular expression bounded by non-word characters, searched in
each field's raw text; NEAR finds both operands' matches and counts the words
between them; AND, OR and NOT combine booleans. No folding of accents, no spans:
it only decides which rules match, so it does less than the real matcher.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator

from monitor.match.query import And, Field, Near, Node, Not, Or, Regex, Term
from monitor.match.text import expand_field
from monitor.records import Article
from monitor.rules.model import Rule, RuleSet

_WORD = re.compile(r"\w+")


def term_regex(term: Term) -> re.Pattern[str]:
    words = []
    for word in term.words:
        pieces = re.split(r"([*?])", word.text)
        words.append("".join(r"\w*" if p == "*" else r"\w" if p == "?" else re.escape(p)
                             for p in pieces if p))
    flags = 0 if term.case_sensitive else re.IGNORECASE
    return re.compile(r"(?<!\w)" + r"\W+".join(words) + r"(?!\w)", flags)


class NaiveRule:
    """A rule whose terms are compiled regexes."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.regexes: dict[int, re.Pattern[str]] = {}
        for node in self._nodes():
            if isinstance(node, Term):
                self.regexes[id(node)] = term_regex(node)
            elif isinstance(node, Regex):
                self.regexes[id(node)] = re.compile(node.pattern, re.IGNORECASE)

    def _nodes(self) -> Iterator[Node]:
        rule = self.rule
        stack = [n for n in (rule.query, *rule.all, *rule.any, *rule.none) if n is not None]
        while stack:
            node = stack.pop()
            yield node
            if isinstance(node, Field | Not):
                stack.append(node.child)
            elif isinstance(node, Near):
                stack.extend((node.left, node.right))
            elif isinstance(node, And | Or):
                stack.extend(node.children)

    def matches(self, doc: NaiveDocument) -> bool:
        rule, fields = self.rule, self.rule.fields
        if rule.query is not None and not self.holds(rule.query, doc, fields):
            return False
        if not all(self.holds(n, doc, fields) for n in rule.all):
            return False
        if rule.any and not any(self.holds(n, doc, fields) for n in rule.any):
            return False
        return not any(self.holds(n, doc, fields) for n in rule.none)

    def holds(self, node: Node, doc: NaiveDocument, fields: tuple[str, ...]) -> bool:
        if isinstance(node, Term | Regex):
            regex = self.regexes[id(node)]
            return any(regex.search(doc.fields[f]) for f in fields)
        if isinstance(node, Field):
            return self.holds(node.child, doc, expand_field(node.name))
        if isinstance(node, Not):
            return not self.holds(node.child, doc, fields)
        if isinstance(node, And):
            return all(self.holds(c, doc, fields) for c in node.children)
        if isinstance(node, Or):
            return any(self.holds(c, doc, fields) for c in node.children)
        return self._near(node, doc, fields)

    def _near(self, node: Near, doc: NaiveDocument, fields: tuple[str, ...]) -> bool:
        for name in fields:
            lefts = list(self._spans(node.left, doc, name))
            rights = list(self._spans(node.right, doc, name)) if lefts else []
            for a_first, a_last in lefts:
                for b_first, b_last in rights:
                    if 0 <= b_first - a_last - 1 <= node.distance:
                        return True
                    if not node.ordered and 0 <= a_first - b_last - 1 <= node.distance:
                        return True
        return False

    def _spans(self, node: Node, doc: NaiveDocument, name: str) -> Iterator[tuple[int, int]]:
        """Word indexes (first, last) of an operand's matches in one field."""
        if isinstance(node, Field):
            if name in expand_field(node.name):
                yield from self._spans(node.child, doc, name)
        elif isinstance(node, Or):
            for child in node.children:
                yield from self._spans(child, doc, name)
        else:
            starts = doc.word_starts(name)
            for m in self.regexes[id(node)].finditer(doc.fields[name]):
                yield bisect_right(starts, m.start()) - 1, bisect_right(starts, m.end() - 1) - 1


class NaiveDocument:
    def __init__(self, article: Article) -> None:
        self.fields = {
            "title": article.title, "summary": article.summary, "content": article.content,
            "author": article.author, "url": article.url or "", "source": article.source,
            "lang": article.language or "",
        }
        self._starts: dict[str, list[int]] = {}

    def word_starts(self, name: str) -> list[int]:
        if name not in self._starts:
            self._starts[name] = [m.start() for m in _WORD.finditer(self.fields[name])]
        return self._starts[name]


class NaiveMatcher:
    def __init__(self, rules: RuleSet) -> None:
        self.rules = [NaiveRule(r) for r in rules.rules if r.enabled]

    def match(self, article: Article) -> list[str]:
        doc = NaiveDocument(article)
        return [
            r.rule.id for r in self.rules
            if r.rule.applies_to(article.source, article.language) and r.matches(doc)
        ]
