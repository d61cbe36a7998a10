"""Stage *stories*: one story told by many outlets is one story, and only one.

The labelled set (tests/fixtures/stories/labelled.jsonl) is written like
multi-outlet coverage of November-December 2024: retellings with different
headlines, and same-topic different-event hard negatives within days. The method
and its threshold were chosen on it.

The held-out set (tests/fixtures/stories/heldout.jsonl) was written afterwards, by
someone else, the same way (coverage of July 2023 to July 2024). Nothing was tuned
on it for the first two methods; the close rule (a shared unknown name within
12 h) was chosen on all three sets, so it no longer measures unseen coverage.

The development set (tests/fixtures/stories/dev.jsonl, coverage of September 2022
to March 2023) was written with the second method (the prior idf), so that its
settings were not chosen on the labelled set alone; the held-out set was scored
once, after they were frozen.

The second held-out set (tests/fixtures/stories/heldout2.jsonl, 2020-2025, its
writer's notes in heldout2.md) was written later by someone who saw neither the
method nor the other sets, and scored once for the method before the close rule and
once for the close rule.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from math import comb
from pathlib import Path

import pytest

from monitor.records import Article
from monitor.stories import StoryIndex, StorySettings, story_terms
from monitor.stories.prior import english_shares

FIXTURES = Path(__file__).parent / "fixtures" / "stories"
LABELLED = FIXTURES / "labelled.jsonl"
HELD_OUT = FIXTURES / "heldout.jsonl"
HELD_OUT_2 = FIXTURES / "heldout2.jsonl"
DEV = FIXTURES / "dev.jsonl"
PINNED_IDS = FIXTURES / "labelled_story_ids.json"
T0 = datetime(2024, 11, 18, 9, 0, tzinfo=UTC)


def load_labelled(fetched: datetime | None = None,
                  path: Path = LABELLED) -> list[tuple[Article, str]]:
    """The labelled articles in publication order, fetched a few minutes after
    publication (or all at ``fetched``: an archive)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        published = datetime.fromisoformat(row["published"])
        out.append((article(row["id"], row["title"], row["summary"], published,
                            fetched=fetched, source=row["source"]), row["story"]))
    return sorted(out, key=lambda pair: pair[0].when)


def article(identity: str, title: str, summary: str = "", published: datetime = T0, *,
            fetched: datetime | None = None, source: str = "wire") -> Article:
    return Article(source=source, identity=identity, guid=None, url=None, title=title,
                   summary=summary, content="", author="", published=published,
                   fetched=fetched or published + timedelta(minutes=5), language="en")


def pairwise(labels: list[str], predicted: list[str]) -> tuple[float, float]:
    """Pairwise precision and recall: of the pairs put together, how many belong
    together; of the pairs that belong together, how many were put together."""
    together = sum(comb(n, 2) for n in Counter(zip(labels, predicted, strict=True)).values())
    put = sum(comb(n, 2) for n in Counter(predicted).values())
    belong = sum(comb(n, 2) for n in Counter(labels).values())
    return together / put, together / belong


def cluster(pairs: list[tuple[Article, str]], index: StoryIndex | None = None) -> dict[str, str]:
    index = index or StoryIndex()
    return {a.identity: index.assign(a) for a, _ in pairs}


def clustered_quality(path: Path) -> tuple[float, float]:
    """Pairwise precision and recall of a fresh index on a labelled set."""
    pairs = load_labelled(path=path)
    ids = cluster(pairs)
    return pairwise([label for _, label in pairs], [ids[a.identity] for a, _ in pairs])


@pytest.mark.parametrize("path", [LABELLED, HELD_OUT, HELD_OUT_2],
                         ids=["labelled", "held-out", "held-out 2"])
def test_the_labelled_set_is_many_outlets_telling_many_stories(path: Path) -> None:
    pairs = load_labelled(path=path)
    stories = Counter(label for _, label in pairs)
    assert len(pairs) >= 80
    assert len(stories) >= 20
    assert sum(1 for n in stories.values() if n >= 3) >= 20
    for label in stories:  # retellings: no two outlets share a headline
        titles = [a.title for a, other in pairs if other == label]
        assert len(set(titles)) == len(titles)


