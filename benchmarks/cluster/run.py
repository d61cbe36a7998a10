"""Benchmark of stage *stories* (clustering): speed and memory with 100,000 articles
in the window, and precision/recall on the three labelled sets against baselines.

    .venv/bin/python benchmarks/cluster/run.py            # both; speed: baseline and current
    .venv/bin/python benchmarks/cluster/run.py quality    # the labelled, dev and held-out sets
    .venv/bin/python benchmarks/cluster/run.py speed current   # one speed run (this process)
    .venv/bin/python benchmarks/cluster/run.py speed baseline  # the same, the old index
    .venv/bin/python benchmarks/cluster/run.py close     # the close rule's cost on English

Speed: the baseline (``baseline.py``: the index as of ``BASELINE``, from git) and
the current index, each alone in a fresh process (speed and memory), then compared
in one process in alternate chunks (``compare``): only that ratio is robust to load.

Measures only; writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import pairwise as pairwise_words
from math import comb
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.cluster.baseline import BASELINE, baseline_index  # noqa: E402
from benchmarks.cluster.generate import articles  # noqa: E402
from monitor.match.text import WORD, fold  # noqa: E402
from monitor.records import Article  # noqa: E402
from monitor.stories import StoryIndex, StorySettings  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "stories"
# labelled: written while choosing the method; dev: written while choosing the prior idf;
# heldout: written afterwards by someone else; scored once per method for the first two,
# used for development (with the other two) from the close rule on; heldout2: written
# later by someone else again, who saw neither the method nor the other sets, and
# scored for the method before the close rule and for the close rule once it was frozen.
SETS = {"labelled": FIXTURES / "labelled.jsonl", "dev": FIXTURES / "dev.jsonl",
        "held-out": FIXTURES / "heldout.jsonl", "held-out 2": FIXTURES / "heldout2.jsonl"}
WINDOW = 72 * 3600.0


def pairwise(labels: list[str], predicted: list[str]) -> tuple[float, float]:
    together = sum(comb(n, 2) for n in Counter(zip(labels, predicted, strict=True)).values())
    put = sum(comb(n, 2) for n in Counter(predicted).values())
    belong = sum(comb(n, 2) for n in Counter(labels).values())
    return together / max(put, 1), together / max(belong, 1)


def labelled(path: Path) -> list[tuple[Article, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
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


def quality(name: str, path: Path) -> None:
    pairs = labelled(path)
    labels = [label for _, label in pairs]
    stories = len(set(labels))
    print(f"{name} set ({path.name}): {len(pairs)} articles, {stories} stories\n")
    print("| method | threshold | precision | recall |")
    print("|---|---|---|---|")

    def row(name: str, threshold: float, assign: Callable[[], list[str]]) -> None:
        precision, recall = pairwise(labels, assign())
        print(f"| {name} | {threshold:.2f} | {precision:.3f} | {recall:.3f} |")

    no_close = timedelta(0)
    methods = {
        "prior idf × decay 24 h + shared unknown name within 12 h at 0.08 (current)":
            StorySettings(),
        "+ shared unknown name within 9 h": StorySettings(close_window=timedelta(hours=9)),
        "+ shared unknown name within 15 h": StorySettings(close_window=timedelta(hours=15)),
        "+ shared unknown name within 12 h at 0.12": StorySettings(close_threshold=0.12),
        "English prior idf (1,000 articles) × decay 24 h (before)":
            StorySettings(close_window=no_close),
        "English prior idf × decay 36 h": StorySettings(decay=timedelta(hours=36),
                                                        close_window=no_close),
        "learned idf × decay 36 h": StorySettings(decay=timedelta(hours=36),
                                                  prior_documents=0, close_window=no_close),
    }
    for method, settings in methods.items():
        for threshold in (0.12, 0.13, 0.14, 0.15, 0.16):
            index = StoryIndex(replace(settings, threshold=threshold))
            row(method, threshold, lambda index=index: [index.assign(a) for a, _ in pairs])
    for threshold in (0.10, 0.15, 0.20, 0.25, 0.30):
        index = StoryIndex(StorySettings(threshold=threshold, decay=timedelta(days=3650),
                                         prior_documents=0, close_window=timedelta(0)))
        row("learned idf, no decay", threshold,
            lambda index=index: [index.assign(a) for a, _ in pairs])
    for threshold in (0.3, 0.5):
        row("title word 2-shingle Jaccard", threshold,
            lambda threshold=threshold: shingle_baseline(pairs, threshold))


CHUNK = 500


def speed(implementation: str, total: int = 230_000, warm: int = 120_000,
          measured: int = 50_000) -> None:
    index_class = baseline_index() if implementation == "baseline" else StoryIndex
    started = time.perf_counter()
    stream = articles(total)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"[{implementation}] generated {len(stream)} articles in "
          f"{time.perf_counter() - started:.0f} s; process {baseline:.0f} MB before clustering")
    index = index_class()
    started = time.perf_counter()
    ids = [index.assign(a) for a in stream[:warm]]
    warm_rate = warm / (time.perf_counter() - started)
    kept_before = len(index)
    started, cpu = time.perf_counter(), time.process_time()
    ids += [index.assign(a) for a in stream[warm:warm + measured]]
    rate = measured / (time.perf_counter() - started)
    cpu_rate = measured / (time.process_time() - cpu)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    precision, recall = pairwise([a.identity.split("-")[0] for a in stream[:len(ids)]], ids)
    print(f"[{implementation}] filling the window: {warm_rate:.0f} articles/s")
    print(f"[{implementation}] with {kept_before:,} to {len(index):,} articles kept (vocabulary "
          f"{index.vocabulary:,} terms): {rate:.0f} articles/s ({cpu_rate:.0f} per CPU "
          f"second) over the last {measured:,}")
    print(f"[{implementation}] peak RSS {peak:.0f} MB (articles held by the benchmark: "
          f"{baseline:.0f} MB); index ≈ {peak - baseline:.0f} MB")
    print(f"[{implementation}] synthetic stories recovered: pairwise precision "
          f"{precision:.3f}, recall {recall:.3f}")
    print(f"[{implementation}] story ids: sha256 "
          f"{hashlib.sha256(chr(10).join(ids).encode()).hexdigest()[:16]}")


def compare(total: int = 230_000, warm: int = 120_000, measured: int = 50_000) -> None:
    """Baseline and current in one process on the same stream, timed in alternate
    chunks of ``CHUNK`` articles: on a shared machine the load then falls on both
    alike, which separate runs minutes apart do not promise."""
    stream = articles(total)
    old, new = baseline_index()(), StoryIndex()
    for article in stream[:warm]:
        old.assign(article)
        new.assign(article)
    spent = {"baseline": [0.0, 0.0], "current": [0.0, 0.0]}  # wall, CPU
    same = True
    for start in range(warm, warm + measured, CHUNK):
        chunk = stream[start:start + CHUNK]
        given = []
        for name, index in (("baseline", old), ("current", new)):
            wall, cpu = time.perf_counter(), time.process_time()
            given.append([index.assign(a) for a in chunk])
            spent[name][0] += time.perf_counter() - wall
            spent[name][1] += time.process_time() - cpu
        same = same and given[0] == given[1]
    (old_wall, old_cpu), (new_wall, new_cpu) = spent["baseline"], spent["current"]
    print(f"same process, alternate chunks of {CHUNK}, {len(new):,} articles kept:")
    print(f"baseline ({BASELINE}): {measured / old_wall:.0f} articles/s "
          f"({measured / old_cpu:.0f} per CPU second)")
    print(f"current: {measured / new_wall:.0f} articles/s ({measured / new_cpu:.0f} per CPU "
          f"second)")
    print(f"speed-up: {old_wall / new_wall:.2f}x wall, {old_cpu / new_cpu:.2f}x CPU")
    print("story ids: " + ("identical" if same else "DIFFERENT"))


def close_cost(rounds: int = 30) -> None:
    """CPU per article with and without the close rule on the three labelled sets
    (English, unlike the generated stream, on which the rule never applies),
    alternating the two each round."""
    sets = [[a for a, _ in labelled(path)] for path in SETS.values()]
    settings = {"without": StorySettings(close_window=timedelta(0)), "with": StorySettings()}
    spent = dict.fromkeys(settings, 0.0)
    for round_ in range(rounds + 1):  # the first round, untimed, loads the prior
        for name, chosen in settings.items():
            cpu = time.process_time()
            for stream in sets:
                index = StoryIndex(chosen)
                for article in stream:
                    index.assign(article)
            spent[name] += (time.process_time() - cpu) if round_ else 0.0
    count = rounds * sum(map(len, sets))
    for name, seconds in spent.items():
        print(f"{name} the close rule: {1e6 * seconds / count:.0f} µs of CPU per article")
    print(f"ratio with / without: {spent['with'] / spent['without']:.3f}")


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what in ("all", "quality"):
        for name, path in SETS.items():
            quality(name, path)
            print()
    if what == "close":
        close_cost()
    if what == "speed":
        speed(sys.argv[2] if len(sys.argv) > 2 else "current")
    elif what == "all":
        # Each alone in a fresh process first, for its memory: a child's peak RSS
        # counts its parent's at the fork, so the parent must still be small.
        for implementation in ("baseline", "current"):
            print(flush=True)
            subprocess.run([sys.executable, __file__, "speed", implementation], check=True)
        print()
        compare()


if __name__ == "__main__":
    main()
