"""Alternatives to joining an article's single best match, measured while choosing the
method and not kept: comparing a new article with the story so far.

    .venv/bin/python benchmarks/cluster/variants.py

Each variant scores every story with an article within the window (brute force:
the sets are small) and joins the best story at or above the threshold:

- ``centroid``: cosine with the sum of the story's article vectors, decayed by the
  time to its nearest article;
- ``max(best, centroid)`` and ``mean(best, centroid)``;
- ``best + k × second``: the best article plus k times the second best (a story
  that several of its articles vouch for).

Development sets only (labelled and dev): the held-out set is not for choosing.
Prints, per variant, the best threshold with precision >= 0.95 on both (the
highest smaller recall), or the threshold with the best summed F1 when none is.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.cluster.run import FIXTURES, labelled, pairwise  # noqa: E402
from monitor.stories import StoryIndex, StorySettings  # noqa: E402
from monitor.stories.index import Match  # noqa: E402

Combine = Callable[[list[float], float], float]


class StoryLevelIndex(StoryIndex):
    """``StoryIndex`` scoring whole stories, by ``combine(article scores, centroid)``."""

    def __init__(self, settings: StorySettings, combine: Combine) -> None:
        super().__init__(settings)
        self._combine = combine
        self._sums: dict[str, tuple[dict[str, float], list[float]]] = {}

    def _insert(self, identity: str, story: str, when: float, fetched: float,
                vector: dict[str, float]) -> None:
        super()._insert(identity, story, when, fetched, vector)
        total, norm2 = self._sums.setdefault(story, (defaultdict(float), [0.0]))
        norm2[0] += 2 * sum(total.get(t, 0.0) * w for t, w in vector.items()) + sum(
            w * w for w in vector.values())
        for term, weight in vector.items():
            total[term] += weight

    def _best(self, vector: dict[str, float], when: float) -> Match | None:
        scored: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for entry in self._entries.values():
            apart = abs(entry.when - when)
            if apart <= self._window:
                decay = math.exp(-apart / self._decay)
                scored[entry.story].append((entry.dot(vector) * decay, decay))
        best, best_score = None, 0.0
        for story, pairs in scored.items():
            total, norm2 = self._sums[story]
            centroid = (sum(total.get(t, 0.0) * w for t, w in vector.items())
                        / math.sqrt(norm2[0]) * max(d for _, d in pairs))
            score = self._combine(sorted((s for s, _ in pairs), reverse=True), centroid)
            if score >= self.settings.threshold and score > best_score:
                best, best_score = story, score
        return Match(best, best, best_score) if best else None


VARIANTS: dict[str, Combine] = {
    "best article (shipped)": lambda scores, centroid: scores[0],
    "centroid": lambda scores, centroid: centroid,
    "max(best, centroid)": lambda scores, centroid: max(scores[0], centroid),
    "mean(best, centroid)": lambda scores, centroid: (scores[0] + centroid) / 2,
    **{f"best + {k} × second": (lambda scores, centroid, k=k:
                               scores[0] + k * (scores[1] if len(scores) > 1 else 0.0))
       for k in (0.25, 0.5)},
}


def main() -> None:
    sets = {name: labelled(FIXTURES / f"{name}.jsonl") for name in ("labelled", "dev")}
    thresholds = [round(0.08 + 0.01 * i, 2) for i in range(23)]
    print("| variant | threshold | labelled P / R | dev P / R |")
    print("|---|---|---|---|")
    for name, combine in VARIANTS.items():
        results = {}
        for threshold in thresholds:
            settings = StorySettings(threshold=threshold)
            results[threshold] = [
                pairwise([label for _, label in pairs],
                         [index.assign(a) for a, _ in pairs])
                for pairs in sets.values()
                for index in [StoryLevelIndex(settings, combine)]]
        precise = [(min(r for _, r in res), t) for t, res in results.items()
                   if min(p for p, _ in res) >= 0.95]
        chosen = max(precise)[1] if precise else max(
            results, key=lambda t: sum(2 * p * r / (p + r or 1) for p, r in results[t]))
        cells = " | ".join(f"{p:.3f} / {r:.3f}" for p, r in results[chosen])
        print(f"| {name} | {chosen:.2f}{'' if precise else ' (P < 0.95 at all)'} | {cells} |")


if __name__ == "__main__":
    main()
