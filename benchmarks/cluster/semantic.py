"""Issue 6 experiment, not kept: does a static word-embedding signal raise recall?

    /tmp/distil-venv/bin/python benchmarks/cluster/distil.py MODEL_DIR /tmp/v.npz
    .venv/bin/pip install numpy       # not a dependency of newsmon
    .venv/bin/python benchmarks/cluster/semantic.py /tmp/v.npz

An article's semantic vector: the SIF-weighted word-piece vectors of ``distil.py``
(all-MiniLM-L6-v2 distilled the model2vec way) summed over its title (twice) and
the first 60 words of its lead, unit length. Word pieces as BERT-uncased cuts them:
lower case, accents stripped, words and punctuation apart, longest piece first.

Two ways to add it to the shipped index, each tried only where the shipped rules
find no match, against every kept article within ``hours`` (brute force: the sets
are small):

- ``or``: join the most similar article when the semantic cosine reaches ``s``
  (and the two share some tf-idf weight above ``lexical``; -1: not needed);
- ``blend``: join the best article by decayed tf-idf + ``lam`` × max(0, cosine -
  ``c0``) when that reaches the threshold (0.14).

Criterion as for the close rule: the highest smallest recall of the three sets
with precision >= 0.95 on labelled and dev and >= 0.90 on held-out. Also prints
how well each similarity tells same-story from different-story pairs within 36 h
(AUC), over all such pairs and over those whose tf-idf cosine is under 0.1.
"""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from itertools import combinations, product
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.cluster.run import SETS, labelled, pairwise  # noqa: E402
from monitor.records import Article  # noqa: E402
from monitor.stories import StoryIndex, StorySettings  # noqa: E402
from monitor.stories.index import Match, _seconds  # noqa: E402
from monitor.stories.terms import story_terms  # noqa: E402

BASIC = re.compile(r"\w+|[^\w\s]")
FLOORS = {"labelled": 0.95, "dev": 0.95, "held-out": 0.90}


class Vectors:
    """Static word-piece vectors and the article vectors made of them."""

    def __init__(self, path: Path) -> None:
        data = np.load(path)
        self.rows = {token: i for i, token in enumerate(data["tokens"].tolist())}
        self.vectors = data["vectors"].astype(np.float32)
        self.pieces = lru_cache(maxsize=None)(self._pieces)

    def _pieces(self, word: str) -> tuple[int, ...]:
        """Greedy longest-first WordPiece; () for a word it cannot cut."""
        out, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.rows:
                    out.append(self.rows[piece])
                    start = end
                    break
            else:
                return ()
        return tuple(out)

    def article(self, article: Article) -> np.ndarray:
        rows: list[int] = []
        for text, repeat, limit in ((article.title, 2, None), (article.summary, 1, 60)):
            plain = "".join(c for c in unicodedata.normalize("NFD", text.lower())
                            if unicodedata.category(c) != "Mn")
            for word in BASIC.findall(plain)[:limit]:
                rows.extend(self.pieces(word) * repeat)
        total = self.vectors[rows].sum(axis=0)
        norm = float(np.linalg.norm(total))
        return total / norm if norm else total


