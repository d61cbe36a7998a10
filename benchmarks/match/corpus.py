"""Generated, reproducible news and rules for the match benchmark (no I/O, no network).

Words follow news statistics: a vocabulary of pseudo-words whose frequency is
Zipf-distributed (frequent words are short, like real function words), plus
named entities (people, places, organisations with acronyms, some accented)
whose popularity is Zipf-distributed too. An article has a topic (a dozen
content words it repeats) and a few entities; it mixes them into Zipf text, in
sentences with punctuation, possessives and hyphenated compounds.

Rules look like the shipped ones: OR-blocks of entities and of topic words
(plain, ``stem*`` wildcards, ``authori?e``-style wildcards, two-word phrases,
``{ACRONYM}``), joined by AND or NEAR/n, sometimes with NOT, a ``title:`` prefix,
``all``/``any``/``none`` lists, a /regex/ conjunct, source and language filters.
Analysts pick content words, not function words, and spread over many entities,
so rules draw from flatter distributions than the text does. A few rules (one in
a thousand) have no anchor at all and are evaluated for every article.

The first N rules of a larger set are the rules of the smaller set (one stream).
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path

from monitor.match.query import parse_query
from monitor.records import Article
from monitor.rules.model import Origin, Rule, RuleSet

SEED = 20241120
VOCABULARY = 30_000
ENTITIES = 5_000
ONSETS = ["b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p",
          "pr", "r", "s", "sh", "st", "t", "tr", "v", "w", "z"]
VOWELS = ["a", "e", "i", "o", "u", "a", "e", "i", "o", "ai", "ea", "ou"]
CODAS = ["", "", "", "", "", "n", "r", "s", "t", "l", "nd", "st", "ck", "m"]
ACCENTED = {"e": "é", "o": "ö", "u": "ü", "a": "á"}
SOURCES = [f"outlet-{i:02d}" for i in range(25)]
FETCHED = datetime(2024, 11, 20, 12, 0, tzinfo=UTC)
ORIGIN = Origin(Path("generated.yaml"), 1, 1)


class Zipf:
    """Draw items with probability proportional to 1 / rank**s."""

    def __init__(self, items: list[str], s: float) -> None:
        self.items = items
        self.cum = list(accumulate(1.0 / (rank + 1) ** s for rank in range(len(items))))

    def draw(self, rng: random.Random, k: int = 1) -> list[str]:
        return rng.choices(self.items, cum_weights=self.cum, k=k)

    def one(self, rng: random.Random) -> str:
        return self.items[bisect(self.cum, rng.random() * self.cum[-1])]


def _syllable(rng: random.Random) -> str:
    return rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)


def _vocabulary(rng: random.Random) -> list[str]:
    words: dict[str, None] = {}
    while len(words) < VOCABULARY:
        rank = len(words)
        syllables = 1 if rank < 300 else 2 if rank < 10_000 else 3
        syllables += rng.random() < 0.15
        word = "".join(_syllable(rng) for _ in range(syllables))
        if len(word) >= 2:
            words.setdefault(word, None)
    return list(words)


@dataclass(frozen=True, slots=True)
class Entity:
    surface: str  # as written in text
    words: tuple[str, ...]
    acronym: bool = False


def _name(rng: random.Random, accent: float = 0.1) -> str:
    name = "".join(_syllable(rng) for _ in range(rng.randint(2, 3))).capitalize()
    if rng.random() < accent:
        i = next((i for i, c in enumerate(name) if c in ACCENTED), None)
        if i is not None:
            name = name[:i] + ACCENTED[name[i]] + name[i + 1 :]
    return name


def _entities(rng: random.Random) -> list[Entity]:
    entities: dict[str, Entity] = {}
    while len(entities) < ENTITIES:
        kind = rng.random()
        if kind < 0.45:  # a person: first and last name
            words: tuple[str, ...] = (_name(rng, 0.05), _name(rng))
        elif kind < 0.8:  # a place
            words = (_name(rng),)
        elif kind < 0.9:  # an organisation known by its acronym
            acronym = "".join(rng.choice("ABCDEFGHIKLMNOPRSTUVW") for _ in range(rng.randint(3, 4)))
            entities.setdefault(acronym, Entity(acronym, (acronym,), acronym=True))
            continue
        else:  # an organisation with a two- or three-word name
            words = tuple(_name(rng, 0.0) for _ in range(rng.randint(2, 3)))
        surface = " ".join(words)
        entities.setdefault(surface, Entity(surface, words))
    return list(entities.values())


class World:
    """Vocabulary, entities and their distributions: shared by articles and rules."""

    def __init__(self, seed: int = SEED) -> None:
        rng = random.Random(seed)
        self.vocabulary = _vocabulary(rng)
        self.entities = _entities(rng)
        self.text_words = Zipf(self.vocabulary, 1.0)
        self.topic_words = Zipf(self.vocabulary[100:], 0.9)  # content words
        self.context_words = Zipf(self.vocabulary[100:5_000], 0.7)
        self.rare_words = Zipf(self.vocabulary[5_000:], 0.5)
        self.news_entities = Zipf([e.surface for e in self.entities], 1.0)
        self.rule_entities = Zipf([e.surface for e in self.entities], 0.3)
        self.by_surface = {e.surface: e for e in self.entities}


# --- articles ----------------------------------------------------------------------------

def _sentence_text(rng: random.Random, tokens: list[str]) -> str:
    sentences: list[str] = []
    start = 0
    while start < len(tokens):
        length = rng.randint(8, 25)
        words: list[str] = []
        for word in tokens[start : start + length]:
            roll = rng.random()
            if words and roll < 0.01:  # a hyphenated compound
                words[-1] += "-" + word
                continue
            if words and roll > 0.94:
                words[-1] += ","
            words.append(word)
        start += length
        words[0] = words[0][:1].upper() + words[0][1:]
        sentences.append(" ".join(words) + rng.choice([".", ".", ".", "?", ":"]))
    return " ".join(sentences)


def _tokens(rng: random.Random, world: World, count: int, topic: list[str],
            entities: list[Entity]) -> list[str]:
    tokens = world.text_words.draw(rng, count)
    for i in rng.sample(range(count), k=count // 10):  # the topic, repeated
        tokens[i] = rng.choice(topic)
    for i in rng.sample(range(count), k=max(1, count // 40)):  # entity mentions
        entity = rng.choice(entities)
        possessive = "'s" if not entity.acronym and rng.random() < 0.2 else ""
        tokens[i] = entity.surface + possessive
    return tokens


def make_articles(world: World, count: int, seed: int = SEED + 1) -> list[Article]:
    rng = random.Random(seed)
    articles: list[Article] = []
    for number in range(count):
        topic = world.topic_words.draw(rng, 12)
        entities = [world.by_surface[s] for s in world.news_entities.draw(rng, rng.randint(1, 3))]
        title_tokens = _tokens(rng, world, rng.randint(8, 14), topic, entities)
        title = " ".join(title_tokens)
        title = title[:1].upper() + title[1:]
        summary = _sentence_text(rng, _tokens(rng, world, rng.randint(25, 45), topic, entities))
        content = _sentence_text(rng, _tokens(rng, world, rng.randint(300, 800), topic, entities))
        source = rng.choice(SOURCES)
        language = rng.choices(["en", "de", "fr"], weights=[90, 5, 5])[0]
        articles.append(Article(
            source=source, identity=f"{source}:{number}", guid=str(number),
            url=f"https://{source}.example/news/{number}", title=title, summary=summary,
            content=content, author=_name(rng), published=None, fetched=FETCHED,
            language=language))
    return articles


# --- rules -------------------------------------------------------------------------------

def _wordy(rng: random.Random, word: str, other: str) -> str:
    """A word as an analyst writes it: plain, ``stem*``, ``authori?e`` or a phrase."""
    roll = rng.random()
    if roll < 0.25 and len(word) >= 7:  # a stem: six letters or more
        return word[: max(6, len(word) - rng.randint(1, 3))] + "*"
    if roll < 0.30 and len(word) >= 7:  # one letter either way, near the end
        i = rng.randint(len(word) - 3, len(word) - 2)
        return word[:i] + "?" + word[i + 1 :]
    if roll < 0.40:
        tail = other[: max(5, len(other) - 2)] + "*" if rng.random() < 0.3 and len(other) > 6 \
            else other
        return f'"{word} {tail}"'
    return word


def _subject_terms(rng: random.Random, world: World) -> list[str]:
    """What a rule is about, in the ways it is written: a named entity (its full name,
    surname, acronym, ``Zelensk*``) or, for one rule in four, a rare word or two."""
    if rng.random() < 0.25:
        return [_wordy(rng, world.rare_words.one(rng), world.context_words.one(rng))
                for _ in range(rng.randint(1, 2))]
    entity = world.by_surface[world.rule_entities.one(rng)]
    if entity.acronym:
        return ["{" + entity.surface + "}" if rng.random() < 0.5 else entity.surface]
    terms = [f'"{entity.surface}"' if len(entity.words) > 1 else entity.surface]
    last = entity.words[-1]
    if len(entity.words) > 1 and rng.random() < 0.5:
        terms.append(last)
    if rng.random() < 0.2 and len(last) >= 7:
        terms.append(last[:-2] + "*")
    return terms


def _context_term(rng: random.Random, world: World) -> str:
    """What must surround the subject: common content words (``approv*``, ``troops``)."""
    return _wordy(rng, world.context_words.one(rng), world.context_words.one(rng))


def _block(terms: list[str], rng: random.Random) -> str:
    inner = terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"
    return "title:" + inner if rng.random() < 0.05 else inner


def _rule(rng: random.Random, world: World, number: int) -> Rule:
    size = rng.randint(3, 15)
    if rng.random() < 0.001:  # no usable anchor: evaluated for every article
        word, other = world.rare_words.one(rng), world.rare_words.one(rng)
        return _make(number, f"*{word[2:]}{other[:3]} OR /{other}s?/", rng)
    subjects = _subject_terms(rng, world)
    context = [_context_term(rng, world) for _ in range(max(1, size - len(subjects)))]
    shape = rng.random()
    if shape < 0.40:  # subject AND context
        query = f"{_block(subjects, rng)} AND {_block(context, rng)}"
    elif shape < 0.65:  # subject NEAR context
        query = f"{_block(subjects, rng)} NEAR/{rng.randint(3, 15)} {_block(context, rng)}"
    elif shape < 0.80:  # subject AND two context blocks, one of them NEAR the subject
        half = max(1, len(context) // 2)
        first, second = context[:half], context[half:] or context[:1]
        query = (f"({_block(subjects, rng)} NEAR/{rng.randint(5, 15)} {_block(first, rng)}) "
                 f"AND {_block(second, rng)}")
    elif shape < 0.90:  # two subjects together
        more = _subject_terms(rng, world)
        query = f"{_block(subjects, rng)} AND {_block(more + context[:2], rng)}"
    else:  # the subject in the query, context words in an `any` list
        return _make(number, _block(subjects, rng), rng, any_=context)
    if rng.random() < 0.3:
        negatives = " OR ".join(world.context_words.draw(rng, rng.randint(1, 3)))
        query += f" NOT ({negatives})"
    if rng.random() < 0.03:
        query += rf" AND /\d+ {world.context_words.one(rng)}/"
    return _make(number, query, rng)


def _make(number: int, query: str, rng: random.Random, any_: list[str] | None = None) -> Rule:
    none = ("title:(opinion OR analysis)",) if rng.random() < 0.1 else ()
    return Rule(
        id=f"rule-{number:05d}", title=f"Rule {number}", origin=ORIGIN,
        query=parse_query(query), any=tuple(parse_query(q) for q in any_ or ()),
        none=tuple(parse_query(q) for q in none),
        sources=tuple(rng.sample(SOURCES, 5)) if rng.random() < 0.05 else ("*",),
        languages=("en",) if rng.random() < 0.2 else (),
    )


def make_rules(world: World, count: int, seed: int = SEED + 2) -> RuleSet:
    rng = random.Random(seed)
    return RuleSet(tuple(_rule(rng, world, n) for n in range(count)))
