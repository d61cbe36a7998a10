"""Benchmark of stage *stories* (clustering): speed and memory with 100,000 articles
in the window, and precision/recall on the labelled set against baselines.

    .venv/bin/python benchmarks/cluster/run.py            # both, speed in a fresh process
    .venv/bin/python benchmarks/cluster/run.py quality    # the labelled set only
    .venv/bin/python benchmarks/cluster/run.py speed      # speed only (this process)

Measures only; writes nothing.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import pairwise as pairwise_words
from math import comb
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.cluster.generate import articles  # noqa: E402
from monitor.match.text import WORD, fold  # noqa: E402
from monitor.records import Article  # noqa: E402
from monitor.stories import StoryIndex, StorySettings  # noqa: E402

LABELLED = ROOT / "tests" / "fixtures" / "stories" / "labelled.jsonl"
WINDOW = 72 * 3600.0


def pairwise(labels: list[str], predicted: list[str]) -> tuple[float, float]:
    together = sum(comb(n, 2) for n in Counter(zip(labels, predicted, strict=True)).values())
    put = sum(comb(n, 2) for n in Counter(predicted).values())
    belong = sum(comb(n, 2) for n in Counter(labels).values())
    return together / max(put, 1), together / max(belong, 1)


def labelled() -> list[tuple[Article, str]]:
    out = []
    for line in LABELLED.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        published = datetime.fromisoformat(row["published"])
        out.append((Article(row["source"], row["id"], None, None, row["title"], row["summary"],
                            "", "", published, published + timedelta(minutes=5), "en"),
                    row["story"]))
    return sorted(out, key=lambda pair: pair[0].when)


def shingle_baseline(pairs: list[tuple[Article, str]], threshold: float) -> list[str]:
    """Textbook near-duplicates: Jaccard of title word 2-shingles, nearest earlier
    article within the window."""
    def shingles(title: str) -> set[tuple[str, str]]:
        words = [fold(w) for w in WORD.findall(title)]
        return set(pairwise_words(words))

    seen: list[tuple[float, set[tuple[str, str]], str]] = []
    ids = []
    for article, _ in pairs:
        mine, when = shingles(article.title), article.when.timestamp()
        best, story = threshold, article.identity
        for other_when, other, other_story in seen:
            union = len(mine | other)
            score = len(mine & other) / union if union else 0.0
            if abs(other_when - when) <= WINDOW and score >= best:
                best, story = score, other_story
        seen.append((when, mine, story))
        ids.append(story)
    return ids


def quality() -> None:
    pairs = labelled()
    labels = [label for _, label in pairs]
    stories = len(set(labels))
    print(f"labelled set: {len(pairs)} articles, {stories} stories\n")
    print("| method | threshold | precision | recall |")
    print("|---|---|---|---|")

    def row(name: str, threshold: float, assign: Callable[[], list[str]]) -> None:
        precision, recall = pairwise(labels, assign())
        print(f"| {name} | {threshold:.2f} | {precision:.3f} | {recall:.3f} |")

    for threshold in (0.10, 0.12, 0.13, 0.14, 0.15, 0.16, 0.20, 0.25):
        index = StoryIndex(StorySettings(threshold=threshold))
        row("tf-idf cosine × time decay (36 h)", threshold,
            lambda index=index: [index.assign(a) for a, _ in pairs])
    for threshold in (0.10, 0.15, 0.20, 0.25, 0.30):
        index = StoryIndex(StorySettings(threshold=threshold, decay=timedelta(days=3650)))
        row("tf-idf cosine, no decay", threshold,
            lambda index=index: [index.assign(a) for a, _ in pairs])
    for threshold in (0.3, 0.5):
        row("title word 2-shingle Jaccard", threshold,
            lambda threshold=threshold: shingle_baseline(pairs, threshold))


def speed(settings: StorySettings | None = None, total: int = 230_000, warm: int = 120_000,
          measured: int = 50_000) -> None:
    started = time.perf_counter()
    stream = articles(total)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"generated {len(stream)} articles in {time.perf_counter() - started:.0f} s; "
          f"process {baseline:.0f} MB before clustering")
    index = StoryIndex(settings)
    started = time.perf_counter()
    ids = [index.assign(a) for a in stream[:warm]]
    warm_rate = warm / (time.perf_counter() - started)
    kept_before = len(index)
    started = time.perf_counter()
    ids += [index.assign(a) for a in stream[warm:warm + measured]]
    rate = measured / (time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    precision, recall = pairwise([a.identity.split("-")[0] for a in stream[:len(ids)]], ids)
    print(f"filling the window: {warm_rate:.0f} articles/s")
    print(f"with {kept_before:,} to {len(index):,} articles kept (vocabulary "
          f"{index.vocabulary:,} terms): {rate:.0f} articles/s over the last {measured:,}")
    print(f"peak RSS {peak:.0f} MB (articles held by the benchmark: {baseline:.0f} MB); "
          f"index ≈ {peak - baseline:.0f} MB")
    print(f"synthetic stories recovered: pairwise precision {precision:.3f}, "
          f"recall {recall:.3f}")


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what in ("all", "quality"):
        quality()
    if what == "speed":
        speed()
    elif what == "all":
        print()
        subprocess.run([sys.executable, __file__, "speed"], check=True)


if __name__ == "__main__":
    main()
