"""Full text for headline-only feeds: each new article's page is fetched and its main text
matched; a page that cannot be had costs only its text. Saved news pages
(tests/fixtures/pages/) are served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.config import Settings, resolve_paths
from tests.conftest import RULES, FeedServer, run_cycles

PAGES = Path(__file__).parent / "fixtures" / "pages"
SITE = "http://seedwire.example"  # the saved pages' own site, replaced by the test server's
EU_PATH = "/world/2024/11/18/eu-15th-sanctions-package-shadow-fleet"
BIDEN_PATH = "/world/2024/11/17/biden-authorises-ukraine-long-range-missiles"


def serve_page(server: FeedServer, path: str, name: str, **options: Any) -> str:
    body = (PAGES / name).read_bytes().replace(SITE.encode(), server.base.encode())
    return server.serve(path, body, content_type="text/html; charset=utf-8", **options)


def rss(items: Sequence[tuple[str, str, str, str | None]]) -> bytes:
    """A headline-only feed: (title, summary, link, guid) per item."""
    entries = "".join(
        f"<item><title>{title}</title><description>{summary}</description>"
        f"<link>{link}</link>{f'<guid>{guid}</guid>' if guid else ''}"
        "<pubDate>Mon, 18 Nov 2024 09:05:00 GMT</pubDate></item>"
        for title, summary, link, guid in items
    )
    return (f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>Seed Wire headlines</title>{entries}</channel></rss>").encode()


def make_settings(tmp_path: Path, sources: list[dict[str, Any]], **sections: Any) -> Settings:
    tmp_path.mkdir(exist_ok=True)
    return resolve_paths(Settings(
        storage={"url": f"sqlite:///{tmp_path / 'state.db'}"},  # type: ignore[arg-type]
        rules={"paths": [str(RULES)]},  # type: ignore[arg-type]
        defaults={"max_age": "off"},  # type: ignore[arg-type]
        sources=sources,  # type: ignore[arg-type]
        **sections,
    ), tmp_path)


def stored(settings: Settings, query: str) -> list[Any]:
    engine = sa.create_engine(settings.storage.url)
    with engine.connect() as conn:
        rows = list(conn.execute(sa.text(query)).all())
    engine.dispose()
    return rows


def alerted(settings: Settings) -> set[tuple[str, str]]:
    """(rule, source) of every alert planned."""
    return {(rule, source) for rule, source in stored(
        settings, "SELECT o.rule_id, a.source FROM outbox o JOIN articles a"
                  " ON a.id = o.article_id")}


@pytest.mark.parametrize("full_text", [True, False])
def test_a_rule_that_only_matches_the_article_body_fires_with_full_text(
    tmp_path: Path, feed_server: FeedServer, full_text: bool
) -> None:
    page = serve_page(feed_server, EU_PATH, "eu-sanctions-shadow-fleet.html")
    feed = feed_server.serve("/headlines.xml", rss([(
        "EU foreign ministers meet in Brussels",
        "Josep Borrell chairs his last meeting of foreign ministers.",
        page + "?utm_source=rss", "wire-eu-ministers")]))
    settings = make_settings(tmp_path, [{"name": "headlines", "url": feed,
                                         "full_text": full_text, "allow_private": True}])
    (report,) = run_cycles(settings)
    assert report.polls[0].error is None
    ((content,),) = stored(settings, "SELECT content FROM articles")
    if not full_text:
        assert alerted(settings) == set()
        assert content == ""
        return
    # The sanctions rule matches words only the article's body has. The page's sidebar
    # ("North Korean troops join Russian assault in Kursk") and its comments ("Washington
    # just authorised ATACMS strikes inside Russia") would fire two more rules if the
    # page's boilerplate reached matching.
    assert alerted(settings) == {("russia-sanctions-package", "headlines")}
    assert "15th package of sanctions against Russia" in content
    assert "dialogue set out in the association agreement" in content
    for boilerplate in ("Most read", "North Korean troops", "ATACMS", "Accept all", "Sign up",
                        "Privacy policy", "All rights reserved", "Share on", "Comments"):
        assert boilerplate not in content


def test_pages_that_fail_keep_the_feed_text_while_a_good_source_alerts(
    tmp_path: Path, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    huge = feed_server.serve("/world/huge", b"<html><body>" + b"<p>filler</p>" * 200_000,
                             content_type="text/html")
    slow = feed_server.serve("/world/slow", b"<html><body><p>late</p></body></html>" * 20,
                             content_type="text/html", chunk_delay=0.2)
    missing = feed_server.url("/world/gone")
    kursk = serve_page(feed_server, "/news/europe/kyiv-fighting-intensifies-kursk-4471",
                       "kursk-north-korean-troops.html")
    degraded = feed_server.serve("/degraded.xml", rss([
        ("Biden authorises Ukraine to strike Russia with US long-range missiles",
         "Outgoing president clears use of ATACMS against targets inside Russia.", missing,
         "g-biden"),
        ("Markets wait for the central bank", "Rates are expected to stay put.", huge,
         "g-rates"),
        ("Winter storm reaches the Baltic coast", "Gales and snow are forecast.", slow,
         "g-storm"),
    ]))
    observer = feed_server.serve("/observer.xml", rss([
        ("Kyiv says fighting intensifies in Kursk region", "Baltic Observer with agencies.",
         kursk, "obs-4471")]))
    settings = make_settings(
        tmp_path,
        [{"name": "degraded", "url": degraded, "full_text": True, "allow_private": True},
         {"name": "observer", "url": observer, "full_text": True, "allow_private": True}],
        full_text={"max_bytes": 1024 * 1024, "total_timeout": "1s"},
    )
    with caplog.at_level(logging.INFO):
        (report,) = run_cycles(settings)
    assert {p.source: p.error for p in report.polls} == {"degraded": None, "observer": None}
    # The good source's body fires its rule; the degraded source's articles are all
    # stored with what the feed said, and the one whose headline matches still alerts.
    assert alerted(settings) == {("north-korean-troops", "observer"),
                                 ("long-range-strike-policy", "degraded")}
    rows = stored(settings, "SELECT url, summary, content FROM articles"
                            " WHERE source = 'degraded' ORDER BY url")
    assert [(url, content) for url, _, content in rows] == [
        (missing, ""), (huge, ""), (slow, "")]
    assert all(summary for _, summary, _ in rows)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for url, reason in ((missing, "HTTP 404"), (huge, "body larger than 1048576 bytes"),
                        (slow, "no complete answer within 1s")):
        assert any(m.startswith(f"source degraded: article page {url}: {reason}")
                   and m.endswith("the article keeps its feed text") for m in messages), url


def test_an_article_reached_by_two_links_is_one_article(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    # Items without a guid are known by their link. Both links lead to pages naming the
    # same canonical link, so both are the same article.
    first = serve_page(feed_server, BIDEN_PATH + "-rss", "biden-atacms-decision.html")
    second = serve_page(feed_server, "/amp" + BIDEN_PATH, "biden-atacms-decision.html")
    title = "Biden authorises Ukraine to strike Russia with US long-range missiles"
    feed_server.serve("/wire.xml", rss([(title, "Officials say.", first, None)]))
    settings = make_settings(tmp_path, [{"name": "wire", "url": feed_server.url("/wire.xml"),
                                         "full_text": True, "allow_private": True}])
    run_cycles(settings)
    # Later the feed lists the article again under its other link.
    feed_server.serve("/wire.xml", rss([(title, "Officials say.", first, None),
                                        (title, "Officials say (updated).", second, None)]))
    reports = run_cycles(settings, cycles=2)
    assert [p.new for r in reports for p in r.polls] == [0, 0]
    ((url,),) = stored(settings, "SELECT url FROM articles")
    assert url == feed_server.url(BIDEN_PATH)  # the canonical link, fragment dropped
    # One article, so one alert per rule it matches (its body also names North Korean troops).
    assert alerted(settings) == {("long-range-strike-policy", "wire"),
                                 ("north-korean-troops", "wire")}
    assert stored(settings, "SELECT count(*) FROM outbox") == [(2,)]
    # Each page was read once: a known item is recognised without fetching its page again.
    assert len(feed_server.requests_to(BIDEN_PATH + "-rss")) == 1
    assert len(feed_server.requests_to("/amp" + BIDEN_PATH)) == 1


def test_an_article_link_into_a_private_network_is_not_fetched_unless_allowed(
    tmp_path: Path, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The feed's own address is the user's choice; its links are the feed's.
    page = serve_page(feed_server, EU_PATH, "eu-sanctions-shadow-fleet.html")
    feed = feed_server.serve("/headlines.xml", rss([
        ("EU foreign ministers meet in Brussels", "Borrell chairs.", page, "g1")]))
    settings = make_settings(tmp_path, [{"name": "headlines", "url": feed, "full_text": True}])
    with caplog.at_level(logging.INFO):
        (report,) = run_cycles(settings)
    assert report.polls[0].new == 1
    assert feed_server.requests_to(EU_PATH) == []
    assert f"source headlines: article page {page}: refused an address in a private" \
           " network" in caplog.text


def test_pages_are_read_only_for_articles_young_enough_to_alert_and_up_to_max_pages(
    tmp_path: Path, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The feed's items are from November 2024; with max_age = 7d they can never alert.
    pages = [serve_page(feed_server, f"/world/story-{i}", "eu-sanctions-shadow-fleet.html")
             for i in range(3)]
    feed = feed_server.serve("/headlines.xml", rss([
        (f"Headline {i}", "Twenty words.", url, f"g{i}") for i, url in enumerate(pages)]))
    source = {"name": "headlines", "url": feed, "full_text": True, "allow_private": True}
    aged = make_settings(tmp_path / "aged", [{**source, "max_age": "7d"}])
    (report,) = run_cycles(aged)
    assert report.polls[0].new == 3
    assert [r.path for r in feed_server.requests if r.path.startswith("/world/")] == []

    capped = make_settings(tmp_path / "capped", [source], full_text={"max_pages": 2})
    with caplog.at_level(logging.WARNING):
        (report,) = run_cycles(capped)
    assert report.polls[0].new == 3
    assert len([r for r in feed_server.requests if r.path.startswith("/world/")]) == 2
    assert "source headlines: 1 new articles beyond max_pages = 2 keep their feed text" in (
        caplog.text)
    contents = [c for (c,) in stored(capped, "SELECT content FROM articles ORDER BY guid")]
    assert [bool(c) for c in contents] == [True, True, False]


def test_an_edited_entry_keeps_its_page_text_and_canonical_link(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    page = serve_page(feed_server, BIDEN_PATH + "-rss", "biden-atacms-decision.html")
    title = "Biden authorises Ukraine to strike Russia with US long-range missiles"
    feed_server.serve("/wire.xml", rss([(title, "Officials say.", page, "wire-biden")]))
    settings = make_settings(tmp_path, [{"name": "wire", "url": feed_server.url("/wire.xml"),
                                         "full_text": True, "allow_private": True}])
    run_cycles(settings)
    ((page_text,),) = stored(settings, "SELECT content FROM articles")
    # The feed edits its entry: a new headline and summary, the same guid and link.
    feed_server.serve("/wire.xml", rss([(title + " (updated)", "Officials say more.", page,
                                         "wire-biden")]))
    (report,) = run_cycles(settings)
    assert (report.polls[0].new, report.polls[0].updated) == (0, 1)
    # The feed's new title and summary are taken; the page's text and canonical link
    # stay (the feed's twenty words would replace the body rules match).
    assert stored(settings, "SELECT title, summary, content, url FROM articles") == [
        (title + " (updated)", "Officials say more.", page_text, feed_server.url(BIDEN_PATH))]
    assert len(page_text) > 1000
    assert len(feed_server.requests_to(BIDEN_PATH + "-rss")) == 1  # not read again
    assert stored(settings, "SELECT count(*) FROM outbox") == [(2,)]  # no rule alerts twice


def test_another_sources_link_to_a_stored_articles_page_is_a_copy(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    first = serve_page(feed_server, BIDEN_PATH + "-rss", "biden-atacms-decision.html")
    amp = serve_page(feed_server, "/amp" + BIDEN_PATH, "biden-atacms-decision.html")
    feed_server.serve("/wire.xml", rss([(
        "Biden authorises Ukraine to strike Russia with US long-range missiles",
        "Officials say.", first, "wire-biden")]))
    feed_server.serve("/agency.xml", rss([]))
    settings = make_settings(tmp_path, [
        {"name": name, "url": feed_server.url(f"/{name}.xml"), "full_text": True,
         "allow_private": True} for name in ("wire", "agency")])
    run_cycles(settings)
    # The agency's headline and link say nothing of the wire's; its page's canonical
    # link is the wire's article's.
    feed_server.serve("/agency.xml", rss([(
        "US clears Kyiv to fire ATACMS at targets inside Russia", "Agency report.", amp,
        "agency-77")]))
    reports = run_cycles(settings, cycles=2)
    assert [{p.source: p.new for p in r.polls} for r in reports] == [
        {"wire": 0, "agency": 1}, {"wire": 0, "agency": 0}]
    rows = stored(settings, "SELECT a.source, a.url, o.source FROM articles a"
                            " LEFT JOIN articles o ON o.id = a.duplicate_of ORDER BY a.id")
    canonical = feed_server.url(BIDEN_PATH)
    assert rows == [("wire", canonical, None), ("agency", canonical, "wire")]
    assert {source for _, source in alerted(settings)} == {"wire"}  # a copy never alerts
    assert len(feed_server.requests_to("/amp" + BIDEN_PATH)) == 1
