"""Stage *stories*, the index: which recent article is a new article's nearest, and so
which story the new article belongs to.

Similarity is the cosine of tf-idf weights (sublinear tf, 1 + ln tf; smoothed idf,
ln((1 + N + P) / (2 + df + P·share)) + 1, the article itself counted) over the
terms of ``terms.story_terms``, times exp(-|Δt| / ``decay``), where Δt is the
distance between the two articles' times (``Article.when``: publication, else
fetch time). An article joins the story of its best match when that score reaches
``threshold``; no article farther than ``window`` (either side) is a match at all.
A closer pair needs less: closer than ``close_window`` to each other, an English
article whose decayed cosine reaches ``close_threshold`` joins if the two share a
name, a term the English prior does not know (not digits alone).

Why the prior (P = ``prior_documents`` articles of general English, ``share`` a
term's share of them: ``prior``): learned from an empty start, idf knows nothing
for the first hundreds of articles, and ``bank`` or ``strike`` weigh almost what
``Hryvnia`` or ``ATACMS`` do, so different stories on one topic look like
retellings. With the prior, names and figures carry the weight from the first
article on, and the learned counts take over where the news differs from English.
An article fewer than ``ENGLISH_ENOUGH`` of whose terms are English words is
weighed on the learned counts alone: to an English prior every word of another
language looks rare, so its common words would weigh like names.

Why the decay: on the labelled set, same-topic events one to three days apart
(Storm Bert and Storm Conall, the ATACMS decision and the first ATACMS strike,
two typhoons) share as many words with each other as retellings of one event do;
without it no threshold reaches precision 0.95 (``benchmarks/README.md``).
Retellings of one event come within hours of each other (a 24 h time constant
did better than 36 h once the prior was in), and a story keeps going because each
new retelling links to a recent one.

Why the close rule: outlets retell one event from their own angle, sharing a name
or two and little else, within hours; a cosine that joins them everywhere joins
same-topic neighbours too (the ATACMS decision and the first strike a day later).
What the retellings share that the neighbours mostly do not is a rare name within
hours: Hualien, CrowdStrike, Milei, Wajima. Words the prior knows (``Pyongyang``,
``Kremlin``: rare, but English) do not count, nor do bare numbers. On the three
labelled sets it raised recall on held-out 0.433 -> 0.511 (precision 0.910 ->
0.923), on dev 0.678 -> 0.729 and on labelled 0.878 -> 0.885, their precision
unchanged; a close window of 15 h chained the ATACMS decision to the news from
Kursk 14.6 h later (labelled precision 0.78), so 12 h it is.

Measured while choosing (``benchmarks/README.md``): comparing a new article with
the story so far (its centroid, or the centroid with its best article, or the
best two articles) instead of its single best article merged neighbouring
same-topic stories and lost precision on both development sets; it was not kept.

Document frequencies are learned as articles arrive and halve every ``window`` of
news time, so they remember more than the kept articles (steadier weights) and
stay bounded (terms whose count falls below 1/4 are dropped). Each article's
weights are fixed when it arrives.

Cost per article does not grow with the window. Candidates come from an inverted
index (term -> kept articles), read rarest term first until ``budget`` postings
have been read: common words would make every article a candidate and carry
little weight, while two tellings of one story share rare words (names, places,
figures). The ``candidates`` sharing the most of those terms are scored exactly
over all their terms.

Memory is bounded. An article is evicted once it is both older than the window
(behind the newest ``when`` seen) and fetched more than a window ago (behind the
newest fetch seen): so in the live stream the window alone decides, while an
archive backfilled today (old ``when``, new fetch) is kept while it is being
clustered. ``max_articles`` caps the kept articles (oldest ``when`` out first).
Evicted postings are compacted away, unused terms forgotten.

Pure: no I/O, no clock (every time comes from the articles), no database.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice, repeat
from operator import mul
from types import MappingProxyType

from monitor.records import Article
from monitor.stories.prior import ENGLISH_ENOUGH, english_shares
from monitor.stories.terms import story_terms


@dataclass(frozen=True, slots=True)
class StorySettings:
    """``threshold``: the decayed cosine at which an article joins a story;
    ``window``: how far apart (either side) two articles of one story may be;
    ``decay``: the time constant of the decay; ``prior_documents``: how many
    articles of general English the document frequencies start from (0: none,
    learned from the news alone); ``budget``: postings read per article;
    ``candidates``: articles scored exactly per article; ``close_window`` and
    ``close_threshold``: how near in time, and how similar, two English articles
    sharing a name the prior does not know must be to join (closer than the
    window; 0: never)."""

    window: timedelta = timedelta(hours=72)
    decay: timedelta = timedelta(hours=24)
    threshold: float = 0.14
    prior_documents: float = 1000.0
    max_articles: int = 200_000
    budget: int = 500
    candidates: int = 12
    lead_words: int = 60
    close_window: timedelta = timedelta(hours=12)
    close_threshold: float = 0.08

    def __post_init__(self) -> None:
        if self.window <= timedelta(0) or self.decay <= timedelta(0):
            raise ValueError("window and decay must be positive")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        if self.close_window < timedelta(0) or not 0.0 < self.close_threshold <= 1.0:
            raise ValueError("close_window must be >= 0 and close_threshold in (0, 1]")
        if self.prior_documents < 0:
            raise ValueError("prior_documents must be >= 0")
        if min(self.max_articles, self.budget, self.candidates, self.lead_words) < 1:
            raise ValueError("max_articles, budget, candidates and lead_words must be >= 1")


@dataclass(frozen=True, slots=True)
class Match:
    """An article's best match: its story, the article that matched, the score."""

    story_id: str
    identity: str
    score: float


