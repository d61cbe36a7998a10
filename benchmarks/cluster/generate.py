"""Synthetic news for the cluster benchmark: many stories of 1-20 articles over a few days.

Words follow Zipf's law over a made-up vocabulary (common words are very common,
most words are rare), with English stop words mixed in at their usual rate. Each
story has its own names (capitalised, rare) and event words, and belongs to one of
a few hundred topics whose words it shares with other stories of that topic; each
outlet's version mixes the story's words, the topic's and general vocabulary in
its own order and its own headline. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from monitor.records import Article

START = datetime(2024, 11, 18, tzinfo=UTC)
_STOP_TEXT = (
    "the a of to in and on for is said that with as at by from it was has have be an "
    "are after its their this will were who not "
)
STOP = _STOP_TEXT.split()
_SYLLABLES_TEXT = (
    "ka ro mi tan sel vor ish ad ne lu pri gor ten bal mas ur ol fen dri zo che ra "
    "vin tor mel sa ko di pe "
)
SYLLABLES = _SYLLABLES_TEXT.split()


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(syllables))


class Generator:
    def __init__(self, seed: int = 7, vocabulary: int = 50_000, topics: int = 300) -> None:
        self.rng = rng = random.Random(seed)
        words: set[str] = set()
        while len(words) < vocabulary:
            words.add(_word(rng, rng.choice((2, 2, 3, 3, 3, 4))))
        self.vocabulary = sorted(words)
        rng.shuffle(self.vocabulary)
        weights = [1.0 / (rank + 1) ** 1.05 for rank in range(vocabulary)]
        # Zipf draws in bulk (one at a time is slow); text picks from this pool.
        self.pool = rng.choices(self.vocabulary, cum_weights=list(_accumulate(weights)),
                                k=1 << 21)
        self.topics = [[self.common(rng) for _ in range(40)] for _ in range(topics)]
        # People and places: some in the news every day, most seldom.
        names: set[str] = set()
        while len(names) < 40_000:
            names.add(_word(rng, rng.choice((3, 4))).capitalize())
        self.names = sorted(names)
        rng.shuffle(self.names)
        name_weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(self.names))]
        self.name_pool = rng.choices(self.names, cum_weights=list(_accumulate(name_weights)),
                                     k=1 << 18)

    def common(self, rng: random.Random) -> str:
        return self.pool[rng.getrandbits(21)]

    def stories(self, days: float, gap: float) -> Iterator[list[Article]]:
        """Stories whose first article falls within ``days`` of START, in start order."""
        rng = self.rng
        moment = START
        end = START + timedelta(days=days)
        number = 0
        while moment < end:
            number += 1
            size = min(20, int(rng.paretovariate(1.2)))
            moment += timedelta(seconds=rng.expovariate(1 / gap))
            yield self._story(number, size, moment)

    def _story(self, number: int, size: int, start: datetime) -> list[Article]:
        rng = self.rng
        topic = rng.choice(self.topics)
        names = [self.name_pool[rng.getrandbits(18)] for _ in range(rng.randint(2, 4))]
        event = [self.vocabulary[rng.randrange(2_000, len(self.vocabulary))]
                 for _ in range(rng.randint(3, 6))]
        articles = []
        for i in range(size):
            when = start + timedelta(hours=rng.expovariate(1 / 6) if i else 0)
            title = self._text(rng, names, event, topic, 9, (2, 2, 1))
            lead = self._text(rng, names, event, topic, 50, (4, 5, 6))
            identity = f"s{number}-{i}"
            articles.append(Article(
                source=f"outlet{rng.randint(1, 400)}", identity=identity, guid=identity,
                url=None, title=title, summary=lead, content="", author="",
                published=when, fetched=when + timedelta(minutes=rng.randint(1, 30)),
                language="en"))
        return articles

    def _text(self, rng: random.Random, names: list[str], event: list[str], topic: list[str],
              length: int, mix: tuple[int, int, int]) -> str:
        n_names, n_event, n_topic = mix
        words = (rng.sample(names, min(n_names, len(names)))
                 + rng.sample(event, min(n_event, len(event)))
                 + rng.sample(topic, n_topic))
        while len(words) < length:
            words.append(rng.choice(STOP) if rng.random() < 0.4 else self.common(rng))
        rng.shuffle(words)
        return " ".join(words).capitalize()


def _accumulate(values: list[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def articles(count: int, seed: int = 7, gap: float = 7.4) -> list[Article]:
    """About ``count`` articles (whole stories), in publication order; a story starts
    every ``gap`` seconds on average (7.4 s: about 100,000 articles in 72 hours)."""
    generator = Generator(seed)
    out: list[Article] = []
    for story in generator.stories(days=365, gap=gap):
        out.extend(story)
        if len(out) >= count:
            break
    out.sort(key=lambda a: a.when)
    return out
