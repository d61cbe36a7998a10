"""Identity: an article's keys, and which fetched items the store has already."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime

from monitor.identity import (
    IdentityMode,
    Recognised,
    StoredArticle,
    article_identity,
    content_fingerprint,
    link_key,
    recognise,
)
from monitor.normalise import normalise_entry, with_canonical_url
from monitor.records import Article, FeedEntry

FETCHED = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TITLE = "Biden authorises Ukraine to strike Russia with ATACMS"
TEXT = "The decision reverses a months-long policy, officials said."


def item(guid: str | None = "g-1", link: str | None = "https://wire.example/atacms",
         title: str = TITLE, summary: str = TEXT, source: str = "wire",
         mode: IdentityMode = "guid") -> Article:
    entry = FeedEntry(guid=guid, link=link, title=title, summary=summary, content="",
                      author="", published=None, language=None)
    return normalise_entry(source, entry, FETCHED, mode)


def stored(article: Article, row: int, story: str = "story-1",
           duplicate_of: int | None = None) -> StoredArticle:
    return StoredArticle(row, article.source, article.identity, link_key(article.url),
                         article.fingerprint, story, duplicate_of)


def statuses(result: list[Recognised]) -> list[str]:
    return [r.status for r in result]


# --- the keys ---------------------------------------------------------------------------


def test_the_fingerprint_ignores_markup_punctuation_case_and_accents() -> None:
    assert content_fingerprint("Zélensky: ATACMS!", "long-range  missiles", "") == (
        content_fingerprint("zelensky atacms", "Long range missiles.", ""))


def test_the_fingerprint_of_accented_text_is_the_one_stored_databases_hold() -> None:
    # Pinned: stored fingerprints must keep recognising their articles whatever way the
    # folding is computed (this value is that of newsmon before the marks were removed
    # per distinct character).
    assert content_fingerprint("Zelenskýj: Ærø, \u201cKursk\u201d \u2014 Ñandú",
                               "Μελέτη: crème brûlée, ǅ, ﬁnal", "x\u0301\u0327y") == (
        "82e48d0a6eca3b1d3709386ab644927c")


def test_the_fingerprint_changes_with_any_word_of_title_or_text() -> None:
    base = content_fingerprint(TITLE, TEXT, "")
    assert content_fingerprint(TITLE + " now", TEXT, "") != base
    assert content_fingerprint(TITLE, TEXT, "A correction.") != base


def test_a_missing_link_has_no_link_key() -> None:
    assert link_key(None) is None
    assert link_key("https://a.example/1") != link_key("https://a.example/2")


def test_identity_depends_on_the_source() -> None:
    assert article_identity("guid", "a", "g", None, "f") != (
        article_identity("guid", "b", "g", None, "f"))


def test_identity_kinds_do_not_collide() -> None:
    by_guid = article_identity("guid", "s", "http://x.example/", None, "f")
    by_url = article_identity("guid", "s", None, "http://x.example/", "f")
    assert by_guid != by_url


def test_identity_keys_of_earlier_versions_are_kept() -> None:
    """An upgraded database must keep recognising what it stored by guid or link."""
    def old(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    assert article_identity("guid", "wire", "g-1", "http://a.example/1", "f") == (
        old("guid\0wire\0g-1"))
    assert article_identity("guid", "wire", None, "http://a.example/1", "f") == (
        old("url\0wire\0http://a.example/1"))


def test_each_mode_takes_its_own_key() -> None:
    by_link = article_identity("link", "s", "g", "http://x.example/", "f")
    assert by_link == article_identity("guid", "s", None, "http://x.example/", "f")
    assert article_identity("content", "s", "g", "http://x.example/", "f") == (
        article_identity("guid", "s", None, None, "f"))


def test_identity_is_stable_across_calls_and_processes() -> None:
    args = ("guid", "wire", None, "http://a.example/1", "f")
    here = article_identity(*args)  # type: ignore[arg-type]
    assert re.fullmatch(r"[0-9a-f]{32}", here)
    code = f"from monitor.identity import article_identity; print(article_identity(*{args!r}))"
    fresh = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "random"},
    )
    assert fresh.stdout.strip() == here


# --- recognising a fetched batch --------------------------------------------------------


def test_an_article_never_stored_is_new() -> None:
    assert statuses(recognise([item()], [], "guid")) == ["new"]


def test_a_stored_article_is_unchanged_or_updated_by_its_text() -> None:
    first = item()
    edited = item(title=TITLE + " (updated)")
    (same,) = recognise([first], [stored(first, 1)], "guid")
    (changed,) = recognise([edited], [stored(first, 1)], "guid")
    assert (same.status, changed.status) == ("unchanged", "updated")
    assert changed.stored is not None
    assert changed.stored.id == 1


def test_a_guid_made_up_anew_for_the_same_link_and_text_is_the_stored_article() -> None:
    first = item(guid="session-1")
    again = item(guid="session-2", link="https://WIRE.example/atacms?utm_source=rss#x")
    (result,) = recognise([again], [stored(first, 7)], "guid")
    assert result.status == "unchanged"
    assert result.article.identity == first.identity  # stored under its first identity


def test_entries_sharing_a_link_but_not_their_text_are_distinct_articles() -> None:
    """A live blog: one page, one entry per update, each with its own guid."""
    first = item(guid="update-1", summary="Missiles were fired at 9:00.")
    later = item(guid="update-2", summary="A second salvo at 11:00.")
    assert statuses(recognise([later], [stored(first, 1)], "guid")) == ["new"]


def test_without_a_link_a_new_guid_over_the_same_text_is_the_stored_article() -> None:
    first = item(guid="a", link=None)
    assert statuses(recognise([item(guid="b", link=None)], [stored(first, 1)], "guid")) == [
        "unchanged"]


def test_without_a_guid_another_link_to_the_same_canonical_page_is_the_article() -> None:
    """full_text: the second link's page names the stored article's canonical link."""
    first = with_canonical_url(item(guid=None, link="https://wire.example/atacms-rss"),
                               "https://wire.example/atacms")
    amp = item(guid=None, link="https://wire.example/amp/atacms", summary="Officials say.")
    (result,) = recognise([with_canonical_url(amp, "https://wire.example/atacms")],
                          [stored(first, 1)], "guid")
    assert (result.status, result.alias) == ("updated", amp.identity)
    assert result.article.identity == first.identity
    known = replace(stored(first, 1), aliases=(amp.identity,))  # next time: by its alias
    (again,) = recognise([amp], [known], "guid")
    assert (again.status, again.alias) == ("updated", amp.identity)


def test_a_guid_says_more_than_a_shared_canonical_link() -> None:
    """A live blog's entries share one canonical page and keep their own guids."""
    first = item(guid="update-1", summary="Missiles were fired at 9:00.")
    later = with_canonical_url(item(guid="update-2", link="https://wire.example/amp/atacms",
                                    summary="A second salvo at 11:00."),
                               "https://wire.example/atacms")
    (result,) = recognise([later], [stored(first, 1)], "guid")
    assert (result.status, result.alias) == ("new", None)


