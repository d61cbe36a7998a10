"""Which presearch? The anchor lookup measured three ways on the benchmark corpus.

    .venv/bin/python benchmarks/match/variants.py [--articles 500] [--sizes 1000 10000]

For each rule-set size, the time per article to find which anchors (folded words
and word starts of every rule's clauses) occur in an article, from its raw fields:

- ``set index`` (what ``monitor.match.presearch`` does): the set of folded words,
  intersected with the known words; word starts resolved once per distinct word
  and remembered (steady state: the vocabulary has been seen once);
- ``set index, slicing``: the same, but word starts found by cutting every word at
  every start length and intersecting (no memory of past words);
- ``Aho-Corasick``: one pyahocorasick automaton over `` word `` and `` start`` keys,
  run over the space-padded folded text (needs ``pip install pyahocorasick``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.match.corpus import World, make_articles, make_rules  # noqa: E402
from monitor.match.matcher import article_document  # noqa: E402
from monitor.match.presearch import Presearch  # noqa: E402
from monitor.match.text import folded_words  # noqa: E402
from monitor.records import Article  # noqa: E402


def per_article(fn: Callable[[Article], object], articles: list[Article]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for article in articles:
            fn(article)
        best = min(best, time.perf_counter() - started)
    return best / len(articles) * 1e6


def row(world: World, articles: list[Article], size: int) -> str:
    presearch = Presearch(make_rules(world, size).rules)
    anchors = presearch.anchors
    for article in articles:  # learn the vocabulary once
        presearch.present(article_document(article).words())

    def set_index(article: Article) -> object:
        return presearch.present(article_document(article).words())

    words = frozenset(a.text for a in anchors if not a.prefix)
    by_length: dict[int, set[str]] = {}
    for anchor in anchors:
        if anchor.prefix:
            by_length.setdefault(len(anchor.text), set()).add(anchor.text)
    cuts = [(itemgetter(slice(0, n)), frozenset(s)) for n, s in by_length.items()]

    def slicing(article: Article) -> object:
        found = article_document(article).words()
        starts: set[str] = set()
        for cut, known in cuts:
            starts |= known.intersection(map(cut, found))
        return found & words, starts

    ac_cell = "not installed"
    try:
        import ahocorasick  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        for number, anchor in enumerate(anchors):
            automaton.add_word(f" {anchor.text}" if anchor.prefix else f" {anchor.text} ", number)
        automaton.make_automaton()
        second = itemgetter(1)

        def aho_corasick(article: Article) -> object:
            doc = article_document(article)
            text = " ".join(folded_words(t.raw) for t in doc.fields.values() if t.raw)
            return set(map(second, automaton.iter(f" {text} ")))

        ac_cell = f"{per_article(aho_corasick, articles):,.0f}"
    return (f"| {size:,} | {len(anchors):,} | {per_article(set_index, articles):,.0f} "
            f"| {per_article(slicing, articles):,.0f} | {ac_cell} |")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=500)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 1_000, 10_000])
    args = parser.parse_args()
    world = World()
    articles = make_articles(world, args.articles)
    print("| rules | anchors | set index (us/article) | set index, slicing | Aho-Corasick |")
    print("|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        print(row(world, articles, size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