def test_clustering_the_labelled_set_meets_the_precision_and_recall_floor() -> None:
    precision, recall = clustered_quality(LABELLED)
    assert precision >= 0.95, precision
    assert recall >= 0.85, recall


def test_clustering_the_held_out_set_holds_the_floor_it_measured() -> None:
    # Measured with the close rule (shared unknown name within 12 h): precision
    # 0.923, recall 0.511 (the prior idf alone, scored once when frozen: 0.910 /
    # 0.433; before it 0.851 / 0.284), short of the 0.95 / 0.85 targets
    # (benchmarks/README.md). The close rule was chosen on this set with the other
    # two. This floor catches a regression; it is not the target.
    precision, recall = clustered_quality(HELD_OUT)
    assert precision >= 0.92, precision
    assert recall >= 0.51, recall


def test_clustering_the_second_held_out_set_holds_the_floor_it_measured() -> None:
    # Written by someone who saw neither the method nor the other sets; scored once
    # for the method before the close rule (0.739 / 0.072) and once for the shipped
    # one (0.667 / 0.093: 22 of 236 same-story pairs, 11 wrong pairs). Far from the
    # targets: its retellings mostly share no distinctive word (benchmarks/README.md).
    precision, recall = clustered_quality(HELD_OUT_2)
    assert precision >= 0.66, precision
    assert recall >= 0.09, recall


def test_the_development_set_is_retellings_and_same_topic_neighbours() -> None:
    pairs = load_labelled(path=DEV)
    stories = Counter(label for _, label in pairs)
    assert len(pairs) >= 50
    assert len(stories) >= 15
    for label in stories:
        titles = [a.title for a, other in pairs if other == label]
        assert len(set(titles)) == len(titles)


def test_clustering_the_development_set_holds_the_floor_it_measured() -> None:
    # Measured with the shipped settings: precision 1.000, recall 0.729 (the prior
    # idf alone: 1.000 / 0.678; the method before it: 1.000 / 0.627). Its retellings
    # share few words: recall is what is short.
    precision, recall = clustered_quality(DEV)
    assert precision >= 0.95, precision
    assert recall >= 0.72, recall


@pytest.mark.parametrize(("one", "other", "what"), [
    ("d-svb-collapse-1", "d-signature-closed-1", "SVB fails / Signature closed, two days apart"),
    ("d-queen-dies-1", "d-charles-proclaimed-1",
     "the Queen dies / Charles proclaimed, two days apart"),
    ("d-truss-resigns-1", "d-sunak-pm-1", "Truss resigns / Sunak chosen, four days apart"),
    ("d-kerch-bridge-1", "d-kyiv-strikes-1",
     "the Kerch bridge blast / the strikes it was avenged by"),
    ("d-fed-hike-nov22-1", "d-boe-hike-nov22-1", "the Fed and the BoE hike, the next day"),
    ("d-balloon-1", "d-alaska-object-1", "the balloon / the Alaska object, six days apart"),
])
def test_development_same_topic_different_events_stay_apart(one: str, other: str,
                                                            what: str) -> None:
    ids = cluster(load_labelled(path=DEV))
    assert ids[one] != ids[other], what


def test_common_english_words_weigh_less_than_names_from_the_first_article() -> None:
    # An index that has seen nothing weighs every word alike unless it knows English.
    first = article("f", "Central bank raises rate as Hryvnia slides")
    fresh = StoryIndex()._vector(story_terms(first))
    learned_only = StoryIndex(StorySettings(prior_documents=0))._vector(story_terms(first))
    # Learned alone: every word weighs the same (the name only counts twice)...
    assert learned_only["bank"] == pytest.approx(learned_only["slide"])
    # ...with the prior, the name outweighs the common words by a fifth more again.
    for common in ("bank", "rate", "central"):
        assert (fresh["hryvnia"] / fresh[common]
                > 1.2 * learned_only["hryvnia"] / learned_only[common])


def test_an_article_in_another_language_is_weighed_on_learned_counts_alone() -> None:
    # To an English prior every German word looks rare: "die" and "Regierung" would
    # weigh like names. So a German article is weighed as if there were no prior.
    german = article("de", "Die Regierung beschließt neue Sanktionen gegen Russland",
                     "Das Kabinett hat am Mittwoch das Paket beschlossen.")
    with_prior = StoryIndex()._vector(story_terms(german))
    learned_only = StoryIndex(StorySettings(prior_documents=0))._vector(story_terms(german))
    assert with_prior == learned_only
    english = article("en", "Government adopts new sanctions against Russia")
    assert (StoryIndex()._vector(story_terms(english))
            != StoryIndex(StorySettings(prior_documents=0))._vector(story_terms(english)))


