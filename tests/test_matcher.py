"""The matcher: a rule's clauses, which rules look at which articles, and the seed data.

The expectations for the shipped rules against the seed articles are copied by
hand from ``seeds/expected.md`` into ``EXPECTED`` below.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.match.matcher import Matcher, article_document, evaluate_rule, failing_examples
from monitor.match.query import parse_query
from monitor.match.text import Document
from monitor.normalise import normalise_entry
from monitor.parse import parse_feed
from monitor.records import Article, Span
from monitor.rules.load import load_rules
from monitor.rules.model import Example, Origin, Rule, RuleSet

ROOT = Path(__file__).resolve().parent.parent
FETCHED = datetime(2024, 11, 20, 12, 0, tzinfo=UTC)
ORIGIN = Origin(Path("test.yaml"), 1, 1)


def make_rule(
    rule_id: str = "r",
    query: str | None = "sanctions",
    *,
    all: Sequence[str] = (),
    any: Sequence[str] = (),
    none: Sequence[str] = (),
    **options: Any,
) -> Rule:
    return Rule(
        id=rule_id,
        title=rule_id.title(),
        origin=ORIGIN,
        query=parse_query(query) if query is not None else None,
        all=tuple(parse_query(q) for q in all),
        any=tuple(parse_query(q) for q in any),
        none=tuple(parse_query(q) for q in none),
        **options,
    )


def make_article(
    title: str = "", *, source: str = "wire", language: str | None = None, **fields: str
) -> Article:
    return Article(
        source=source,
        identity=f"{source}:{title}",
        guid=None,
        url=fields.get("url"),
        title=title,
        summary=fields.get("summary", ""),
        content=fields.get("content", ""),
        author=fields.get("author", ""),
        published=None,
        fetched=FETCHED,
        language=language,
    )


def doc(**fields: str) -> Document:
    return Document(fields)


def example(text: str) -> Example:
    return Example((("title", text), ("content", text)), ORIGIN)


# --- evaluate_rule: query / all / any / none ---------------------------------------------


def test_a_rule_matches_when_every_clause_holds_and_reports_the_positive_spans() -> None:
    rule = make_rule(query="sanctions", all=["russia"], any=["package", "round"],
                     none=["title:opinion"])
    outcome = evaluate_rule(rule, doc(title="Russia faces a new sanctions package"))
    assert outcome.matched is True
    assert outcome.failed is None
    assert outcome.spans == (
        Span("title", 0, 6, "Russia"),
        Span("title", 19, 28, "sanctions"),
        Span("title", 29, 36, "package"),
    )


def test_a_failing_query_is_named() -> None:
    rule = make_rule(query="sanctions", all=["russia"])
    outcome = evaluate_rule(rule, doc(title="Russia tariffs"))
    assert (outcome.matched, outcome.failed, outcome.spans) == (False, "query", ())


def test_the_failing_all_clause_is_named_by_its_index() -> None:
    rule = make_rule(query="sanctions", all=["russia", "package"])
    outcome = evaluate_rule(rule, doc(title="Russia sanctions round"))
    assert (outcome.matched, outcome.failed) == (False, "all[1]")


def test_any_needs_at_least_one_of_its_queries() -> None:
    rule = make_rule(query="sanctions", any=["package", "round"])
    assert evaluate_rule(rule, doc(title="sanctions round")).matched
    outcome = evaluate_rule(rule, doc(title="sanctions relief"))
    assert (outcome.matched, outcome.failed) == (False, "any")


def test_the_matching_none_clause_is_named_by_its_index() -> None:
    rule = make_rule(query="sanctions", none=["title:opinion", "title:analysis"])
    outcome = evaluate_rule(rule, doc(title="Analysis: sanctions bite"))
    assert (outcome.matched, outcome.failed, outcome.spans) == (False, "none[1]", ())
    assert evaluate_rule(rule, doc(title="New sanctions", content="opinion")).matched


def test_a_rule_without_a_query_matches_on_all_and_any() -> None:
    rule = make_rule(query=None, all=["russia"], any=["sanctions", "tariffs"])
    assert evaluate_rule(rule, doc(title="Russia tariffs")).matched
    assert evaluate_rule(rule, doc(title="China tariffs")).failed == "all[0]"


def test_spans_are_sorted_and_unique() -> None:
    rule = make_rule(query="sanctions", all=["sanctions OR russia"])
    outcome = evaluate_rule(rule, doc(title="Russia", content="sanctions"))
    assert outcome.spans == (
        Span("content", 0, 9, "sanctions"),
        Span("title", 0, 6, "Russia"),
    )


def test_a_rules_fields_limit_where_unprefixed_terms_look() -> None:
    rule = make_rule(query="sanctions", fields=("title",))
    assert evaluate_rule(rule, doc(title="new sanctions")).matched
    assert not evaluate_rule(rule, doc(summary="new sanctions", content="new sanctions")).matched


# --- Matcher.match: which rules look at which articles ----------------------------------


def hit_ids(rules: list[Rule], article: Article) -> list[str]:
    return [h.rule_id for h in Matcher(RuleSet(tuple(rules))).match(article)]


def test_the_matcher_returns_a_hit_per_matching_rule_with_spans() -> None:
    rules = [make_rule("a", "sanctions"), make_rule("b", "tariffs"), make_rule("c", "russia")]
    hits = Matcher(RuleSet(tuple(rules))).match(make_article("Russia sanctions"))
    assert [(h.rule_id, h.spans) for h in hits] == [
        ("a", (Span("title", 7, 16, "sanctions"),)),
        ("c", (Span("title", 0, 6, "Russia"),)),
    ]


@pytest.mark.parametrize(
    ("sources", "exclude", "source", "expected"),
    [
        (("*",), (), "seed-wire", True),
        (("seed-*",), (), "seed-wire", True),
        (("seed-*",), (), "baltic-observer", False),
        (("baltic-observer", "seed-wire"), (), "seed-wire", True),
        (("*",), ("seed-*",), "seed-wire", False),
        (("*",), ("seed-*",), "baltic-observer", True),
        (("wire",), (), "seed-wire", False),
        (("Seed-*",), (), "seed-wire", False),
        (("seed-wir?",), (), "seed-wire", True),
    ],
)
def test_a_rule_looks_only_at_the_sources_its_globs_select(
    sources: tuple[str, ...], exclude: tuple[str, ...], source: str, expected: bool
) -> None:
    rule = make_rule(sources=sources, exclude_sources=exclude)
    assert (hit_ids([rule], make_article("sanctions", source=source)) == ["r"]) is expected


@pytest.mark.parametrize(
    ("languages", "language", "expected"),
    [
        ((), None, True),
        ((), "de", True),
        (("en",), "en", True),
        (("en", "de"), "de", True),
        (("en",), "de", False),
        (("en",), None, False),
    ],
)
def test_a_rule_with_languages_looks_only_at_articles_in_them(
    languages: tuple[str, ...], language: str | None, expected: bool
) -> None:
    rule = make_rule(languages=languages)
    assert (hit_ids([rule], make_article("sanctions", language=language)) == ["r"]) is expected


def test_a_disabled_rule_never_matches() -> None:
    rules = [make_rule("off", enabled=False), make_rule("on")]
    assert hit_ids(rules, make_article("sanctions")) == ["on"]
    assert [r.id for r in Matcher(RuleSet(tuple(rules))).rules] == ["on"]


def test_the_article_document_exposes_every_matchable_field() -> None:
    article = make_article("T", source="seed-wire", language="en", summary="S", content="C",
                           author="Liina Kask", url="http://observer.example/x")
    document = article_document(article)
    assert {name: document.field(name).raw for name in document.fields} == {
        "title": "T", "summary": "S", "content": "C", "author": "Liina Kask",
        "url": "http://observer.example/x", "source": "seed-wire", "lang": "en",
    }
    rule = make_rule(query="author:kask source:wire lang:en url:observer")
    assert hit_ids([rule], article) == ["r"]


# --- failing_examples -------------------------------------------------------------------


def test_failing_examples_lists_the_examples_with_the_wrong_outcome() -> None:
    rule = make_rule(
        query="sanctions",
        none=["iran"],
        examples_match=(example("new sanctions"), example("new tariffs")),
        examples_no_match=(example("Iran sanctions"), example("sanctions on Russia")),
    )
    failing = [(e.label, expected) for e, expected in failing_examples(rule)]
    assert failing == [("new tariffs", True), ("sanctions on Russia", False)]


def test_an_example_with_fields_is_matched_field_by_field() -> None:
    rule = make_rule(
        query="title:sanctions",
        examples_match=(Example((("title", "sanctions"),), ORIGIN),),
        examples_no_match=(Example((("content", "sanctions"),), ORIGIN),),
    )
    assert list(failing_examples(rule)) == []


# --- the shipped rules against the seed articles ----------------------------------------

LR = "long-range-strike-policy"
SANC = "russia-sanctions-package"
NK = "north-korean-troops"

# seeds/expected.md, row by row: article id -> the rules it matches.
EXPECTED: dict[str, set[str]] = {
    "wire-biden-atacms": {LR, SANC, NK},
    "wire-eu-15th-package": {SANC},
    "wire-zelensky-address": set(),
    "wire-borrell-language-of-power": set(),
    "wire-scholz-putin-call": set(),
    "wire-nk-troops-kursk": {NK},
    "wire-nk-missile-test": set(),
    "wire-iran-oil-sanctions": set(),
    "wire-lockheed-er-atacms": set(),
    "wire-uk-storm-shadow": {LR},
    "wire-winter-storm": set(),
    "wire-central-bank-hold": set(),
    "observer-atacms-curbs-lifted": {LR, NK},
    "observer-dark-fleet-sanctions": {SANC},
    "observer-opinion-long-range": set(),
    "observer-taurus-refusal": set(),
    "observer-analysis-kursk-front": set(),
    "observer-storm-shadow-history": set(),
    "observer-baltic-derby": set(),
    "observer-solar-ereader": set(),
    "observer-baltic-cable": set(),
    "observer-pyongyang-soldiers": {NK},
    "seed-article": {LR, SANC, NK},
}

# The near misses of seeds/expected.md: which clause of which rule turns them away.
NEAR_MISSES = [
    ("observer-opinion-long-range", LR, "none[0]"),  # LR query matches; "Opinion:" title
    ("observer-analysis-kursk-front", LR, "none[0]"),  # LR query matches; "Analysis:" title
    ("observer-taurus-refusal", LR, "query"),  # no permission word near Taurus
    ("observer-storm-shadow-history", LR, "query"),  # no permission word
    ("wire-nk-missile-test", LR, "query"),  # long-range missile, no permission word
    ("wire-nk-missile-test", NK, "query"),  # North Korea, no soldiers
    ("wire-lockheed-er-atacms", LR, "query"),  # test firing, no permission, no Russia
    ("wire-iran-oil-sanctions", SANC, "query"),  # Iran's shadow fleet, not Russia's
    ("wire-scholz-putin-call", NK, "query"),  # troops, but not North Korean ones
]


@pytest.fixture(scope="module")
def shipped_rules() -> RuleSet:
    return load_rules([ROOT / "rules"])


@pytest.fixture(scope="module")
def seed_articles() -> dict[str, Article]:
    articles: dict[str, Article] = {}
    for line in (ROOT / "seeds" / "articles.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        articles[data["id"]] = Article(
            source=data.get("source", ""),
            identity=data["id"],
            guid=data["id"],
            url=data.get("link"),
            title=data.get("title", ""),
            summary=data.get("summary", ""),
            content=data.get("content", ""),
            author=data.get("author", ""),
            published=None,
            fetched=FETCHED,
            language=data.get("language"),
        )
    return articles


def test_the_seed_file_holds_exactly_the_documented_articles(
    seed_articles: dict[str, Article],
) -> None:
    assert sorted(seed_articles) == sorted(EXPECTED)


def test_the_shipped_rules_pass_their_own_examples(shipped_rules: RuleSet) -> None:
    assert sorted(r.id for r in shipped_rules.rules) == sorted([LR, SANC, NK])
    for rule in shipped_rules.rules:
        assert [(e.label, expected) for e, expected in failing_examples(rule)] == [], rule.id


@pytest.mark.parametrize("article_id", sorted(EXPECTED))
def test_the_seed_articles_match_the_documented_rules(
    shipped_rules: RuleSet, seed_articles: dict[str, Article], article_id: str
) -> None:
    hits = Matcher(shipped_rules).match(seed_articles[article_id])
    assert {h.rule_id for h in hits} == EXPECTED[article_id]
    for hit in hits:
        assert hit.spans, hit.rule_id


def test_the_documented_totals_hold(
    shipped_rules: RuleSet, seed_articles: dict[str, Article]
) -> None:
    matcher = Matcher(shipped_rules)
    totals = {LR: 0, SANC: 0, NK: 0}
    for article in seed_articles.values():
        for hit in matcher.match(article):
            totals[hit.rule_id] += 1
    assert totals == {LR: 4, SANC: 4, NK: 5}


@pytest.mark.parametrize(("article_id", "rule_id", "clause"), NEAR_MISSES)
def test_a_near_miss_is_turned_away_by_the_documented_clause(
    shipped_rules: RuleSet,
    seed_articles: dict[str, Article],
    article_id: str,
    rule_id: str,
    clause: str,
) -> None:
    rule = shipped_rules.by_id()[rule_id]
    outcome = evaluate_rule(rule, article_document(seed_articles[article_id]))
    assert (outcome.matched, outcome.failed) == (False, clause)


def test_hit_spans_index_the_raw_article_text(
    shipped_rules: RuleSet, seed_articles: dict[str, Article]
) -> None:
    article = seed_articles["wire-uk-storm-shadow"]
    document = article_document(article)
    (hit,) = Matcher(shipped_rules).match(article)
    for span in hit.spans:
        assert document.field(span.field).raw[span.start : span.end] == span.text
    assert any(s.text.lower() == "storm shadow" for s in hit.spans)


@pytest.mark.parametrize(
    ("feed", "source", "count"),
    [("wire.xml", "seed-wire", 12), ("outlet.atom", "baltic-observer", 10)],
)
def test_a_feed_item_matches_like_its_json_lines_twin(
    shipped_rules: RuleSet, feed: str, source: str, count: int
) -> None:
    body = (ROOT / "seeds" / "feeds" / feed).read_bytes()
    parsed = parse_feed(source, feed, body)
    assert len(parsed.entries) == count
    matcher = Matcher(shipped_rules)
    for entry in parsed.entries:
        assert entry.guid is not None
        article_id = entry.guid.removeprefix("tag:observer.example,2024:")
        article = normalise_entry(source, entry, FETCHED)
        assert {h.rule_id for h in matcher.match(article)} == EXPECTED[article_id], article_id
