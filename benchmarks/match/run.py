"""Benchmark of the match stage: articles per second against 10 to 10,000 rules.

    .venv/bin/python benchmarks/match/run.py            # full run (a few minutes)
    .venv/bin/python benchmarks/match/run.py --quick    # under a minute

Each rule-set size runs in a fresh, single-threaded subprocess (so its peak
memory is its own) that generates the same articles and rules (fixed seeds,
``corpus.py``) and measures, in the same run:

- ``Matcher.match``: presearch, then exact evaluation of the candidates (spans
  included), over every article; the best of repeated passes for small sets;
- ``Matcher.match_naive``: the same exact evaluation of every rule, no presearch;
- the naive baseline (``naive.py``): one Python regex per term, every rule on
  every article, no spans.

The last two run on the first articles until a time budget is spent, and report
a per-article rate. The worker also checks that ``match`` and ``match_naive``
agree on those articles. Timing only: nothing here is part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.match.corpus import World, make_articles, make_rules  # noqa: E402
from benchmarks.match.naive import NaiveMatcher  # noqa: E402
from monitor.match.matcher import Matcher  # noqa: E402
from monitor.records import Article  # noqa: E402

SIZES = (10, 100, 1_000, 10_000)
# Rates are per second of this process's CPU time: "on one core", and far steadier than
# wall time on a machine shared with other work (the wall rate is reported beside it).
cpu = time.process_time


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _rate(fn: Callable[[Article], Any], articles: Sequence[Article], budget: float,
          minimum: int) -> tuple[float, list[Any]]:
    """Articles per second over the first articles, until ``budget`` seconds are spent;
    and what ``fn`` returned for each of them."""
    results: list[Any] = []
    start = cpu()
    for article in articles:
        results.append(fn(article))
        if len(results) >= minimum and cpu() - start > budget:
            break
    return len(results) / (cpu() - start), results


def worker(size: int, article_count: int, budget: float) -> dict[str, Any]:
    world = World()
    articles = make_articles(world, article_count)
    rules = make_rules(world, size)
    rss_before = _rss_mb()
    started = time.perf_counter()
    matcher = Matcher(rules)
    build_seconds = time.perf_counter() - started
    matcher_mb = _rss_mb() - rss_before

    for article in articles:  # warm up: fold cache, word starts learned (steady state)
        matcher.match(article)
    passes: list[float] = []
    walls: list[float] = []
    hits = 0
    while not passes or (sum(passes) < 3 * budget / 10 and len(passes) < 10):
        hits = 0
        started, wall = cpu(), time.perf_counter()
        for article in articles:
            hits += len(matcher.match(article))
        passes.append(cpu() - started)
        walls.append(time.perf_counter() - wall)
    presearch_rate = len(articles) / min(passes)

    sample = articles[: min(len(articles), 1000)]
    candidates = sum(len(matcher.candidates(a)) for a in sample) / len(sample)
    all_rate, every = _rate(matcher.match_naive, articles, budget, 3)
    for article, expected in zip(articles, every, strict=False):
        got = [(h.rule_id, h.spans) for h in matcher.match(article)]
        if got != [(h.rule_id, h.spans) for h in expected]:
            raise SystemExit(f"presearch and naive matching disagree on {article.identity}")
    baseline = NaiveMatcher(rules)
    naive_rate, naive = _rate(baseline.match, articles, budget, 3)
    agree = sum(
        ids == [h.rule_id for h in matcher.match(a)]
        for a, ids in zip(articles, naive, strict=False)
    )
    all_done, naive_done = len(every), len(naive)
    return {
        "rules": size,
        "always": len(matcher._presearch.always),
        "anchors": len(matcher._presearch.anchors),
        "articles": len(articles),
        "words": sum(len(a.content.split()) for a in articles) / len(articles),
        "build_s": build_seconds,
        "passes": len(passes),
        "presearch_rate": presearch_rate,
        "wall_rate": len(articles) / min(walls),
        "candidates": candidates,
        "hits": hits / len(articles),
        "all_rate": all_rate,
        "all_articles": all_done,
        "naive_rate": naive_rate,
        "naive_articles": naive_done,
        "naive_agree": agree / naive_done,
        "matcher_mb": matcher_mb,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| rules | always evaluated | candidates / article | hits / article "
        "| **presearch matcher** (articles/CPU-s) | same, wall clock (articles/s) "
        "| exact evaluation of every rule (articles/CPU-s) "
        "| naive regex baseline (articles/CPU-s) | speed-up vs naive | matcher build (s) "
        "| matcher memory (MB RSS) | peak RSS (MB) |",
        "|" + "---:|" * 12,
    ]
    for r in rows:
        lines.append(
            f"| {r['rules']:,} | {r['always']} | {r['candidates']:.1f} | {r['hits']:.2f} "
            f"| **{r['presearch_rate']:,.0f}** | {r['wall_rate']:,.0f} "
            f"| {r['all_rate']:,.0f} ({r['all_articles']:,} art.) "
            f"| {r['naive_rate']:,.1f} ({r['naive_articles']:,} art.) "
            f"| {r['presearch_rate'] / r['naive_rate']:,.0f}x | {r['build_s']:.2f} "
            f"| {r['matcher_mb']:.1f} | {r['maxrss_mb']:.0f} |"
        )
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]]) -> str:
    by = {r["rules"]: r for r in rows}
    out = []
    if 1_000 in by:
        rate = by[1_000]["presearch_rate"]
        out.append(f"- 1,000 rules: {rate:,.0f} articles/s (target >= 2,000): "
                   f"{'met' if rate >= 2_000 else 'NOT met'}")
        speedup = rate / by[1_000]["naive_rate"]
        out.append(f"- 1,000 rules vs naive baseline: {speedup:,.0f}x (target >= 20x): "
                   f"{'met' if speedup >= 20 else 'NOT met'}")
    if 10 in by and 10_000 in by:
        ratio = by[10_000]["presearch_rate"] / by[10]["presearch_rate"]
        out.append(f"- 10,000 rules / 10 rules throughput: {ratio:.2f} (target >= 0.33): "
                   f"{'met' if ratio >= 1 / 3 else 'NOT met'}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="400 articles, short budgets")
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--articles", type=int, help="articles per run (default 10,000)")
    parser.add_argument("--budget", type=float, help="seconds for each baseline (default 10)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    articles = args.articles or (400 if args.quick else 10_000)
    budget = args.budget or (0.5 if args.quick else 10.0)
    if args.worker is not None:
        print(json.dumps(worker(args.worker, articles, budget)))
        return 0
    rows = []
    for size in args.sizes:
        command = [sys.executable, __file__, "--worker", str(size), "--articles", str(articles),
                   "--budget", str(budget)]
        started = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout))
        print(f"# {size:,} rules done in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    print(f"machine: nproc={os.cpu_count()}, Python {platform.python_version()}, "
          f"{platform.machine()}, {platform.system()} {platform.release()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"articles per run: {articles:,} (mean {rows[0]['words']:.0f} words of content)\n")
    print(table(rows))
    print()
    print(verdict(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
