"""Stage *match*: every rule against one article, all at once.

A rule matches when its ``query`` matches, every ``all`` query matches, at least
one ``any`` query matches (when there are any) and no ``none`` query matches.
Its spans are those of the positive parts that matched.

``Matcher`` compiles every rule once: a presearch (``presearch``) finds the rules
that could match an article from the article's folded words in one pass, and only
those are evaluated exactly, so the cost per article grows with its length and
its number of candidate rules, not with the size of the rule set.
``Matcher.match_naive`` evaluates every rule: the reference the presearch must
agree with (tests, benchmarks).

Pure: no I/O; the rule set is immutable (the matcher only caches which rules look
at which source and language).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from monitor.match.evaluate import Part, match_parts, spans_of
from monitor.match.presearch import Presearch
from monitor.match.text import Document
from monitor.records import Article, Hit, Span
from monitor.rules.model import Example, Rule, RuleSet


def article_document(article: Article) -> Document:
    return Document(
        {
            "title": article.title,
            "summary": article.summary,
            "content": article.content,
            "author": article.author,
            "url": article.url or "",
            "source": article.source,
            "lang": article.language or "",
        }
    )


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """Why a rule did or did not match a document (for ``rules test --explain``)."""

    matched: bool
    spans: tuple[Span, ...]
    failed: str | None  # which clause failed: "query", "all[1]", "any", "none[0]"


def evaluate_rule(rule: Rule, doc: Document) -> RuleOutcome:
    parts: list[Part] = []
    if rule.query is not None:
        found = match_parts(rule.query, doc, rule.fields)
        if found is None:
            return RuleOutcome(False, (), "query")
        parts.extend(found)
    for index, node in enumerate(rule.all):
        found = match_parts(node, doc, rule.fields)
        if found is None:
            return RuleOutcome(False, (), f"all[{index}]")
        parts.extend(found)
    if rule.any:
        matched_any = [p for p in (match_parts(n, doc, rule.fields) for n in rule.any)
                       if p is not None]
        if not matched_any:
            return RuleOutcome(False, (), "any")
        parts.extend(part for found in matched_any for part in found)
    for index, node in enumerate(rule.none):
        if match_parts(node, doc, rule.fields) is not None:
            return RuleOutcome(False, (), f"none[{index}]")
    unique = sorted(set(spans_of(doc, set(parts))), key=lambda s: (s.field, s.start, s.end))
    return RuleOutcome(True, tuple(unique), None)


_EXCLUSIONS_CACHED = 4096


class Matcher:
    """All enabled rules of a rule set, ready to match articles."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = tuple(r for r in rules.rules if r.enabled)
        self._presearch = Presearch(self.rules)
        self._restricted = tuple(
            n for n, r in enumerate(self.rules)
            if r.sources != ("*",) or r.exclude_sources or r.languages
        )
        self._exclusions: dict[tuple[str, str | None], frozenset[int]] = {}

    def match(self, article: Article) -> list[Hit]:
        doc = article_document(article)
        candidates = self._presearch.candidates(doc)
        if not candidates:
            return []
        excluded = self._excluded(article.source, article.language)
        hits: list[Hit] = []
        for number in candidates:
            if number in excluded:
                continue
            rule = self.rules[number]
            outcome = evaluate_rule(rule, doc)
            if outcome.matched:
                hits.append(Hit(rule.id, outcome.spans))
        return hits

    def candidates(self, article: Article) -> list[Rule]:
        """The rules the presearch leaves for exact evaluation, in rule order (before the
        source and language filters)."""
        return [self.rules[n] for n in self._presearch.candidates(article_document(article))]

    def match_naive(self, article: Article) -> list[Hit]:
        """Every rule evaluated exactly, no presearch: the reference ``match`` agrees with."""
        doc = article_document(article)
        hits: list[Hit] = []
        for rule in self.rules:
            if not rule.applies_to(article.source, article.language):
                continue
            outcome = evaluate_rule(rule, doc)
            if outcome.matched:
                hits.append(Hit(rule.id, outcome.spans))
        return hits

    def _excluded(self, source: str, language: str | None) -> frozenset[int]:
        """Numbers of the rules that do not look at this source and language."""
        key = (source, language)
        excluded = self._exclusions.get(key)
        if excluded is None:
            excluded = frozenset(
                n for n in self._restricted if not self.rules[n].applies_to(source, language)
            )
            if len(self._exclusions) >= _EXCLUSIONS_CACHED:
                self._exclusions.clear()
            self._exclusions[key] = excluded
        return excluded


def example_document(example: Example) -> Document:
    return Document(dict(example.fields))


def failing_examples(rule: Rule) -> Iterable[tuple[Example, bool]]:
    """Examples whose outcome is wrong: (example, expected_match)."""
    for example in rule.examples_match:
        if not evaluate_rule(rule, example_document(example)).matched:
            yield example, True
    for example in rule.examples_no_match:
        if evaluate_rule(rule, example_document(example)).matched:
            yield example, False