def test_the_english_prior_is_folded_singular_and_free_of_stop_words() -> None:
    shares = english_shares()
    assert "missile" in shares
    assert "missiles" not in shares
    assert not {"the", "said", "of"} & set(shares)
    assert 0.0 < shares["missile"] < shares["bank"] <= 1.0
    assert "atacms" not in shares  # a name: rare in English, so it weighs the most


@pytest.mark.parametrize(("one", "other", "what"), [
    ("fed-hike-jul-2023-1", "ecb-hike-jul-2023-1", "the Fed and the ECB hike, 18 hours apart"),
    ("ecb-hike-jul-2023-3", "boj-ycc-jul-2023-1", "the ECB hikes / the BOJ loosens, the next day"),
    ("eu-13th-package-feb-2024-1", "us-sanctions-feb-2024-1",
     "EU and US sanctions on Russia, the same day"),
    ("altman-ousted-nov-2023-1", "altman-joins-microsoft-nov-2023-1",
     "Altman fired / hired by Microsoft, three days apart"),
    ("milei-wins-nov-2023-1", "wilders-wins-nov-2023-1", "two elections, three days apart"),
    ("noto-quake-jan-2024-1", "haneda-collision-jan-2024-1",
     "the Noto earthquake / the Haneda collision, the next day"),
    ("taiwan-election-jan-2024-1", "nauru-switches-jan-2024-1",
     "Taiwan's election / Nauru's switch, two days apart"),
])
def test_held_out_same_topic_different_events_stay_apart(one: str, other: str,
                                                         what: str) -> None:
    ids = cluster(load_labelled(path=HELD_OUT))
    assert ids[one] != ids[other], what


def test_the_labelled_set_keeps_its_pinned_story_ids() -> None:
    # Re-pinned on purpose when the prior idf and the 24 h decay came in (10 of the
    # 113 ids changed; first pinned as of commit 0b4a79c), and when the close rule
    # came in (1 of the 113: q03 joins q02): a change meant only to
    # make clustering faster must give every article the same story id. A change of
    # method re-pins this file on purpose (benchmarks/README.md).
    pinned = json.loads(PINNED_IDS.read_text(encoding="utf-8"))
    assert cluster(load_labelled()) == pinned


def test_retellings_with_different_headlines_join_one_story() -> None:
    pairs = load_labelled()
    ids = cluster(pairs)
    by_id = {a.identity: a for a, _ in pairs}
    assert by_id["a01"].title == "Biden lets Ukraine fire US long-range missiles into Russia"
    assert by_id["a02"].title == "US lifts curbs on ATACMS strikes inside Russia"
    assert by_id["a03"].title == "Washington approves deep strikes with American weapons"
    assert ids["a01"] == ids["a02"] == ids["a03"] == ids["a07"] == "a01"
    assert ids["y01"] == ids["y02"] == ids["y03"]  # Nadal retires, told three ways
    assert ids["g01"] == ids["g02"] == ids["g03"] == ids["g04"]  # 15th package adopted


@pytest.mark.parametrize(("one", "other", "what"), [
    ("a01", "b01", "the US authorises ATACMS / Germany refuses Taurus, the same day"),
    ("a01", "c01", "the ATACMS decision / the first ATACMS strike, two days later"),
    ("f01", "g01", "the 15th sanctions package drafted / adopted, a month later"),
    ("k01", "l01", "two North Korean missile launches, a month apart"),
    ("n01", "o01", "Brazil's and Ukraine's central banks hike, on consecutive days"),
    ("p01", "q01", "Storm Bert / Storm Conall, the same region, days apart"),
    ("r01", "s01", "Typhoon Usagi / Typhoon Man-yi, two days apart"),
    ("m01", "b01", "Scholz calls Putin / Scholz refuses Taurus, three days apart"),
])
def test_same_topic_different_events_stay_apart(one: str, other: str, what: str) -> None:
    ids = cluster(load_labelled())
    assert ids[one] != ids[other], what


