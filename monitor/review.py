"""Rule review: which stored articles one rule matches now, and which it nearly matches.

A side stage for rule authors, beside the pipeline: it evaluates one rule over
articles it is given (through ``evaluate_rule`` only, on one-clause copies of
the rule to see how much of it matched) and ranks the near misses: the query
matched but a ``none`` query excluded the article, an ``all``/``any`` query
failed, or part of a NEAR/AND query matched. The answers of the person
reviewing become examples (``answer_target``); ``monitor.rules.edit`` writes
them into the rule's file.

Pure: no store, no file, no terminal; nothing here plans or sends an alert.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

from monitor.match.matcher import RuleOutcome, article_document, evaluate_rule
from monitor.match.query import And, Field, Near, Node, Not, Or
from monitor.match.text import Document
from monitor.records import Article, Span
from monitor.rules.model import Rule

Kind = Literal["hit", "near_miss"]
Answer = Literal["right", "wrong", "skip", "quit"]
ExampleList = Literal["match", "no_match"]
NEAR_MISSES = 20
APART = 0.9  # both NEAR operands found, too far apart; one found scores half of it
NEGATED = 0.9  # an AND whose NOT part failed


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One article to ask about. ``closeness`` is 1.0 for a hit; for a near miss, how much
    of the rule matched (0..1); ``reason`` says why a near miss did not match."""

    article: Article
    kind: Kind
    spans: tuple[Span, ...]
    closeness: float
    reason: str | None = None

    @property
    def headline(self) -> str:
        return headline(self.article)


@dataclass(frozen=True, slots=True)
class Selection:
    hits: tuple[ReviewItem, ...]  # newest first
    near_misses: tuple[ReviewItem, ...]  # closest first
    scanned: int
    known: int  # articles left out because their headline is already an example


def headline(article: Article) -> str:
    return " ".join(article.title.split())


def answer_target(kind: Kind, answer: Answer) -> ExampleList | None:
    """Where an answer files the headline: a right hit and a wrong near miss should
    match; a wrong hit and a right near miss should not."""
    if answer == "right":
        return "match" if kind == "hit" else "no_match"
    if answer == "wrong":
        return "no_match" if kind == "hit" else "match"
    return None


def parse_answer(line: str) -> Answer | None:
    word = line.strip().lower()
    for answer in ("right", "wrong", "skip", "quit"):
        if word and answer.startswith(word):
            return answer
    return None


def select_for_review(
    rule: Rule, articles: Iterable[Article], near_misses: int = NEAR_MISSES
) -> Selection:
    """The rule's hits among ``articles`` and its ``near_misses`` closest near misses.

    Only articles the rule looks at (its source and language filters) count; an
    article whose headline is already one of the rule's examples, or repeats an
    earlier one, is left out: one answer per headline is enough.
    """
    known = {" ".join(e.label.split()) for e in (*rule.examples_match, *rule.examples_no_match)}
    probe = _Probe(rule)
    hits: dict[str, ReviewItem] = {}
    heap: list[tuple[float, float, int, ReviewItem]] = []
    keep = 3 * near_misses  # headroom for repeated headlines, removed at the end
    scanned = skipped = 0
    for order, article in enumerate(articles):
        scanned += 1
        title = headline(article)
        if not title or not rule.applies_to(article.source, article.language):
            continue
        if title in known:
            skipped += 1
            continue
        doc = article_document(article)
        outcome = evaluate_rule(rule, doc)
        if outcome.matched:
            item = ReviewItem(article, "hit", outcome.spans, 1.0)
            if title not in hits or article.when > hits[title].article.when:
                hits[title] = item
            continue
        near = probe.near_miss(article, doc, outcome)
        if near is not None and keep:
            entry = (near.closeness, article.when.timestamp(), order, near)
            if len(heap) < keep:
                heapq.heappush(heap, entry)
            else:
                heapq.heappushpop(heap, entry)
    ranked = [e[3] for e in sorted(heap, key=lambda e: e[:3], reverse=True)]
    seen = set(hits)
    closest: list[ReviewItem] = []
    for item in ranked:
        if item.headline not in seen and len(closest) < near_misses:
            seen.add(item.headline)
            closest.append(item)
    newest = sorted(hits.values(), key=lambda i: i.article.when, reverse=True)
    return Selection(tuple(newest), tuple(closest), scanned, skipped)


@dataclass(frozen=True, slots=True)
class _Part:
    """A piece of a query with a rule that evaluates that piece alone."""

    kind: Literal["leaf", "and", "or", "near", "not"]
    probe: Rule
    children: tuple[_Part, ...] = ()