class _Entry:
    """One kept article: its terms and their weights, its times, its story."""

    __slots__ = ("fetched", "identity", "seq", "story", "terms", "weights", "when")

    def __init__(self, seq: int, identity: str, story: str, when: float, fetched: float,
                 vector: dict[str, float]) -> None:
        self.seq = seq
        self.identity = identity
        self.story = story
        self.when = when
        self.fetched = fetched
        self.terms = tuple(vector)
        self.weights = array("f", vector.values())

    def dot(self, vector: dict[str, float]) -> float:
        total: float = sum(map(mul, self.weights, map(vector.get, self.terms, repeat(0.0))))
        return total


class _Postings:
    """The kept articles using a term: ``df`` of them; ``seqs`` may also hold evicted
    ones until the next compaction."""

    __slots__ = ("df", "seqs")

    def __init__(self) -> None:
        self.df = 0
        self.seqs = array("q")


def _seconds(moment: datetime) -> float:
    """Seconds since the epoch; a naive time is taken as UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class StoryIndex:
    """The recent articles, indexed by term, to find each new article's story."""

    def __init__(self, settings: StorySettings | None = None) -> None:
        self.settings = settings or StorySettings()
        self._window = self.settings.window.total_seconds()
        self._decay = self.settings.decay.total_seconds()
        self._close_window = self.settings.close_window.total_seconds()
        self._entries: dict[int, _Entry] = {}
        self._by_identity: dict[str, int] = {}
        self._postings: dict[str, _Postings] = {}
        self._by_when: list[tuple[float, int]] = []  # heap of (when, seq)
        self._by_fetched: list[tuple[float, int]] = []  # heap: old news fetched lately
        self._newest_when = -math.inf
        self._newest_fetched = -math.inf
        self._seq = 0
        self._df: dict[str, float] = {}
        self._n = 0.0
        self._next_halving = math.inf
        self._prior = self.settings.prior_documents
        self._shares = english_shares() if self._prior else MappingProxyType({})

    def __len__(self) -> int:
        """How many articles are kept."""
        return len(self._entries)

    @property
    def vocabulary(self) -> int:
        """How many distinct terms the kept articles use."""
        return len(self._postings)

    def story_of(self, identity: str) -> str | None:
        """The story of a kept article (None once it is evicted, or never seen)."""
        seq = self._by_identity.get(identity)
        return None if seq is None else self._entries[seq].story

    def assign(self, article: Article) -> str:
        """The story id of a new article: its best match's, or else its own identity;
        the article is kept for the ones to come. A kept article gets its id again."""
        known = self.story_of(article.identity)
        if known is not None:
            return known
        vector = self._vector(story_terms(article, self.settings.lead_words))
        when = _seconds(article.when)
        match = self._best(vector, when)
        story = match.story_id if match else article.identity
        self._insert(article.identity, story, when, _seconds(article.fetched), vector)
        return story

    def assign_batch(self, articles: Sequence[Article]) -> list[str]:
        """The story ids of a batch of new articles (in the batch's order), assigned in
        time order: a feed lists its newest items first, an archive in any order."""
        ids: dict[int, str] = {}
        for i in sorted(range(len(articles)), key=lambda i: (articles[i].when, i)):
            ids[i] = self.assign(articles[i])
        return [ids[i] for i in range(len(articles))]

    def best_match(self, article: Article) -> Match | None:
        """The match ``assign`` would choose, without keeping the article."""
        vector = self._vector(story_terms(article, self.settings.lead_words))
        return self._best(vector, _seconds(article.when))

    def rebuild(self, stored: Iterable[tuple[Article, str]]) -> int:
        """Replay stored articles with the story ids they were given, in time order
        (``when``, then as given), reassigning none; returns how many are kept.

        Give it the stored articles of at least the last window. Only their terms are
        held while they are sorted, never the articles. Replaying what an index saw,
        in the order it saw it, gives that index again.
        """
        pending = [
            (_seconds(article.when), order, article.identity, story,
             _seconds(article.fetched), story_terms(article, self.settings.lead_words))
            for order, (article, story) in enumerate(stored)
        ]
        pending.sort(key=lambda item: (item[0], item[1]))
        for when, _, identity, story, fetched, terms in pending:
            if identity not in self._by_identity:
                self._insert(identity, story, when, fetched, self._vector(terms))
        return len(self._entries)

    # -- scoring ---------------------------------------------------------------------

    def _vector(self, terms: list[str]) -> dict[str, float]:
        """Unit-length tf-idf weights of an article's terms."""
        counts = Counter(terms)
        df, shares = self._df, self._shares
        prior = self._prior
        if prior and not self._english(counts):
            prior = 0.0  # not English: the prior would take its every common word for rare
        n = self._n + 1.0 + prior
        raw = {
            term: (1.0 + math.log(tf)) * (math.log(
                (1.0 + n) / (2.0 + df.get(term, 0.0) + prior * shares.get(term, 0.0))) + 1.0)
            for term, tf in counts.items()
        }
        norm = math.sqrt(sum(w * w for w in raw.values())) or 1.0
        return {term: w / norm for term, w in raw.items()}

    def _best(self, vector: dict[str, float], when: float) -> Match | None:
        postings = self._postings
        found = [(p.df, term) for term in vector if (p := postings.get(term)) is not None]
        found.sort()
        shared: Counter[int] = Counter()
        budget = self.settings.budget
        for df, term in found:
            budget -= df
            if budget < 0:
                break
            shared.update(postings[term].seqs)  # in C: the hot loop
        # Scored exactly: the kept articles sharing two of those terms or more, the
        # ``candidates`` sharing most if there are more (one shared word is chance)...
        candidates = self.settings.candidates
        likely = [seq for seq, count in shared.items() if count > 1]
        english: bool | None = None  # worked out when first needed
        if len(likely) > candidates:
            likely = heapq.nlargest(candidates, likely, key=shared.__getitem__)
        elif (len(likely) < candidates and self._close_window
              and (english := self._english(vector))):
            # ...unless the close rule may apply: "Charles becomes king after death of
            # his mother at Balmoral" shares only "Balmoral" with "Queen Elizabeth II
            # dies at 96" (dev set). Then those sharing one term, rarest term first.
            likely += islice((seq for seq, count in shared.items() if count == 1),
                             candidates - len(likely))
        entries = self._entries
        threshold = self.settings.threshold
        close_threshold = min(threshold, self.settings.close_threshold)
        best: _Entry | None = None
        best_score = 0.0
        for seq in likely:
            entry = entries.get(seq)
            if entry is None:
                continue
            apart = abs(entry.when - when)
            if apart > self._window:
                continue
            score = entry.dot(vector) * math.exp(-apart / self._decay)
            if score < threshold:
                if score < close_threshold or apart >= self._close_window:
                    continue
                if english is None:
                    english = self._english(vector)
                if not english or not self._share_a_name(entry, vector):
                    continue
            if score > best_score or (
                    score == best_score and best is not None and seq < best.seq):
                best, best_score = entry, score
        return Match(best.story, best.identity, best_score) if best else None

    def _english(self, terms: Collection[str]) -> bool:
        """Whether the prior weighs an article with these distinct terms: it has one,
        and enough of the terms are English words."""
        shares = self._shares
        return bool(self._prior) and (
            sum(1 for term in terms if term in shares) >= ENGLISH_ENOUGH * len(terms))

    def _share_a_name(self, entry: _Entry, vector: dict[str, float]) -> bool:
        """Whether the two use a term unknown to the English prior, not digits alone:
        a name (``Hualien``, ``CrowdStrike``) or a coinage."""
        shares = self._shares
        return any(term in vector and term not in shares and not term.isdigit()
                   for term in entry.terms)

    # -- keeping and forgetting ---------------------------------------------------

    def _insert(self, identity: str, story: str, when: float, fetched: float,
                vector: dict[str, float]) -> None:
        self._seq += 1
        seq = self._seq
        postings = self._postings
        for term in vector:
            found = postings.get(term)
            if found is None:
                found = postings[term] = _Postings()
            found.df += 1
            found.seqs.append(seq)
        self._entries[seq] = _Entry(seq, identity, story, when, fetched, vector)
        self._by_identity[identity] = seq
        heapq.heappush(self._by_when, (when, seq))
        self._newest_when = max(self._newest_when, when)
        self._newest_fetched = max(self._newest_fetched, fetched)
        self._count(vector)
        self._evict()

    def _count(self, terms: Iterable[str]) -> None:
        """Count an article in the document frequencies, halved every window."""
        newest = self._newest_when
        if self._next_halving == math.inf:
            self._next_halving = newest + self._window
        elif newest >= self._next_halving:
            periods = int((newest - self._next_halving) // self._window) + 1
            self._next_halving += periods * self._window
            scale = 0.5 ** min(periods, 64)
            self._df = {t: c * scale for t, c in self._df.items() if c * scale >= 0.25}
            self._n *= scale
        df = self._df
        for term in terms:
            df[term] = df.get(term, 0.0) + 1.0
        self._n += 1.0

    def _evict(self) -> None:
        entries = self._entries
        when_limit = self._newest_when - self._window
        fetched_limit = self._newest_fetched - self._window
        by_when, by_fetched = self._by_when, self._by_fetched
        while by_when and by_when[0][0] < when_limit:
            seq = heapq.heappop(by_when)[1]
            entry = entries.get(seq)
            if entry is None:
                continue
            if entry.fetched < fetched_limit:
                self._forget(entry)
            else:  # old news fetched lately (an archive): kept while it is clustered
                heapq.heappush(by_fetched, (entry.fetched, seq))
        while by_fetched and by_fetched[0][0] < fetched_limit:
            entry = entries.get(heapq.heappop(by_fetched)[1])
            if entry is not None:
                self._forget(entry)
        while len(entries) > self.settings.max_articles:
            entry = entries.get(heapq.heappop(by_when or by_fetched)[1])
            if entry is not None:
                self._forget(entry)

    def _forget(self, entry: _Entry) -> None:
        del self._entries[entry.seq]
        if self._by_identity.get(entry.identity) == entry.seq:
            del self._by_identity[entry.identity]
        postings = self._postings
        for term in entry.terms:
            found = postings[term]
            found.df -= 1
            if found.df == 0:
                del postings[term]
            elif len(found.seqs) > 2 * found.df + 8:
                live = self._entries
                found.seqs = array("q", [s for s in found.seqs if s in live])