class SemanticIndex(StoryIndex):
    """The shipped index, plus a semantic rule where the shipped rules find nothing."""

    def __init__(self, vectors: Vectors, rule: str, a: float, b: float, hours: float) -> None:
        super().__init__(StorySettings())
        self.vectors, self.rule, self.a, self.b = vectors, rule, a, b
        self.apart = hours * 3600.0
        self.semantic: dict[int, np.ndarray] = {}

    def assign(self, article: Article) -> str:
        vector = self._vector(story_terms(article, self.settings.lead_words))
        when = _seconds(article.when)
        mine = self.vectors.article(article)
        match = self._best(vector, when) or self._semantic(vector, mine, when)
        story = match.story_id if match else article.identity
        self._insert(article.identity, story, when, _seconds(article.fetched), vector)
        self.semantic[self._seq] = mine
        return story

    def _semantic(self, vector: dict[str, float], mine: np.ndarray,
                  when: float) -> Match | None:
        best, best_score = None, (self.a if self.rule == "or" else self.settings.threshold)
        for seq, entry in self._entries.items():
            apart = abs(entry.when - when)
            if apart > self.apart:
                continue
            cosine = float(self.semantic[seq] @ mine)
            lexical = entry.dot(vector)
            if self.rule == "or":
                score = cosine if lexical > self.b else 0.0
            else:
                decayed = lexical * math.exp(-apart / self._decay)
                score = decayed + self.a * max(0.0, cosine - self.b)
            if score >= best_score:
                best, best_score = entry, score
        return Match(best.story, best.identity, best_score) if best else None


def settings() -> Iterator[tuple[str, float, float, float]]:
    for s, lexical, hours in product([x / 100 for x in range(40, 90, 2)], [-1.0, 0.0, 0.03],
                                     [6, 12, 24]):
        yield "or", s, lexical, hours
    for lam, c0, hours in product([0.1, 0.2, 0.3, 0.5, 0.8], [0.3, 0.4, 0.5, 0.6, 0.7],
                                  [6, 12, 24]):
        yield "blend", lam, c0, hours


def auc(same: list[float], different: list[float]) -> float:
    wins = sum((s > d) + 0.5 * (s == d) for s in same for d in different)
    return wins / max(1, len(same) * len(different))


def separation(vectors: Vectors, sets: dict[str, list[tuple[Article, str]]]) -> None:
    print("| set | tf-idf AUC | semantic AUC | semantic AUC, pairs with tf-idf < 0.1 |")
    print("|---|---|---|---|")
    for name, pairs in sets.items():
        index = StoryIndex()
        lexical = [index._vector(story_terms(a, 60)) for a, _ in pairs]
        semantic = [vectors.article(a) for a, _ in pairs]
        scores: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for i, j in combinations(range(len(pairs)), 2):
            if abs((pairs[i][0].when - pairs[j][0].when).total_seconds()) <= 36 * 3600:
                tfidf = sum(w * lexical[j].get(t, 0.0) for t, w in lexical[i].items())
                scores[pairs[i][1] == pairs[j][1]].append(
                    (tfidf, float(semantic[i] @ semantic[j])))
        same, different = scores[True], scores[False]
        hard = auc([s for t, s in same if t < 0.1], [s for t, s in different if t < 0.1])
        print(f"| {name} | {auc([t for t, _ in same], [t for t, _ in different]):.3f} "
              f"| {auc([s for _, s in same], [s for _, s in different]):.3f} | {hard:.3f} |")


def main() -> None:
    vectors = Vectors(Path(sys.argv[1]))
    sets = {name: labelled(path) for name, path in SETS.items()}
    separation(vectors, sets)
    results = []
    for rule, a, b, hours in settings():
        row = []
        for pairs in sets.values():
            index = SemanticIndex(vectors, rule, a, b, hours)
            row.append(pairwise([label for _, label in pairs], [index.assign(x) for x, _ in pairs]))
        meets = all(p >= FLOORS[name] for name, (p, _) in zip(sets, row, strict=True))
        results.append((meets, min(r for _, r in row), rule, a, b, hours, row))
    print("\n| rule | a | b | hours | labelled P / R | dev P / R | held-out P / R |")
    print("|---|---|---|---|---|---|---|")
    for rule in ("or", "blend"):
        best = max((r for r in results if r[2] == rule), key=lambda r: (r[0], r[1]))
        meets, _, _, a, b, hours, row = best
        print(f"| {rule}{'' if meets else ' (floors not met)'} | {a} | {b} | {hours} | "
              + " | ".join(f"{p:.3f} / {r:.3f}" for p, r in row) + " |")


if __name__ == "__main__":
    main()