def test_the_same_words_ten_days_later_start_a_new_story() -> None:
    index = StoryIndex()
    title = "North Korea fires ballistic missile into the sea off its east coast"
    first = index.assign(article("first", title, "Seoul's military said.", T0))
    again = index.assign(article("again", title, "Seoul's military said.", T0 + timedelta(hours=6)))
    later = index.assign(article("later", title, "Seoul's military said.", T0 + timedelta(days=10)))
    assert first == again == "first"
    assert later == "later"


def test_rebuilding_from_the_store_gives_the_same_ids() -> None:
    pairs = load_labelled()
    half = len(pairs) // 2
    running = StoryIndex()
    before = [running.assign(a) for a, _ in pairs[:half]]
    after = [running.assign(a) for a, _ in pairs[half:]]

    restarted = StoryIndex()
    stored = list(zip([a for a, _ in pairs[:half]], before, strict=True))
    random.Random(1).shuffle(stored)  # the store's order is not time order
    restarted.rebuild(stored)
    kept = [a.identity for a, _ in pairs[:half] if restarted.story_of(a.identity)]
    assert kept  # the recent ones, with the ids they had
    assert all(restarted.story_of(i) == running_id for i, running_id in
               zip([a.identity for a, _ in pairs[:half]], before, strict=True) if i in kept)
    assert [restarted.assign(a) for a, _ in pairs[half:]] == after


def test_rebuilding_never_reassigns_a_stored_id() -> None:
    index = StoryIndex()
    text = "EU agrees new sanctions on Russia's shadow fleet tankers"
    index.rebuild([(article("x1", text), "story-from-the-store"),
                   (article("x2", text, published=T0 + timedelta(hours=1)), "another-story")])
    assert index.story_of("x1") == "story-from-the-store"
    assert index.story_of("x2") == "another-story"
    assert index.assign(article("x3", text, published=T0 + timedelta(hours=2))) == "another-story"


def test_eviction_bounds_the_articles_kept() -> None:
    index = StoryIndex(StorySettings(window=timedelta(hours=24), max_articles=300))
    rng = random.Random(3)
    words = [f"word{i}" for i in range(2000)]
    for i in range(2000):  # 2,000 articles over ~14 days, 6 an hour
        when = T0 + timedelta(minutes=10 * i)
        index.assign(article(f"n{i}", " ".join(rng.sample(words, 8)),
                             " ".join(rng.sample(words, 30)), when))
        assert len(index) <= 300
    # Only the last day is kept (6 an hour, 24 hours, 1 more at the edge).
    assert len(index) <= 6 * 24 + 1
    assert index.story_of("n0") is None
    assert index.vocabulary <= len(words)


def test_the_hard_cap_evicts_the_oldest_first() -> None:
    index = StoryIndex(StorySettings(max_articles=10))
    for i in range(25):
        index.assign(article(f"c{i}", f"headline number {i} kappa{i}",
                             published=T0 + timedelta(minutes=i)))
    assert len(index) == 10
    assert index.story_of("c14") is None
    assert index.story_of("c15") is not None


def test_an_archive_fed_out_of_order_clusters_as_in_time_order() -> None:
    fetched_now = datetime(2025, 1, 10, tzinfo=UTC)  # a backfill: all fetched at once
    pairs = load_labelled(fetched=fetched_now)
    in_order = cluster(pairs)
    scrambled = [a for a, _ in pairs]
    random.Random(5).shuffle(scrambled)
    as_a_batch = StoryIndex().assign_batch(scrambled)
    assert as_a_batch == [in_order[a.identity] for a in scrambled]


def test_articles_one_by_one_out_of_order_keep_the_window() -> None:
    pairs = load_labelled(fetched=datetime(2025, 1, 10, tzinfo=UTC))
    for order in (pairs[::-1], random.Random(5).sample(pairs, len(pairs))):
        ids = cluster(order)
        assert ids["f01"] != ids["g01"]  # a month apart, whichever comes first
        assert ids["k01"] != ids["l01"]

    # A retelling that arrives after a later one (a slow source) still joins.
    index = StoryIndex()
    first = article("t1", "Typhoon Usagi slams northern Philippines",
                    "The typhoon made landfall in Cagayan province.", T0)
    later = article("t3", "Usagi leaves trail of damage in Cagayan",
                    "Typhoon Usagi weakened after crossing northern Luzon.",
                    T0 + timedelta(hours=8))
    late = article("t2", "Cagayan evacuates thousands as Usagi hits",
                   "Typhoon Usagi brought storm surges to Cagayan.", T0 + timedelta(hours=3))
    assert [index.assign(a) for a in (first, later, late)] == ["t1", "t1", "t1"]