def test_by_link_an_edited_item_under_a_new_guid_is_an_update() -> None:
    first = item(guid="a", mode="link")
    edited = item(guid="b", title="ATACMS: Biden lifts the ban", mode="link")
    assert statuses(recognise([edited], [stored(first, 1)], "link")) == ["updated"]


def test_by_content_the_same_text_under_another_link_is_the_stored_article() -> None:
    first = item(guid="a", mode="content")
    moved = item(guid="b", link="https://wire.example/world/atacms", mode="content")
    assert statuses(recognise([moved], [stored(first, 1)], "content")) == ["unchanged"]


def test_a_database_switched_to_link_identity_still_knows_its_articles() -> None:
    by_guid = item(guid="a")
    assert statuses(recognise([item(guid="a", mode="link")], [stored(by_guid, 1)], "link")) == [
        "unchanged"]


def test_another_sources_article_with_the_same_canonical_link_is_a_duplicate() -> None:
    first = item(source="wire")
    copy = item(source="world-feed", guid="w-9", title="Another headline", summary="",
                link="https://wire.example/atacms?fbclid=abc")
    (result,) = recognise([copy], [stored(first, 3, story="s-3")], "guid")
    assert result.status == "duplicate"
    assert result.stored is not None
    assert (result.stored.original, result.stored.story_id) == (3, "s-3")


def test_another_sources_article_with_the_same_title_and_text_is_a_duplicate() -> None:
    first = item(source="wire")
    syndicated = item(source="daily", guid="d-1", link="https://daily.example/2026/atacms")
    assert statuses(recognise([syndicated], [stored(first, 3)], "guid")) == ["duplicate"]


def test_a_copy_of_a_copy_points_at_the_first_article() -> None:
    first = item(source="wire")
    copy = item(source="daily", guid="d-1")
    third = item(source="weekly", guid="w-1")
    rows = [stored(copy, 5, duplicate_of=3), stored(first, 3)]
    (result,) = recognise([third], rows, "guid")
    assert result.stored is not None
    assert result.stored.original == 3


def test_the_same_headline_over_no_text_elsewhere_is_not_a_duplicate() -> None:
    """Two outlets' "Live: the latest" are not one article."""
    first = item(source="wire", summary="", link="https://wire.example/live")
    other = item(source="daily", guid="d-1", summary="", link="https://daily.example/live")
    assert statuses(recognise([other], [stored(first, 1)], "guid")) == ["new"]


def test_repeats_within_one_fetch_are_dropped() -> None:
    batch = [item(guid="a"), item(guid="a"), item(guid="b")]  # "b": a made-up guid
    assert statuses(recognise(batch, [], "guid")) == ["new"]


def test_a_guid_shared_by_two_items_of_one_fetch_keeps_both() -> None:
    batch = [item(guid="x", link="https://wire.example/1", title="One"),
             item(guid="x", link="https://wire.example/2", title="Two")]
    result = recognise(batch, [], "guid")
    assert statuses(result) == ["new", "new"]
    assert result[0].article.identity != result[1].article.identity
    again = recognise(batch, [stored(r.article, i) for i, r in enumerate(result)], "guid")
    assert statuses(again) == ["unchanged", "unchanged"]
