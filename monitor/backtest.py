"""Backtest: replay stored articles through the current rules, and a proposed rule set.

A side stage for rule authors, beside the pipeline: it runs the *match* stage
(``Matcher``, with each rule's source and language filters, exactly as the
daemon does) over articles it is given and counts, per rule id, the hits of
each rule set and the articles a change adds and removes.

Pure: it reads no store and no file, prints nothing, and plans, stores or sends
no alert. Memory is bounded by the number of rules, not of articles: articles
stream through once and only a few example headlines per rule are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from monitor.match.matcher import Matcher
from monitor.records import Article
from monitor.rules.model import Rule, RuleSet

Status = Literal["current", "unchanged", "changed", "new", "removed"]
EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class Headline:
    """An article as a backtest shows it: headline, source and time."""

    title: str
    source: str
    when: datetime
    url: str | None

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "source": self.source, "date": self.when.isoformat(),
                "url": self.url}


@dataclass(frozen=True, slots=True)
class Change:
    """Articles a change adds to (or removes from) a rule's hits: how many, and the
    most recent few."""

    count: int
    examples: tuple[Headline, ...]

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "examples": [e.to_json() for e in self.examples]}


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule id's backtest. ``None`` hits: the rule is not in that rule set; ``None``
    changes: no proposed rule set was given."""

    rule_id: str
    title: str
    status: Status
    current_hits: int | None
    proposed_hits: int | None
    added: Change | None
    removed: Change | None
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "title": self.title,
            "status": self.status,
            "current_hits": self.current_hits,
            "proposed_hits": self.proposed_hits,
            "added": self.added.to_json() if self.added else None,
            "removed": self.removed.to_json() if self.removed else None,
        }


@dataclass(frozen=True, slots=True)
class BacktestReport:
    articles: int
    first: datetime | None  # the earliest article time seen
    last: datetime | None
    rules: tuple[RuleResult, ...]


@dataclass(slots=True)
class _Recent:
    """A count, and the ``keep`` most recent distinct headlines counted (the same headline
    from another outlet, or posted again, shows once: its latest time)."""

    keep: int
    count: int = 0
    kept: dict[str, tuple[datetime, int, Headline]] = field(default_factory=dict)

    def add(self, article: Article, order: int) -> None:
        self.count += 1
        entry = (article.when, order, _headline(article))
        title = entry[2].title
        if title in self.kept:
            self.kept[title] = max(self.kept[title], entry, key=lambda e: (e[0], e[1]))
        elif len(self.kept) < self.keep:
            self.kept[title] = entry
        elif self.keep:
            oldest = min(self.kept, key=lambda t: (self.kept[t][0], self.kept[t][1]))
            if (entry[0], entry[1]) > (self.kept[oldest][0], self.kept[oldest][1]):
                del self.kept[oldest]
                self.kept[title] = entry

    def change(self) -> Change:
        newest_first = sorted(self.kept.values(), key=lambda e: (e[0], e[1]), reverse=True)
        return Change(self.count, tuple(e[2] for e in newest_first))


def backtest(
    articles: Iterable[Article],
    current: RuleSet,
    proposed: RuleSet | None = None,
    *,
    examples: int = EXAMPLES,
) -> BacktestReport:
    """Replay ``articles`` through ``current`` (and ``proposed``) rules, once each."""
    now_matcher = Matcher(current)
    old = current.by_id()
    # A rule that matches as before is not matched again: its hits are the current ones.
    unchanged = {r.id for r in proposed.rules
                 if r.id in old and _same_matching(old[r.id], r)} if proposed else set()
    new_matcher = Matcher(RuleSet(tuple(r for r in proposed.rules if r.id not in unchanged))
                          ) if proposed is not None else None
    current_hits: dict[str, int] = {r.id: 0 for r in current.rules}
    proposed_hits: dict[str, int] = {r.id: 0 for r in proposed.rules} if proposed else {}
    added: dict[str, _Recent] = {}
    removed: dict[str, _Recent] = {}
    count = 0
    first: datetime | None = None
    last: datetime | None = None
    for article in articles:
        count += 1
        when = article.when
        first = when if first is None or when < first else first
        last = when if last is None or when > last else last
        before = {hit.rule_id for hit in now_matcher.match(article)}
        for rule_id in before:
            current_hits[rule_id] += 1
        if new_matcher is None:
            continue
        after = {hit.rule_id for hit in new_matcher.match(article)} | (before & unchanged)
        for rule_id in after:
            proposed_hits[rule_id] += 1
        for rule_id in after - before:
            added.setdefault(rule_id, _Recent(examples)).add(article, count)
        for rule_id in before - after:
            removed.setdefault(rule_id, _Recent(examples)).add(article, count)
    results = _results(current, proposed, current_hits, proposed_hits, added, removed)
    return BacktestReport(count, first, last, results)


def _results(
    current: RuleSet,
    proposed: RuleSet | None,
    current_hits: dict[str, int],
    proposed_hits: dict[str, int],
    added: dict[str, _Recent],
    removed: dict[str, _Recent],
) -> tuple[RuleResult, ...]:
    if proposed is None:
        return tuple(RuleResult(r.id, r.title, "current", current_hits[r.id], None, None, None,
                                r.enabled) for r in current.rules)
    old, new = current.by_id(), proposed.by_id()
    ordered = [*old, *(rule_id for rule_id in new if rule_id not in old)]
    empty = Change(0, ())
    out: list[RuleResult] = []
    for rule_id in ordered:
        before, after = old.get(rule_id), new.get(rule_id)
        rule = after if after is not None else before
        assert rule is not None
        if before is None:
            status: Status = "new"
        elif after is None:
            status = "removed"
        else:
            status = "unchanged" if _same_matching(before, after) else "changed"
        out.append(RuleResult(
            rule_id=rule_id,
            title=rule.title,
            status=status,
            current_hits=current_hits[rule_id] if before is not None else None,
            proposed_hits=proposed_hits[rule_id] if after is not None else None,
            added=added[rule_id].change() if rule_id in added else empty,
            removed=removed[rule_id].change() if rule_id in removed else empty,
            enabled=rule.enabled,
        ))
    return tuple(out)


def _same_matching(a: Rule, b: Rule) -> bool:
    """Whether two versions of a rule match the same articles (by definition, not by
    outcome: where a rule is written, its examples and its routing do not count)."""
    return _matching_key(a) == _matching_key(b)


def _matching_key(rule: Rule) -> tuple[object, ...]:
    return (rule.query, rule.all, rule.any, rule.none, rule.fields, rule.sources,
            rule.exclude_sources, rule.languages, rule.enabled)


def _headline(article: Article) -> Headline:
    return Headline(" ".join(article.title.split()), article.source, article.when, article.url)
