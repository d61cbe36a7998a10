"""Stage *match*: every rule against one article, all at once.

A rule matches when its ``query`` matches, every ``all`` query matches, at least
one ``any`` query matches (when there are any) and no ``none`` query matches.
Its spans are those of the positive parts that matched.

A presearch pass (issue: matcher at scale) will narrow the candidate rules per
article before this exact evaluation; ``Matcher`` is the seam for it.

Pure: no I/O; the rule set is immutable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from monitor.match.evaluate import evaluate
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
    spans: list[Span] = []
    if rule.query is not None:
        result = evaluate(rule.query, doc, rule.fields)
        if not result.matched:
            return RuleOutcome(False, (), "query")
        spans.extend(result.spans)
    for index, node in enumerate(rule.all):
        result = evaluate(node, doc, rule.fields)
        if not result.matched:
            return RuleOutcome(False, (), f"all[{index}]")
        spans.extend(result.spans)
    if rule.any:
        matched_any = [r for r in (evaluate(n, doc, rule.fields) for n in rule.any) if r.matched]
        if not matched_any:
            return RuleOutcome(False, (), "any")
        spans.extend(s for r in matched_any for s in r.spans)
    for index, node in enumerate(rule.none):
        if evaluate(node, doc, rule.fields).matched:
            return RuleOutcome(False, (), f"none[{index}]")
    unique = sorted(set(spans), key=lambda s: (s.field, s.start, s.end))
    return RuleOutcome(True, tuple(unique), None)


class Matcher:
    """All enabled rules of a rule set, ready to match articles."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = tuple(r for r in rules.rules if r.enabled)

    def match(self, article: Article) -> list[Hit]:
        doc = article_document(article)
        hits: list[Hit] = []
        for rule in self.rules:
            if not rule.applies_to(article.source, article.language):
                continue
            outcome = evaluate_rule(rule, doc)
            if outcome.matched:
                hits.append(Hit(rule.id, outcome.spans))
        return hits


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