class _Probe:
    """How much of one rule matched a document, through one-clause copies of the rule."""

    def __init__(self, rule: Rule) -> None:
        self.positive = rule if not rule.none else replace(rule, none=())
        self.query = _parts(rule, rule.query, _bare) if rule.query is not None else None
        self.all = tuple(_parts(rule, node, _bare) for node in rule.all)
        self.any = tuple(_parts(rule, node, _bare) for node in rule.any)
        self.none = tuple(_only(rule, node) for node in rule.none)

    def near_miss(self, article: Article, doc: Document, outcome: RuleOutcome) -> ReviewItem | None:
        failed = outcome.failed or ""
        if failed.startswith("none"):
            index = int(failed[5:-1])
            excluded = evaluate_rule(self.none[index], doc)
            found = ", ".join(dict.fromkeys(f"“{s.text}” in {s.field}" for s in excluded.spans))
            reason = f"excluded by {failed}" + (f" (found {found})" if found else "")
            positive = evaluate_rule(self.positive, doc).spans
            return ReviewItem(article, "near_miss", positive, 1.0, reason)
        spans: list[Span] = []
        scores: list[float] = []
        query_score = 0.0
        if self.query is not None:
            query_score = _score(self.query, doc, spans)
            scores.append(query_score)
        scores.extend(_score(part, doc, spans) for part in self.all)
        if self.any:
            scores.append(max(_score(part, doc, spans) for part in self.any))
        closeness = sum(scores) / len(scores) if scores else 0.0
        if closeness <= 0 or (failed == "query" and query_score <= 0):
            return None
        if failed == "query":
            reason = f"query did not match (about {round(100 * query_score)}% of it did)"
        elif failed == "any":
            reason = "no 'any' query matched"
        else:
            reason = f"{failed} did not match"
        unique = sorted(set(spans), key=lambda s: (s.field, s.start, s.end))
        return ReviewItem(article, "near_miss", tuple(unique), closeness, reason)


def _bare(node: Node) -> Node:
    return node


def _only(rule: Rule, node: Node) -> Rule:
    return replace(rule, query=node, all=(), any=(), none=())


def _parts(rule: Rule, node: Node, wrap: Callable[[Node], Node]) -> _Part:
    """The query tree as probes. A field prefix narrows everything below it, and the
    innermost prefix wins, so each piece is probed wrapped in its nearest prefix."""
    if isinstance(node, Field):
        name = node.name
        return _parts(rule, node.child, lambda inner: Field(name, inner))
    probe = _only(rule, wrap(node))
    if isinstance(node, And):
        return _Part("and", probe, tuple(_parts(rule, c, wrap) for c in node.children))
    if isinstance(node, Or):
        return _Part("or", probe, tuple(_parts(rule, c, wrap) for c in node.children))
    if isinstance(node, Near):
        return _Part("near", probe, (_parts(rule, node.left, wrap),
                                     _parts(rule, node.right, wrap)))
    if isinstance(node, Not):
        return _Part("not", probe)
    return _Part("leaf", probe)


def _score(part: _Part, doc: Document, spans: list[Span]) -> float:
    """1.0 when the part matches; otherwise how much of it did. Collects the spans of
    every positive piece that matched."""
    outcome = evaluate_rule(part.probe, doc)
    if outcome.matched:
        spans.extend(outcome.spans)
        return 1.0
    if part.kind in ("leaf", "not"):
        return 0.0
    if part.kind == "or":  # no alternative matched: only nested ANDs and NEARs can score
        return max((_score(c, doc, spans) for c in part.children if c.kind in ("and", "near")),
                   default=0.0)
    scores = [_score(child, doc, spans) for child in part.children]
    if part.kind == "near":
        return APART * sum(1.0 for s in scores if s >= 1.0) / 2
    positive = [s for child, s in zip(part.children, scores, strict=True) if child.kind != "not"]
    if not positive:
        return 0.0
    negated_failed = any(s < 1.0 for child, s in zip(part.children, scores, strict=True)
                         if child.kind == "not")
    return sum(positive) / len(positive) * (NEGATED if negated_failed else 1.0)


def highlight(
    text: str, spans: Iterable[Span], mark: Callable[[str], str], context: int = 50,
    fragments: int = 3,
) -> str:
    """``text`` with the spans marked: the whole text when ``context`` covers it, else up
    to ``fragments`` excerpts around them. Whitespace is collapsed to single spaces."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted((s.start, s.end) for s in spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    groups: list[list[tuple[int, int]]] = []
    for span in merged:
        if groups and span[0] - groups[-1][-1][1] <= 2 * context:
            groups[-1].append(span)
        else:
            groups.append([span])
    pieces: list[str] = []
    for group in groups[:fragments]:
        left, right = max(0, group[0][0] - context), min(len(text), group[-1][1] + context)
        out, position = ("…" if left else ""), left
        for start, end in group:
            out += text[position:start] + mark(" ".join(text[start:end].split()))
            position = end
        out += text[position:right] + ("…" if right < len(text) else "")
        piece = " ".join(out.split())
        pieces.append(piece[1:] if pieces and pieces[-1].endswith("…") else piece)
    more = len(groups) - fragments
    return " ".join(pieces) + (f" (and {more} more)" if more > 0 else "")