QUAKE = article("q1", "Taiwan hit by strongest earthquake in 25 years",
                "A magnitude 7.4 quake struck off Hualien county on Wednesday morning.")


def later_telling(identity: str, title: str, summary: str, hours: float) -> Article:
    return article(identity, title, summary, T0 + timedelta(hours=hours))


def joins(first: Article, second: Article, settings: StorySettings | None = None) -> bool:
    index = StoryIndex(settings)
    return index.assign(first) == index.assign(second)


def test_a_retelling_sharing_a_rare_name_within_12_hours_joins_below_the_threshold() -> None:
    # Decayed cosine 0.132 eleven hours later, 0.117 fourteen hours later: below 0.14
    # both times; they share "Hualien", a name general English does not know.
    angle = ("Buildings lean in Hualien, hikers trapped by landslides",
             "Rescuers worked to reach people stuck in tunnels after the quake.")
    assert joins(QUAKE, later_telling("q2", *angle, hours=11))
    assert not joins(QUAKE, later_telling("q2", *angle, hours=11),
                     StorySettings(close_window=timedelta(0)))
    assert not joins(QUAKE, later_telling("q2", *angle, hours=14))


def test_only_a_name_unknown_to_english_lets_a_close_pair_join_below_the_threshold() -> None:
    # The same pair with "the east" for "Hualien": decayed cosine 0.099 an hour
    # apart, and nothing shared but English words.
    plain = article("e1", QUAKE.title, "A magnitude 7.4 quake struck off the east on "
                    "Wednesday morning.")
    angle = later_telling("e2", "Buildings lean in the east, hikers trapped by landslides",
                          "Rescuers worked to reach people stuck in tunnels after the quake.",
                          hours=1)
    assert not joins(plain, angle)
    assert joins(plain, angle, StorySettings(threshold=0.09))  # it is in the band


def test_one_shared_rare_name_is_enough_to_be_scored() -> None:
    # "Charles becomes king after death of his mother at Balmoral" shares one term
    # with "Queen Elizabeth II dies at 96", Balmoral, and scores 0.131 with it: an
    # article sharing a single term with the new one must still be a candidate.
    ids = cluster(load_labelled(path=DEV))
    assert ids["d-queen-dies-3"] == ids["d-queen-dies-1"]


def test_articles_in_another_language_never_join_on_an_unknown_word() -> None:
    # To the English prior every German word is unknown: decayed cosine 0.105 an
    # hour apart, which the close rule would take for a shared name.
    first = article("g1", "Regierung beschließt neue Regeln für Mieten",
                    "Das Kabinett hat am Mittwoch die Mietpreisbremse verlängert.")
    second = later_telling("g2", "Mieter atmen auf: Mietpreisbremse bleibt",
                           "Die Koalition einigte sich nach langem Streit auf eine "
                           "Verlängerung.", hours=1)
    assert not joins(first, second)
    assert joins(first, second, StorySettings(threshold=0.1))  # it is in the band


def test_terms_are_folded_stop_word_free_and_singular() -> None:
    terms = story_terms(article("t", "Zélensky says the missiles are coming", "Sanctions"))
    assert {"zelensky", "missile", "sanction"} <= set(terms)
    assert not {"the", "says", "are"} & set(terms)


def test_assigning_a_kept_article_again_gives_its_id() -> None:
    index = StoryIndex()
    a = article("once", "Storm Bert floods homes in Wales")
    assert index.assign(a) == index.assign(a) == "once"
    assert len(index) == 1


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        StorySettings(threshold=0)
    with pytest.raises(ValueError, match="positive"):
        StorySettings(window=timedelta(0))
    with pytest.raises(ValueError, match="prior_documents"):
        StorySettings(prior_documents=-1)
    with pytest.raises(ValueError, match="close_window"):
        StorySettings(close_window=timedelta(hours=-1))
    with pytest.raises(ValueError, match="close_threshold"):
        StorySettings(close_threshold=0)
